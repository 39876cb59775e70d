"""Plug-in environments: spaces decide (or refuse) the agent before Ray starts, Gymnasium's env
checker runs once on a plug-in env, and REINFORCE's MultiDiscrete head and LSTM torso work.

The small envs below are reached through the `module:Class` spec (tests.test_plugin_envs:...).
"""

from __future__ import annotations

import re

import gymnasium as gym
import numpy as np
import pytest
import torch

import envs
from agents import AgentError, Learner, dqn, lstm, make_agent, reinforce
from rollout.cli import main
from rollout.config import LearnerConfig

SPEC = "tests.test_plugin_envs"
FAST = [
    "rollout.num_workers=0",
    "rollout.envs_per_worker=2",
    "rollout.steps_per_sample=40",
    "run.total_env_steps=200",
    "run.eval_episodes=2",
    "run.stop_return=null",
]


class SpaceEnv(gym.Env):
    """A one-step env with whatever spaces a subclass sets; it passes the env checker."""

    metadata = {"render_modes": []}
    observation_space: gym.Space = gym.spaces.Box(0.0, 1.0, (3,), np.float32)
    action_space: gym.Space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.observation_space.seed(seed)
        return self.observation_space.sample(), {}

    def step(self, action):
        return self.observation_space.sample(), 0.0, True, False, {}


class TextObs(SpaceEnv):
    observation_space = gym.spaces.Text(5)


class BoxAction(SpaceEnv):
    action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)


class MultiDiscreteEnv(SpaceEnv):
    observation_space = gym.spaces.MultiDiscrete([3, 4])
    action_space = gym.spaces.MultiDiscrete([2, 3], start=[1, 0])


class OutOfBounds(SpaceEnv):
    """Broken: its observations lie outside its observation space."""

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.full(3, 5.0, np.float32), {}


class Unbounded(SpaceEnv):
    """Works, but the checker warns about its infinite observation bounds."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, (3,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(3, np.float32), {}

    def step(self, action):
        return np.zeros(3, np.float32), 1.0, True, False, {}


@pytest.fixture(autouse=True)
def fresh_checker_cache(monkeypatch):
    """Each test sees envs.check's per-process cache empty."""
    monkeypatch.setattr(envs, "_CHECKED", set())


@pytest.fixture
def no_ray(monkeypatch):
    """Fail the test if the CLI tries to start Ray: refusals must come before it."""
    import rollout.ray_runtime

    def refuse(*args, **kwargs):
        raise AssertionError("Ray was started before the env/agent was refused")

    monkeypatch.setattr(rollout.ray_runtime, "start_ray", refuse)


@pytest.mark.parametrize(
    ("agent", "env", "match"),
    [
        # Dict and Tuple observations are flattened (tests/test_observation_spaces.py)
        (
            "dqn",
            "TextObs",
            r"observation space Text.*supported observations: Box \(vector\), Discrete, "
            r"MultiBinary, MultiDiscrete",
        ),
        (
            "reinforce",
            "BoxAction",
            r"action space Box.*supported action spaces: Discrete, MultiBinary, MultiDiscrete",
        ),
        ("dqn", "BoxAction", r"DQN needs a Discrete action space, got Box"),
        ("dqn", "MultiDiscreteEnv", r"DQN needs a Discrete action space, got MultiDiscrete"),
        ("lstm", "TextObs", r"lstm needs vector observations \(a 1-D Box\)"),
    ],
)
def test_unsupported_spaces_are_refused_before_ray(agent, env, match, capsys, no_ray, tmp_path):
    config = {
        "reinforce": "configs/reinforce_cartpole.yaml",
        "dqn": "configs/dqn_cartpole.yaml",
        "lstm": "configs/lstm_copy.yaml",
    }[agent]
    argv = ["train", config, f"env.id={SPEC}:{env}", "env.kwargs={}", f"run.dir={tmp_path}"]
    argv.append("rollout.num_workers=2")
    assert main(argv) == 2
    message = " ".join(capsys.readouterr().err.split())
    assert "memrl: error:" in message
    assert re.search(match, message), message
    assert not list(tmp_path.iterdir())  # no run dir was made


def test_bad_specs_exit_2_with_clear_messages(capsys, no_ray, tmp_path):
    cases = {
        "no_such_pkg.envs:MyEnv": "cannot import module 'no_such_pkg.envs' for env",
        "tests.fakes:NotAnEnv": "'tests.fakes:NotAnEnv' is a class but not a gymnasium.Env",
        "tests.fakes:Coridor": "Did you mean 'tests.fakes:Corridor'",
        "tmaze/TMaze-v9": "unknown environment 'tmaze/TMaze-v9'",
    }
    for spec, expected in cases.items():
        argv = ["train", "configs/reinforce_cartpole.yaml", f"env.id={spec}", f"run.dir={tmp_path}"]
        assert main(argv) == 2, spec
        assert expected in " ".join(capsys.readouterr().err.split()), spec


