"""Observation spaces through Gymnasium's own wrappers (envs/observations.py): a MiniGrid-like
Dict env and Blackjack's Tuple train through the normal trainer and Ray, channels-last images
reach the CNN channels-first, and an env whose extra is missing is an install hint, not a
traceback. The envs are reached through the `module:Class` spec (tests.test_observation_spaces:...).
"""

from __future__ import annotations

import importlib.util
import re

import gymnasium as gym
import numpy as np
import pytest
import torch

import envs
from agents import make_agent
from rollout.cli import main
from rollout.config import dump_config, load_config
from rollout.evaluation import load_agent, resolve_checkpoint
from rollout.run_dir import RunDir
from rollout.trainer import Trainer

SPEC = "tests.test_observation_spaces"
RAY_ONE_WORKER = [
    "rollout.num_workers=1",
    "rollout.envs_per_worker=2",
    "run.eval_episodes=2",
    "run.eval_every_steps=0",
    "run.stop_return=null",
    "env.check=false",
]


class GridWithMission(gym.Env):
    """MiniGrid-like: a Dict of a channels-last 5x5x3 uint8 view (agent and goal planes), a
    Discrete direction and a Text mission. Actions: 0 turn left, 1 turn right, 2 forward;
    reward 1 on reaching the goal corner, truncated after `max_steps`."""

    metadata = {"render_modes": []}
    MOVES = ((0, 1), (1, 0), (0, -1), (-1, 0))  # east, south, west, north

    def __init__(self, size: int = 5, max_steps: int = 12):
        self.size, self.max_steps = size, max_steps
        self.observation_space = gym.spaces.Dict(
            {
                "image": gym.spaces.Box(0, 255, (size, size, 3), np.uint8),
                "direction": gym.spaces.Discrete(4),
                "mission": gym.spaces.Text(max_length=24, charset=" abcdefghijklmnopqrstuvwxyz"),
            }
        )
        self.action_space = gym.spaces.Discrete(3)
        self.pos, self.direction, self.t = (0, 0), 0, 0

    def _obs(self) -> dict:
        image = np.zeros((self.size, self.size, 3), np.uint8)
        image[self.pos[0], self.pos[1], 0] = 255
        image[self.size - 1, self.size - 1, 1] = 255
        return {"image": image, "direction": self.direction, "mission": "get to the goal"}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.pos, self.direction, self.t = (0, 0), int(self.np_random.integers(4)), 0
        return self._obs(), {}

    def step(self, action):
        self.t += 1
        if action == 0:
            self.direction = (self.direction - 1) % 4
        elif action == 1:
            self.direction = (self.direction + 1) % 4
        else:
            dr, dc = self.MOVES[self.direction]
            r = min(max(self.pos[0] + dr, 0), self.size - 1)
            c = min(max(self.pos[1] + dc, 0), self.size - 1)
            self.pos = (r, c)
        terminated = self.pos == (self.size - 1, self.size - 1)
        truncated = self.t >= self.max_steps and not terminated
        return self._obs(), float(terminated), terminated, truncated, {}


class PixelsLast(gym.Env):
    """Channels-last RGB frames [40, 48, 3] whose pixel values encode their position."""

    metadata = {"render_modes": []}

    def __init__(self):
        self.observation_space = gym.spaces.Box(0, 255, (40, 48, 3), np.uint8)
        self.action_space = gym.spaces.Discrete(2)

    def frame(self) -> np.ndarray:
        return (np.arange(40 * 48 * 3) % 251).astype(np.uint8).reshape(40, 48, 3)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return self.frame(), {}

    def step(self, action):
        return self.frame(), 0.0, True, False, {}


class WithHistory(GridWithMission):
    """A Dict with a Sequence part, which cannot be flattened: it is dropped, and that is said."""

    def __init__(self):
        super().__init__()
        spaces = dict(self.observation_space.spaces)
        spaces["history"] = gym.spaces.Sequence(gym.spaces.Discrete(3))
        self.observation_space = gym.spaces.Dict(spaces)

    def _obs(self) -> dict:
        return {**super()._obs(), "history": (1, 2)}


def needs_extra(**kwargs):
    """The entry point of an env whose optional dependency is missing, as Gymnasium's Box2D and
    MuJoCo envs fail at import when their extra is not installed."""
    raise gym.error.DependencyNotInstalled(
        'Frobnicator is not installed, run `pip install "frobnicator-envs"`'
    )


def train(tmp_path, config, env_id, overrides):
    cfg = load_config(
        config, [f"env.id={env_id}", *RAY_ONE_WORKER, f"run.dir={tmp_path}", *overrides]
    )
    run = RunDir.create(tmp_path, cfg.run.name, dump_config(cfg))
    return cfg, run, Trainer(cfg, run)


