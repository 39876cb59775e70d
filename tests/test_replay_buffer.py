"""Replay: n-step returns against hand-computed episodes, ring overwrite, save/load."""

from __future__ import annotations

import io

import numpy as np
import pytest

from rollout.replay_buffer import ReplayBuffer

GAMMA = 0.5


def transitions(rewards, terminated, truncated, streams=1):
    steps = len(rewards)
    obs = np.arange(steps, dtype=np.float32)[:, None, None].repeat(streams, 1)
    return {
        "obs": obs,
        "actions": np.arange(steps)[:, None].repeat(streams, 1),
        "rewards": np.asarray(rewards, np.float32)[:, None].repeat(streams, 1),
        "terminated": np.asarray(terminated, bool)[:, None].repeat(streams, 1),
        "truncated": np.asarray(truncated, bool)[:, None].repeat(streams, 1),
        "next_obs": obs + 100.0,  # final obs of step t is t + 100
    }


def sample_all(buf, n=4000, seed=0):
    out = buf.sample(n, np.random.default_rng(seed))
    return {
        int(a): (r, d, int(nx[0] - 100))
        for a, r, d, nx in zip(out["actions"], out["returns"], out["discounts"], out["next_obs"])
    }


def test_n_step_returns_against_hand_computed_episode():
    # steps 0..5; step 2 terminates an episode; step 4 is truncated.
    buf = ReplayBuffer(capacity=100, num_streams=1, n_step=3, gamma=GAMMA)
    buf.add(transitions([1, 2, 4, 8, 16, 32], [0, 0, 1, 0, 0, 0], [0, 0, 0, 0, 1, 0]))
    got = sample_all(buf)
    # (return, discount, row of the bootstrap next_obs)
    expected = {
        0: (1 + 0.5 * 2 + 0.25 * 4, 0.0, 2),  # ends at the terminal step 2: no bootstrap
        1: (2 + 0.5 * 4, 0.0, 2),
        2: (4, 0.0, 2),
        3: (8 + 0.5 * 16, 0.25, 4),  # truncated at 4: bootstrap from its final obs
        4: (16, 0.5, 4),
        5: (32, 0.5, 5),  # newest row: a 1-step return
    }
    assert set(got) == set(expected)
    for action, (ret, disc, nxt) in expected.items():
        r, d, n = got[action]
        assert r == pytest.approx(ret) and d == pytest.approx(disc) and n == nxt, action


def test_one_step_is_plain_td():
    buf = ReplayBuffer(capacity=10, num_streams=1, n_step=1, gamma=0.9)
    buf.add(transitions([1, 2, 3], [0, 0, 1], [0, 0, 0]))
    got = sample_all(buf)
    assert got[0] == (pytest.approx(1), pytest.approx(0.9), 0)
    assert got[2] == (pytest.approx(3), pytest.approx(0.0), 2)


def test_ring_overwrites_oldest_and_never_reads_across_the_cursor():
    buf = ReplayBuffer(capacity=4, num_streams=1, n_step=3, gamma=GAMMA)
    buf.add(transitions([1, 2, 4, 8, 16, 32], [0] * 6, [0] * 6))  # rows hold steps 2..5
    assert len(buf) == 4
    got = sample_all(buf)
    assert set(got) == {2, 3, 4, 5}
    assert got[4][0] == pytest.approx(
        16 + 0.5 * 32
    )  # stops at the newest step, not the wrapped oldest
    assert got[5][0] == pytest.approx(32)


def test_streams_are_separate_and_save_load_round_trips():
    buf = ReplayBuffer(capacity=20, num_streams=2, n_step=2, gamma=GAMMA)
    batch = transitions([1, 2, 3], [0, 0, 0], [0, 0, 0], streams=2)
    batch["rewards"][:, 1] *= 10
    buf.add(batch)
    f = io.BytesIO()
    buf.save(f)
    f.seek(0)
    other = ReplayBuffer(capacity=20, num_streams=2, n_step=2, gamma=GAMMA)
    other.load(f)
    a, b = buf.sample(64, np.random.default_rng(1)), other.sample(64, np.random.default_rng(1))
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert set(np.round(a["returns"], 3)) <= {2.0, 20.0, 3.5, 35.0, 3.0, 30.0}
    wrong = ReplayBuffer(capacity=30, num_streams=2, n_step=2, gamma=GAMMA)
    f.seek(0)
    with pytest.raises(ValueError, match="shape"):
        wrong.load(f)
