"""memrl/BAbI-v0: the env checker, one question per episode, the dataset splits' shapes and
groups, the data path from MEMRL_DATA, and clear errors for bad kwargs."""

from __future__ import annotations

import os
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs
from envs.babi.env import BabiEnv, default_babi_root

GENERATED = {"source": "generated", "tasks": [1, 6], "generated_questions": 60}


def _official_root() -> Path | None:
    root = default_babi_root()
    return root if (root / "en").is_dir() else None


needs_babi = pytest.mark.skipif(
    _official_root() is None, reason="the bAbI files are absent (set MEMRL_DATA)"
)


def test_env_checker_passes_and_an_episode_is_one_question():
    env = envs.make("memrl/BAbI-v0", **GENERATED)
    check_env(env.unwrapped, skip_render_check=True)
    obs, info = env.reset(seed=3)
    task = env.unwrapped
    m, s = task.data.memory_size, task.data.sentence_size
    assert obs.shape == (m + 1, s) and obs.dtype == np.int32 and env.observation_space.contains(obs)
    assert isinstance(env.action_space, gym.spaces.Discrete)
    assert env.action_space.n == len(task.vocab)
    target = info["target"]
    # the last row is the question, the rows before it the story so far
    assert task.vocab.words[obs[-1][0]] in {"where", "is"}
    _, reward, terminated, truncated, info = env.step(target)
    assert (reward, terminated, truncated, info["target"]) == (1.0, True, False, target)
    env.reset(seed=3)
    _, reward, terminated, _, _ = env.step((target + 1) % env.action_space.n)
    assert reward == 0.0 and terminated
    # the same seed draws the same question
    assert np.array_equal(env.reset(seed=3)[0], env.reset(seed=3)[0])


def test_dataset_splits_shapes_and_groups():
    task = BabiEnv(**GENERATED)
    train, valid, test = (task.dataset(s) for s in ("train", "valid", "test"))
    assert (len(train), len(valid), len(test)) == (108, 12, 120)  # 10% of each task to valid
    m, s = task.data.memory_size, task.data.sentence_size
    for split in (train, valid, test):
        assert split.batch_axis == 0 and split.group_names == ("qa1", "qa6")
        assert split.arrays["stories"].shape == (len(split), m, s)
        assert split.arrays["questions"].shape == (len(split), s)
        assert split.arrays["answers"].shape == (len(split),)
        assert np.bincount(split.groups).tolist() == [len(split) // 2] * 2
    # qa6 answers yes or no; qa1 answers a place
    words = task.vocab.words
    qa6 = {words[a] for a in test.arrays["answers"][test.groups == 1]}
    assert qa6 == {"yes", "no"}
    # built once per process: a second instance shares the arrays
    assert BabiEnv(**GENERATED).dataset("train").arrays["stories"] is train.arrays["stories"]
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        task.dataset("dev")


def test_novel_test_words_are_marked_unseen():
    task = BabiEnv(**GENERATED, test_words="novel")
    seen = task.seen_in_training
    test_words = set(np.unique(task.dataset("test").arrays["stories"]).tolist()) - {0}
    unseen = {task.vocab.words[w] for w in test_words if not seen[w]}
    assert {"oscar", "attic"} & unseen or len(unseen) >= 4


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"source": "web"}, "source"),
        ({"tasks": [21]}, "task 21"),
        ({"colour": 1}, "unknown kwargs"),
        ({"episode_split": "dev"}, "episode_split"),
    ],
)
def test_bad_kwargs_are_clear_errors(kwargs, message):
    with pytest.raises(envs.EnvSpecError, match=message):
        envs.make("memrl/BAbI-v0", **{**GENERATED, **kwargs})


def test_data_path_comes_from_memrl_data(tmp_path, monkeypatch):
    monkeypatch.setenv("MEMRL_DATA", str(tmp_path))
    assert default_babi_root() == tmp_path / "babi"
    with pytest.raises(envs.EnvSpecError, match=str(tmp_path / "babi")):
        envs.make("memrl/BAbI-v0", tasks=[1])


@needs_babi
def test_official_task_1_through_the_registry():
    env = envs.make("memrl/BAbI-v0", tasks=[1], root=os.fspath(_official_root()))
    task = env.unwrapped
    assert len(task.dataset("test")) == 1000 and len(task.dataset("train")) == 900
    described = task.describe("test", 0)
    assert described["question"].startswith("where is") and described["rows"]
    # the first test story: "1 John travelled to the hallway. 2 Mary journeyed to the
    # bathroom. 3 Where is John?	hallway	1": the fact on line 1 is memory row 0
    assert described["question"] == "where is john" and described["answer"] == "hallway"
    assert described["rows"][0] == "john travelled to the hallway"
    assert described["support_rows"] == [0]


def test_the_attention_table_marks_the_supporting_facts():
    from rollout.dataset_evaluation import format_explanations

    example = {
        "task": "qa1",
        "question": "where is john",
        "answer": "hallway",
        "correct": True,
        "rows": ["john went to the hallway", "mary went to the bathroom"],
        "support_rows": [0],
        "figures": {"hop 1": [0.75, 0.25], "hop 2": [1.0, 0.0]},
    }
    lines = format_explanations([example]).splitlines()
    assert lines[2] == "| row | support | hop 1 | hop 2 |"
    assert lines[4] == "| john went to the hallway | yes | 0.75 ██████ | 1.00 ████████ |"
    assert lines[5] == "| mary went to the bathroom |  | 0.25 ██ | 0.00  |"
    del example["support_rows"]  # a task that names none: no column
    assert format_explanations([example]).splitlines()[2] == "| row | hop 1 | hop 2 |"