def test_dict_observations_are_flattened_and_said():
    env = envs.make(f"{SPEC}:GridWithMission")
    # image 75 + direction one-hot 4 + mission 24 character ids, in the Dict's (sorted) key order
    assert env.observation_space == gym.spaces.flatten_space(env.unwrapped.observation_space)
    assert env.observation_space.shape == (75 + 4 + 24,)
    obs, _ = env.reset(seed=0)
    raw = env.unwrapped._obs()
    assert np.array_equal(obs, gym.spaces.flatten(env.unwrapped.observation_space, raw))
    (note,) = envs.adapter_notes(env)
    assert "Dict observations ('direction', 'image', 'mission') flattened to 103" in note
    assert "gymnasium.wrappers.FlattenObservation" in note

    env = envs.make(f"{SPEC}:WithHistory")
    assert env.observation_space.shape == (103,)
    (note,) = envs.adapter_notes(env)
    assert "dropped 'history' (not flattenable: Sequence" in note and "FilterObservation" in note


def test_channels_last_images_move_channels_first_for_the_cnn():
    env = envs.make(f"{SPEC}:PixelsLast")
    assert env.observation_space.shape == (3, 40, 48) and env.observation_space.dtype == np.uint8
    obs, _ = env.reset(seed=0)
    assert obs.flags.c_contiguous
    assert np.array_equal(obs, env.unwrapped.frame().transpose(2, 0, 1))
    (note,) = envs.adapter_notes(env)
    assert "(40, 48, 3) moved channels-first to (3, 40, 48)" in note
    assert "TransformObservation" in note
    cfg = load_config("configs/dqn_cartpole.yaml", [])
    agent = make_agent(cfg.agent, env.observation_space, env.action_space)
    assert agent.online.torso.__class__.__name__ == "NatureCNN"  # not refused, not an MLP
    assert agent.act(obs[None], None, False)[0].shape == (1,)
    # plain vector envs are left alone
    assert envs.adapter_notes(envs.make("CartPole-v1")) == []


def test_dict_env_trains_with_dqn_through_ray(tmp_path, ray_local, capsys):
    cfg, run, trainer = train(
        tmp_path,
        "configs/dqn_cartpole.yaml",
        f"{SPEC}:GridWithMission",
        [
            "agent.learning_starts=32",
            "agent.buffer_size=500",
            "rollout.steps_per_sample=16",
            "run.total_env_steps=160",
        ],
    )
    summary = trainer.train()
    assert summary["env_steps"] >= 160 and trainer.learner.updates > 0
    assert len(trainer.workers.actors) == 1
    assert trainer.agent.observation_space.shape == (103,)
    err = capsys.readouterr().err
    assert f"env '{SPEC}:GridWithMission': Dict observations" in err
    # the checkpoint reloads and acts on the flattened observations of a fresh env
    agent, _ = load_agent(cfg, resolve_checkpoint(run, "latest"), {})
    obs, _ = envs.make(cfg.env.id).reset(seed=1)
    assert agent.act(obs[None], None, False)[0][0] in range(3)


def test_tuple_env_trains_with_reinforce_through_ray(tmp_path, ray_local, capsys):
    _, _, trainer = train(
        tmp_path,
        "configs/reinforce_cartpole.yaml",
        "Blackjack-v1",
        ["rollout.steps_per_sample=32", "run.total_env_steps=128"],
    )
    summary = trainer.train()
    assert summary["env_steps"] >= 128 and trainer.learner.updates > 0
    assert summary["episodes"] > 0  # Blackjack hands are short: several whole episodes
    assert trainer.agent.observation_space.shape == (32 + 11 + 2,)
    assert "Tuple observations" in capsys.readouterr().err
    assert all(torch.isfinite(p).all() for p in trainer.agent.parameters())


@pytest.fixture
def fake_extra_env():
    env_id = "MemrlTestNeedsExtra-v0"
    gym.register(env_id, entry_point=f"{SPEC}:needs_extra")
    yield env_id
    del gym.registry[env_id]


def test_missing_extra_is_an_install_hint(fake_extra_env, tmp_path, capsys):
    cases = [(fake_extra_env, r'pip install "frobnicator-envs"')]
    if importlib.util.find_spec("Box2D") is None:  # Gymnasium's own: LunarLander without it
        cases.append(("LunarLander-v3", r'Install it with `pip install "gymnasium\[box2d\]"`'))
    for env_id, hint in cases:
        argv = ["train", "configs/dqn_cartpole.yaml", f"env.id={env_id}", f"run.dir={tmp_path}"]
        assert main(argv) == 2
        err = " ".join(capsys.readouterr().err.split())
        assert f"env '{env_id}' is listed but cannot be built here" in err, err
        assert re.search(hint, err), err
        assert "Traceback" not in err and not list(tmp_path.iterdir())
    if importlib.util.find_spec("mujoco") is None:  # MuJoCo ids, at envs.make
        with pytest.raises(envs.EnvSpecError, match=r'pip install "gymnasium\[mujoco\]"'):
            envs.make("HalfCheetah-v5")
