"""The rollout worker in-process: batch layout, final observations, episodes, evaluation."""

from __future__ import annotations

import numpy as np

from agents import dqn, reinforce
from rollout.batches import merge_batches
from rollout.worker import RolloutWorker


def test_transitions_batch_layout_and_final_obs():
    worker = RolloutWorker(
        "tests.fakes:Corridor", {"length": 3, "max_steps": 5}, dqn.Config(hidden=[8]), 4, seed=0
    )
    batch = worker.sample_transitions(40)
    d = batch.data
    assert batch.env_steps == 40
    assert (
        d["obs"].shape == (10, 4, 3)
        and d["actions"].shape == (10, 4)
        and d["rewards"].dtype == np.float32
    )
    done = d["terminated"] | d["truncated"]
    assert done.any()
    # at an episode's end next_obs is the true final obs; otherwise it is the next row's obs
    t, e = np.argwhere(done)[0]
    if d["terminated"][t, e]:
        assert d["next_obs"][t, e].argmax() == 2
    not_done = ~done[:-1]
    np.testing.assert_array_equal(d["next_obs"][:-1][not_done], d["obs"][1:][not_done])
    assert len(batch.episode_returns) == int(done.sum())


def test_episode_batches_are_complete_and_masked():
    worker = RolloutWorker(
        "tests.fakes:Corridor",
        {"length": 4, "max_steps": 6},
        reinforce.Config(hidden=[8]),
        3,
        seed=1,
    )
    batch = worker.sample_episodes(30)
    d = batch.data
    lengths = d["mask"].sum(0)
    assert lengths.sum() >= 30 and d["obs"].shape[:2] == d["mask"].shape
    for i, n in enumerate(lengths.astype(int)):
        assert d["mask"][:n, i].all() and not d["mask"][n:, i].any()
        # a complete episode: it starts at the left end and either reached the goal or was truncated
        assert d["obs"][0, i].argmax() == 0
        assert d["rewards"][n - 1, i] == 1.0 or n == 6
    other = worker.sample_episodes(30)
    merged = merge_batches([batch, other])
    assert merged["mask"].shape[1] == d["mask"].shape[1] + other.data["mask"].shape[1]
    assert merged["mask"].sum() == d["mask"].sum() + other.data["mask"].sum()


def test_evaluate_runs_exactly_n_episodes_deterministically():
    worker = RolloutWorker("tests.fakes:Corridor", {}, dqn.Config(hidden=[8]), 4, seed=0)
    a = worker.evaluate(10, seed=3)
    b = worker.evaluate(10, seed=3)
    assert len(a) == 10 and a == b
