"""`import memrl`: the example in docs/python_api.md runs as written and acts; train takes a dict
config and mapping overrides; load_policy carries a recurrent agent's state."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import memrl
from rollout.evaluation import BEST

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "python_api.md"


def doc_example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    assert blocks, f"no ```python block in {DOC}"
    return blocks[0]


def test_the_documented_example_runs_and_acts(tmp_path, monkeypatch):
    """The doc's first python block, run as written from a folder that holds the configs it
    names (so its runs/ folder lands in tmp_path, not in the checkout)."""
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    monkeypatch.chdir(tmp_path)
    torch.set_num_threads(1)
    scope: dict = {}
    exec(compile(doc_example(), str(DOC), "exec"), scope)  # noqa: S102 - our own doc's code

    run, policy, env, figures = scope["run"], scope["policy"], scope["env"], scope["figures"]
    assert isinstance(run, memrl.Run) and run.path.is_relative_to(tmp_path / "runs")
    assert (
        run.figures["env_steps"] >= 2000 and run.best_checkpoint == run.path / "checkpoints" / BEST
    )
    assert policy.checkpoint == run.best_checkpoint and policy.env_id == "CartPole-v1"
    # it acted: the loop stepped the env with actions from the action space to the episode's end
    assert env.action_space.contains(scope["action"])
    assert scope["episode_return"] >= 1.0 and scope["done"]
    assert figures["return"]["n"] == 5 and figures["checkpoint"] == BEST
    assert Path(figures["evaluation_dir"], "summary.json").is_file()
    # greedy and deterministic: the same observation gives the same action
    obs, _ = env.reset(seed=3)
    assert policy.act(obs)[0] == policy.act(obs)[0]


def test_train_takes_a_dict_config_and_a_recurrent_policy_carries_state(tmp_path):
    """A dict config (no file) with list overrides; the LSTM's state changes as it reads."""
    config = {
        "env": {"id": "memrl/Copy-v0", "kwargs": {"bits": 3, "min_len": 1, "max_len": 3}},
        "agent": {"name": "lstm", "hidden_size": 8, "layers": 1, "batch_size": 4},
        "rollout": {"num_workers": 0},
        "run": {"total_sequences": 16, "dir": str(tmp_path), "name": "api_lstm"},
    }
    run = memrl.train(config, ["run.seed=3"], quiet=True)
    assert run.path.parent == tmp_path and run.path.name.startswith("api_lstm")
    assert run.figures["sequences"] >= 16 and run.latest_checkpoint is not None

    policy = memrl.load_policy(run.path, checkpoint="latest")
    assert policy.checkpoint == run.latest_checkpoint
    env = policy.make_env()
    obs, _ = env.reset(seed=0)
    state = policy.initial_state()
    assert state is not None  # a recurrent agent starts from its initial memory
    action, next_state = policy.act(obs, state)
    assert env.action_space.contains(np.asarray(action, dtype=env.action_space.dtype))
    before = torch.cat([t.flatten() for t in torch.utils._pytree.tree_leaves(state)])
    after = torch.cat([t.flatten() for t in torch.utils._pytree.tree_leaves(next_state)])
    assert not torch.equal(before, after)


def test_errors_name_what_to_fix(tmp_path):
    with pytest.raises(memrl.ConfigError, match="unknown section 'evn'"):
        memrl.train({"evn": {}, "agent": {"name": "dqn"}})
    with pytest.raises(memrl.ConfigError, match="does not exist"):
        memrl.train(tmp_path / "nope.yaml")
    with pytest.raises(memrl.EvaluationError, match="does not exist"):
        memrl.load_policy(tmp_path / "no_run")
    with pytest.raises(memrl.EnvSpecError, match="unknown environment"):
        memrl.make_env("CartPol-v1")


def test_a_policy_acts_on_a_bare_gymnasium_envs_raw_observations(tmp_path):
    """Blackjack's Tuple observations: training saw them flattened (envs/observations.py); the
    policy flattens a bare `gymnasium.make` env's raw tuples the same way."""
    import gymnasium as gym

    run = memrl.train(
        "configs/reinforce_cartpole.yaml",
        {
            "env.id": "Blackjack-v1",
            "rollout.num_workers": 0,
            "rollout.steps_per_sample": 32,
            "run.total_env_steps": 64,
            "run.eval_episodes": 2,
            "run.dir": str(tmp_path),
        },
        quiet=True,
    )
    policy = memrl.load_policy(run.path)
    bare, adapted = gym.make("Blackjack-v1"), policy.make_env()
    for seed in range(5):
        raw, _ = bare.reset(seed=seed)
        flat, _ = adapted.reset(seed=seed)
        assert isinstance(raw, tuple) and flat.shape == (45,)
        assert policy.act(raw)[0] == policy.act(flat)[0]
        _, reward, terminated, truncated, _ = bare.step(policy.act(raw)[0])
        assert reward in (-1.0, 0.0, 1.0, 1.5)
