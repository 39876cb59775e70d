"""Property tests (hypothesis): every config file, override, episode file and checkpoint either
works or gives memrl's own error (ConfigError, ReplayError, CheckpointError), never a crash
from deeper down (issue 21). Small example counts keep the file to seconds."""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rollout.config import ConfigError, ExperimentConfig, apply_overrides, build_config, read_yaml

FAST = settings(
    max_examples=int(os.environ.get("MEMRL_PROPERTY_EXAMPLES", "40")),  # more: a deeper search
    deadline=timedelta(seconds=3),
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
ROOT = Path(__file__).resolve().parent.parent
BASE = read_yaml(ROOT / "configs/reinforce_cartpole.yaml")
KEYS = [
    f"{section}.{key}"
    for section, values in {**BASE, "learner": {"lr": 0, "eps": 0, "beta2": 0}}.items()
    if isinstance(values, dict)
    for key in values
] + ["run.seed", "run.dir", "run.max_time_s", "env.id", "env.kwargs", "bogus.key", "agent"]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)


def yaml_scalar(value: object) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return ".nan" if math.isnan(value) else (".inf" if value > 0 else "-.inf")
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


@FAST
@given(st.lists(st.tuples(st.sampled_from(KEYS), values), max_size=4))
def test_any_override_builds_or_is_a_config_error(overrides):
    texts = [f"{key}={yaml_scalar(value)}" for key, value in overrides]
    try:
        cfg = build_config(apply_overrides(BASE, texts), source="p.yaml")
    except ConfigError as exc:
        assert str(exc) and len(str(exc)) < 5000
        return
    assert isinstance(cfg, ExperimentConfig)
    assert math.isfinite(cfg.learner.lr) and cfg.learner.lr > 0
    assert 0 <= cfg.run.seed < 2**32 and cfg.run.max_time_s >= 0


@FAST
@given(st.one_of(st.binary(max_size=300), st.text(max_size=300).map(str.encode)))
def test_any_config_file_reads_or_is_a_config_error(tmp_path, data):
    path = tmp_path / "c.yaml"
    path.write_bytes(data)
    try:
        build_config(read_yaml(path), source=str(path))
    except ConfigError as exc:
        assert str(path) in str(exc) or "agent" in str(exc) or "'" in str(exc)


@FAST
@given(st.dictionaries(st.sampled_from(["env", "agent", "learner", "rollout", "run", "x"]), values))
def test_any_config_mapping_builds_or_is_a_config_error(tmp_path, data):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data))
    with contextlib.suppress(ConfigError):
        build_config(read_yaml(path), source=str(path))


@pytest.fixture(scope="module")
def episode(tmp_path_factory):
    """One recorded CartPole episode (random policy), made in-process."""
    import gymnasium as gym

    from rollout.episode_record import RandomPolicy, run_episode, save_episode

    path = tmp_path_factory.mktemp("episode") / "episode_0000.npz"
    policy = RandomPolicy(gym.spaces.Discrete(2))
    save_episode(path, run_episode(policy, "CartPole-v1", {}, seed=3, max_steps=20))
    return path


META_KEYS = ["env_id", "env_kwargs", "seed", "return", "length", "format"]
ARRAY_KEYS = ["actions", "rewards", "terminated", "truncated", "obs_hash", "observations"]
arrays = st.one_of(
    st.lists(st.integers(-3, 3), max_size=25).map(lambda v: np.asarray(v, np.int64)),
    st.lists(st.floats(allow_nan=True), max_size=25).map(np.asarray),
    st.lists(st.booleans(), max_size=25).map(lambda v: np.asarray(v, bool)),
    st.text(max_size=5).map(np.asarray),
)


@FAST
@given(
    st.dictionaries(
        st.sampled_from(META_KEYS),
        values | st.sampled_from(["os:system", "CartPole-v1"]),
        max_size=3,
    ),
    st.dictionaries(st.sampled_from(ARRAY_KEYS), arrays, max_size=2),
    st.sets(st.sampled_from(ARRAY_KEYS + ["meta"]), max_size=1),
)
def test_any_episode_file_replays_or_is_a_replay_error(tmp_path, episode, meta, changed, dropped):
    from rollout.episode_replay import ReplayError, replay_episode

    with np.load(episode, allow_pickle=False) as data:
        content = {k: data[k] for k in data.files}
    old = json.loads(str(content["meta"]))
    content["meta"] = np.asarray(json.dumps({**old, **meta}, default=str))
    content.update(changed)
    for key in dropped:
        content.pop(key, None)
    path = tmp_path / "episode.npz"
    np.savez(path, **content)
    try:
        result = replay_episode(str(path))
    except ReplayError as exc:
        assert str(exc)
        return
    assert result.steps <= len(content["rewards"])


@pytest.fixture(scope="module")
def checkpoint_folder(tmp_path_factory):
    import torch

    from rollout.checkpoints import save_checkpoint

    folder = tmp_path_factory.mktemp("ckpt") / "checkpoints"
    for step in (10, 20):
        save_checkpoint(folder, step, {"learner": {"w": torch.ones(3) * step}, "n": step})
    return folder


@FAST
@given(st.integers(0, 2000), st.binary(max_size=200), st.booleans())
def test_any_damaged_checkpoint_loads_an_older_one_or_is_a_checkpoint_error(
    tmp_path, checkpoint_folder, cut, noise, both
):
    from rollout.checkpoints import CheckpointError, load_latest_readable

    folder = tmp_path / "checkpoints"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(checkpoint_folder, folder)
    targets = [folder / "000000000020"] + ([folder / "000000000010"] if both else [])
    for ckpt in targets:
        data = (ckpt / "state.pt").read_bytes()
        (ckpt / "state.pt").write_bytes(data[:cut] + noise)
    try:
        path, state, notes = load_latest_readable(folder)
    except CheckpointError as exc:
        assert "no readable complete checkpoint" in str(exc)
        return
    assert path.name in ("000000000020", "000000000010")
    assert state["n"] == int(path.name)
    assert bool(notes) == (path.name == "000000000010")