def test_env_checker_failure_is_a_clear_exit_2(capsys, no_ray, tmp_path):
    argv = ["train", "configs/reinforce_cartpole.yaml", f"env.id={SPEC}:OutOfBounds"]
    assert main([*argv, f"run.dir={tmp_path}"]) == 2
    message = " ".join(capsys.readouterr().err.split())
    assert f"env '{SPEC}:OutOfBounds' (kwargs {{}}) fails Gymnasium's env checker" in message
    assert "observation" in message and "not within the observation space" in message
    assert "env.check=false" in message


def test_env_checker_can_be_skipped_and_warnings_are_shown(capsys, tmp_path):
    base = ["train", "configs/reinforce_cartpole.yaml", *FAST, f"run.dir={tmp_path}"]
    # the broken env trains when the user opts out (its observations are still valid floats)
    assert main([*base, f"env.id={SPEC}:OutOfBounds", "env.check=false"]) == 0
    assert "env checker" not in capsys.readouterr().err
    assert main([*base, f"env.id={SPEC}:Unbounded"]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert f"memrl: warning: env '{SPEC}:Unbounded': A Box observation space minimum value" in err
    assert "done:" in err  # a warning is not fatal


def test_checker_runs_once_per_spec_and_skips_builtin_envs(monkeypatch):
    import gymnasium.utils.env_checker as checker

    calls = []
    real = checker.check_env
    monkeypatch.setattr(
        checker, "check_env", lambda env, **kw: calls.append(env) or real(env, **kw)
    )
    warnings = envs.check(f"{SPEC}:Unbounded")
    assert any("infinity" in w for w in warnings)
    assert all("\x1b" not in w for w in warnings)  # colour codes stripped
    assert envs.check(f"{SPEC}:Unbounded") == []  # cached: not checked again
    assert len(calls) == 1
    for builtin in ("memrl/Copy-v0", "CartPole-v1", "gymnasium.envs.classic_control:CartPole-v1"):
        assert envs.check(builtin) == [] and len(calls) == 1  # Gymnasium's and memrl's: skipped
    assert envs.check("tests.fakes:Corridor", {"length": 3}) == [] and len(calls) == 2


def test_reinforce_multidiscrete_head_learns():
    torch.manual_seed(0)
    obs_space, act_space = MultiDiscreteEnv.observation_space, MultiDiscreteEnv.action_space
    agent = make_agent(reinforce.Config(hidden=[32], entropy_coef=0.0), obs_space, act_space)
    learner = Learner(agent, LearnerConfig(lr=0.02, device="cpu"))
    rng = np.random.default_rng(0)

    def draw(n):
        return np.stack([rng.integers(0, 3, n), rng.integers(0, 4, n)], 1)

    def target(obs):  # the action components the reward asks for, from the observation
        return np.stack([1 + obs[:, 0] % 2, obs[:, 1] % 3], 1)

    for _ in range(150):
        obs = draw(64)
        actions, _, _ = agent.act(obs, None, explore=True)
        assert all(act_space.contains(a) for a in actions)
        rewards = (actions == target(obs)).mean(1).astype(np.float32)
        batch = {
            "obs": obs[None],
            "actions": actions[None],
            "rewards": rewards[None],
            "mask": np.ones((1, 64), np.float32),
        }
        learner.update(batch)
    obs = draw(256)
    greedy, _, _ = agent.act(obs, None, explore=False)
    assert (greedy == target(obs)).all(1).mean() > 0.95


def test_reinforce_lstm_torso_state_and_loss_agree():
    torch.manual_seed(0)
    space_o, space_a = gym.spaces.Box(0.0, 1.0, (4,), np.float32), gym.spaces.Discrete(3)
    agent = make_agent(reinforce.Config(hidden=[8], torso="lstm", lstm_size=6), space_o, space_a)
    obs = torch.rand(5, 2, 4)
    state, features = agent.initial_state(2), []
    for t in range(5):  # acting step by step gives the features the loss computes in one pass
        out, state = agent._recurrent(obs[t : t + 1], state)
        features.append(out[0])
    whole, _ = agent._recurrent(obs, None)
    torch.testing.assert_close(torch.stack(features), whole)
    reset = agent.reset_state(state, np.array([True, False]))
    assert torch.equal(reset[0][0], torch.zeros(6)) and torch.equal(reset[0][1], state[0][1])
    actions, next_state, _ = agent.act(obs[0].numpy(), agent.initial_state(2), explore=True)
    assert actions.shape == (2,) and next_state[0].shape == (2, 6)
    assert agent.initial_state(3)[0].shape == (3, 6)
    assert make_agent(reinforce.Config(hidden=[8]), space_o, space_a).initial_state(2) is None
    # loss: padding after an episode's end changes nothing
    batch = {
        "obs": obs,
        "actions": torch.randint(0, 3, (5, 2)),
        "rewards": torch.ones(5, 2),
        "mask": torch.tensor([[1.0, 1], [1, 1], [1, 0], [1, 0], [1, 0]]),
    }
    loss, _ = agent.loss(batch)
    batch["obs"] = batch["obs"].clone()
    batch["obs"][2:, 1] = 9.0
    assert torch.equal(agent.loss(batch)[0], loss)


def test_recurrent_reinforce_remembers_a_cue(tmp_path, capsys):
    """A short T-maze (tests.test_plugin_envs:ShortTMaze, 2 cells): the LSTM policy learns to
    turn the cued way from the end-of-run evaluation; the whole run takes a few seconds."""
    argv = [
        "train",
        "examples/plugin_env/tmaze_lstm.yaml",
        f"env.id={SPEC}:ShortTMaze",
        "env.kwargs={}",
        "rollout.num_workers=0",
        "run.total_env_steps=60000",
        "run.eval_every_steps=5000",
        "run.eval_episodes=40",
        "run.stop_return=0.95",
        f"run.dir={tmp_path}",
    ]
    assert main(argv) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "evaluation return" in err
    returns = float(err.split("evaluation return ")[-1].split()[0])
    assert returns >= 0.95  # +1 - 0.01 * 2 per correct episode; chance is about 0


@envs.env_maker
def ShortTMaze(**kwargs) -> gym.Env:  # noqa: N802 - an env factory, named like its env
    """The example plug-in's TMaze (length 2), loaded from its source file: the package itself
    is not put on sys.path, so `tmaze/TMaze-v0` stays unregistered for the install test."""
    import importlib.util
    import sys
    from pathlib import Path

    module = sys.modules.get("tmaze_example_source")
    if module is None:
        path = Path(__file__).resolve().parents[1] / "examples/plugin_env/tmaze/tmaze.py"
        spec = importlib.util.spec_from_file_location("tmaze_example_source", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # picklable by name, like any env class
        spec.loader.exec_module(module)
    return module.TMaze(**{"length": 2, **kwargs})


def test_sequence_agent_refuses_continuous_actions():
    with pytest.raises(AgentError, match="1-D MultiBinary or a Discrete action space"):
        make_agent(
            lstm.Config(),
            gym.spaces.Box(0, 1, (3,), np.float32),
            gym.spaces.Box(0, 1, (2,), np.float32),
        )
    with pytest.raises(AgentError, match="DQN needs a Discrete action space"):
        make_agent(dqn.Config(), gym.spaces.Box(0, 1, (3,), np.float32), gym.spaces.MultiBinary(2))


def test_tmaze_rules():
    from gymnasium.utils.env_checker import check_env

    env = ShortTMaze()  # length 2: start (cue), one corridor cell, the junction
    check_env(env, skip_render_check=True)
    cues: dict[int, int] = {}
    for seed in range(20):
        obs, info = env.reset(seed=seed)
        assert obs.tolist() == [1.0 - info["cue"], float(info["cue"]), 0.0, 0.0]
        right = 1 + info["cue"]
        for action in (right, 0):  # a turn before the junction does nothing
            obs, reward, terminated, _, _ = env.step(action)
            assert reward == -0.01 and not terminated
        assert obs.tolist() == [0.0, 0.0, 1.0, 0.0]
        obs, _, _, _, _ = env.step(0)
        assert obs.tolist() == [0.0, 0.0, 0.0, 1.0]
        assert env.step(0)[1:3] == (-0.01, False)  # forward at the junction: a wall
        turn = right if seed % 2 else 3 - right
        _, reward, terminated, _, info = env.step(turn)
        assert terminated and info["success"] == bool(seed % 2)
        cues[env.cue] = cues.get(env.cue, 0) + 1
        assert reward == (1.0 if seed % 2 else -1.0)
    assert set(cues) == {0, 1}  # both cues occur
    env.reset(seed=0)
    for _ in range(env.max_steps - 1):
        assert env.step(1)[3] is False
    _, reward, terminated, truncated, info = env.step(1)  # no decision in time: a failure
    assert (reward, terminated, truncated, info["success"]) == (-1.0, False, True, False)
    with pytest.raises(envs.EnvSpecError, match="max_steps .* must exceed length"):
        envs.make(f"{SPEC}:ShortTMaze", length=5, max_steps=5)
