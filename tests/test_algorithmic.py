"""The NTM algorithmic tasks (envs/algorithmic.py): the rules of each task on sample_batch output,
the step-per-time-step env API, bad configs, determinism, shapes."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from gymnasium.utils import seeding
from gymnasium.utils.env_checker import check_env

import envs
from envs.algorithmic import (
    AlgorithmicTask,
    AssociativeRecall,
    Copy,
    DynamicNGrams,
    PrioritySort,
    RepeatCopy,
)
from rollout.config import load_config

IDS = [
    "memrl/Copy-v0",
    "memrl/RepeatCopy-v0",
    "memrl/AssociativeRecall-v0",
    "memrl/DynamicNGrams-v0",
    "memrl/PrioritySort-v0",
]


def batch(task: AlgorithmicTask, size: int = 16, seed: int = 0):
    return task.sample_batch(size, np.random.default_rng(seed))


def assert_padding_zero(inputs, targets, mask, b: int, length: int) -> None:
    assert not inputs[length:, b].any() and not targets[length:, b].any()
    assert not mask[length:, b].any()


@pytest.mark.parametrize("env_id", IDS)
def test_gymnasium_checker_passes(env_id):
    check_env(envs.make(env_id).unwrapped, skip_render_check=True)


def test_registered_ids_and_kwargs():
    assert set(IDS) <= set(envs.MEMRL_ENVS) and set(IDS) <= set(envs.known_ids())
    assert all(envs.describe(env_id) for env_id in IDS)
    env = envs.make("memrl/Copy-v0", max_len=5)
    assert env.unwrapped.max_len == 5 and env.unwrapped.memory_slots_needed == 5
    for seed in range(5):
        _, info = env.reset(seed=seed)
        assert 3 <= info["sequence_length"] <= 11
    assert isinstance(envs.make("envs.algorithmic:PrioritySort").unwrapped, PrioritySort)


def test_memory_slots_needed():
    assert Copy(max_len=7).memory_slots_needed == 7
    assert RepeatCopy(max_len=4).memory_slots_needed == 4
    assert AssociativeRecall(item_len=2, max_items=5).memory_slots_needed == 10
    assert PrioritySort(num_inputs=9, num_outputs=3).memory_slots_needed == 9
    assert DynamicNGrams().memory_slots_needed is None


def test_copy_rules():
    task = Copy(bits=5, min_len=1, max_len=12)
    inputs, targets, mask = batch(task, 32)
    lengths = []
    for b in range(32):
        delim = np.flatnonzero(inputs[:, b, 5])
        assert len(delim) == 1
        length = int(delim[0])
        lengths.append(length)
        assert not inputs[length, b, :5].any()  # the delimiter step carries only the delimiter
        seq = inputs[:length, b, :5]
        assert set(np.unique(seq)) <= {0.0, 1.0}
        np.testing.assert_array_equal(targets[length + 1 : 2 * length + 1, b], seq)
        assert not inputs[length + 1 :, b].any() and not targets[: length + 1, b].any()
        expected = np.zeros(len(mask))
        expected[length + 1 : 2 * length + 1] = 1
        np.testing.assert_array_equal(mask[:, b], expected)
        assert_padding_zero(inputs, targets, mask, b, 2 * length + 1)
    assert len(set(lengths)) > 3 and min(lengths) >= 1 and max(lengths) <= 12
    assert len(mask) == 2 * max(lengths) + 1


def test_repeat_copy_rules():
    """The paper's section 4.2 (and pytorch-ntm's task): the sequence, a delimiter step, then the
    normalised repeat count alone on its own channel; the copies and the end marker are targets
    only after every input has been given."""
    task = RepeatCopy(bits=4, min_len=1, max_len=5, min_repeats=2, max_repeats=6)
    assert (task.input_size, task.output_size) == (6, 5)
    values = task.encode_repeats(np.arange(2, 7))
    assert abs(values.mean()) < 1e-6 and math.isclose(values.var(), 1.0, rel_tol=1e-5)
    mean, std = 4.0, math.sqrt((5**2 - 1) / 12)
    inputs, targets, mask = batch(task, 32, seed=1)
    seen = set()
    for b in range(32):
        delim = np.flatnonzero(inputs[:, b, 4])
        assert len(delim) == 1
        length = int(delim[0])
        assert not inputs[length, b, :4].any() and inputs[length, b, 5] == 0  # delimiter alone
        count_steps = np.flatnonzero(inputs[:, b, 5])
        assert count_steps.tolist() in ([length + 1], [])  # [] only for R == mean (value 0)
        assert not inputs[length + 1, b, :5].any()  # the count step carries only the count
        repeats = round(float(inputs[length + 1, b, 5]) * std + mean)
        assert 2 <= repeats <= 6
        seen.add(repeats)
        seq = inputs[:length, b, :4]
        assert set(np.unique(seq)) <= {0.0, 1.0}
        outs = length * repeats
        first = length + 2
        assert not targets[:first, b].any()  # no target while input is given
        np.testing.assert_array_equal(
            targets[first : first + outs, b, :4], np.tile(seq, (repeats, 1))
        )
        end = first + outs
        np.testing.assert_array_equal(targets[end, b], [0, 0, 0, 0, 1])
        assert np.flatnonzero(targets[:, b, 4]).tolist() == [end]  # the marker once, at the end
        assert np.flatnonzero(mask[:, b]).tolist() == list(range(first, end + 1))
        assert not inputs[first:, b].any()  # no input once the outputs start
        assert_padding_zero(inputs, targets, mask, b, end + 1)
        assert end + 1 == length * (repeats + 1) + 3
    assert len(seen) >= 4
    assert not RepeatCopy(min_repeats=3, max_repeats=3).encode_repeats(np.array([3])).any()
    low, high = task.observation_space.low[5], task.observation_space.high[5]
    assert low == task.encode_repeats(np.array([2]))[0] and high == -low


def test_repeat_copy_report_keeps_the_training_count_scale():
    """A generalisation variant with R fixed at 20 must show 20 on the training scale, not 0 (the
    mean), or the report scores a task the network was never told."""
    task = RepeatCopy()  # R uniform in 1..10: mean 5.5, std sqrt(99/12)
    variants = {label: kwargs for label, _, kwargs in task.report_variants}
    assert {"length 10 x 5 repeats", "length 10 x 20 repeats", "length 20 x 10 repeats"} <= set(
        variants
    )
    long = RepeatCopy(**variants["length 10 x 20 repeats"])
    inputs, _, _ = batch(long, 2)
    expected = (20 - 5.5) / math.sqrt(99 / 12)
    np.testing.assert_allclose(inputs[11, :, 9], expected, rtol=1e-6)
    assert long.observation_space.contains(inputs[11, 0])
    # a curriculum level with one repeat count on the training scale: the count step and the
    # steps around it (count channel 0) are all inside the observation space
    one = RepeatCopy(min_repeats=1, max_repeats=1, count_mean=5.5, count_std=math.sqrt(99 / 12))
    inputs, _, _ = batch(one, 4)
    assert all(one.observation_space.contains(step) for step in inputs[:, 0])
    assert one.observation_space.low[9] < 0 == one.observation_space.high[9]
    with pytest.raises(ValueError, match=r"count_std=-1 .*>= 0"):
        RepeatCopy(count_std=-1)


def test_associative_recall_rules():
    task = AssociativeRecall(bits=6, item_len=3, min_items=2, max_items=6)
    inputs, targets, mask = batch(task, 32, seed=2)
    counts, queried = set(), set()
    for b in range(32):
        starts = np.flatnonzero(inputs[:, b, 6])
        counts.add(len(starts))
        assert 2 <= len(starts) <= 6
        np.testing.assert_array_equal(starts, np.arange(len(starts)) * 4)
        items = [inputs[s + 1 : s + 4, b, :6] for s in starts]
        q0, q1 = np.flatnonzero(inputs[:, b, 7])
        assert q0 == len(starts) * 4 and q1 == q0 + 4
        query = inputs[q0 + 1 : q1, b, :6]
        matches = [i for i, item in enumerate(items[:-1]) if np.array_equal(item, query)]
        assert matches, "the query must be one of the items but the last"
        queried.add(matches[0])
        answer = targets[q1 + 1 : q1 + 4, b]
        assert any(np.array_equal(answer, items[i + 1]) for i in matches)
        assert np.flatnonzero(mask[:, b]).tolist() == [q1 + 1, q1 + 2, q1 + 3]
        assert not inputs[q1 + 1 :, b].any()
        assert_padding_zero(inputs, targets, mask, b, q1 + 4)
    assert len(counts) >= 3 and len(queried) >= 3


def brute_force_bayes(bits: np.ndarray, n: int, alpha: float) -> np.ndarray:
    """P(b_t = 1) from the counts after the same n-1-bit context earlier in the sequence,
    slowly (n = 1: no context, the share of 1s so far)."""
    out = np.full(len(bits), 0.5)
    for t in range(n - 1, len(bits)):
        ctx = tuple(bits[t - n + 1 : t])
        ones = zeros = 0
        for s in range(n - 1, t):
            if tuple(bits[s - n + 1 : s]) == ctx:
                ones += bits[s]
                zeros += 1 - bits[s]
        out[t] = (ones + alpha) / (ones + zeros + 2 * alpha)
    return out


def test_dynamic_ngrams_layout_and_bayes_optimal():
    """Every one of the `length` bits is predicted from the bits before it (the paper scores all
    200); input 0 at t=0, then the previous bit."""
    task = DynamicNGrams(n=4, length=60, alpha=0.5)
    inputs, targets, mask = batch(task, 5, seed=3)
    assert inputs.shape == (60, 5, 1) and targets.shape == (60, 5, 1)
    assert not inputs[0].any()
    np.testing.assert_array_equal(inputs[1:], targets[:-1])
    assert mask.shape == (60, 5) and mask.all()
    predictions = task.bayes_optimal_predictions(inputs)
    for b in range(5):
        bits = targets[:, b, 0].astype(int)
        np.testing.assert_allclose(predictions[:, b], brute_force_bayes(bits, 4, 0.5))
    assert (predictions[:3] == 0.5).all()
    prob = np.where(targets[..., 0] > 0.5, predictions, 1 - predictions)
    expected = -(mask * np.log2(prob)).sum() / 5
    assert math.isclose(task.bayes_optimal_cost(inputs, targets, mask), expected)


def test_dynamic_ngrams_bayes_estimators_of_shorter_order():
    """context_bits=k is the estimator of a (k+1)-gram source on the same bits; the full
    context is the optimal one, and on the paper's 6-grams less context costs more bits."""
    task = DynamicNGrams(n=4, length=50, alpha=0.5)
    inputs, targets, mask = batch(task, 3, seed=11)
    for k in range(3):
        predictions = task.bayes_optimal_predictions(inputs, context_bits=k)
        for b in range(3):
            bits = targets[:, b, 0].astype(int)
            np.testing.assert_allclose(predictions[:, b], brute_force_bayes(bits, k + 1, 0.5))
    np.testing.assert_array_equal(
        task.bayes_optimal_predictions(inputs, context_bits=3),
        task.bayes_optimal_predictions(inputs),
    )
    with pytest.raises(ValueError, match=r"context_bits must be in \[0, n-1=3\], got 4"):
        task.bayes_optimal_predictions(inputs, context_bits=4)
    paper = DynamicNGrams()
    sample = batch(paper, 200, seed=2)
    costs = [paper.bayes_optimal_cost(*sample, context_bits=k) for k in range(6)]
    assert all(a > b for a, b in zip(costs, costs[1:])), costs
    assert costs[0] > 180 and costs[-1] == paper.bayes_optimal_cost(*sample)


def test_dynamic_ngrams_paper_bayes_optimal_cost():
    """The paper's 6-gram task (200 bits, Beta(1/2, 1/2) tables): the optimal estimator costs
    ~133 bits per sequence (Graves et al. 2014, Figure 13); 5 of them are the first bits."""
    task = DynamicNGrams()
    inputs, targets, mask = batch(task, 400, seed=7)
    assert inputs.shape == (200, 400, 1)
    assert 130 < task.bayes_optimal_cost(inputs, targets, mask) < 136


def test_dynamic_ngrams_follow_a_fresh_table_per_sequence():
    # With alpha tiny every table entry is ~0 or ~1: a context always predicts the same bit.
    task = DynamicNGrams(n=3, length=200, alpha=1e-4)
    inputs, targets, mask = batch(task, 16, seed=4)
    tables = []
    for b in range(16):
        bits = targets[:, b, 0].astype(int)
        follows: dict[tuple[int, ...], set[int]] = {}
        for t in range(2, 200):
            follows.setdefault(tuple(bits[t - 2 : t]), set()).add(int(bits[t]))
        assert all(len(v) == 1 for v in follows.values()), follows
        tables.append({k: v.pop() for k, v in follows.items()})
    assert len({tuple(sorted(t.items())) for t in tables}) > 4  # tables differ between sequences
    # A near-deterministic source is cheap to predict; coin flips under alpha=0.5 are not.
    assert task.bayes_optimal_cost(inputs, targets, mask) < 15
    default = DynamicNGrams()
    assert 50 < default.bayes_optimal_cost(*batch(default, 16, seed=5)) < 200


def test_priority_sort_rules():
    task = PrioritySort(bits=8, num_inputs=20, num_outputs=16)
    inputs, targets, mask = batch(task, 16, seed=6)
    assert inputs.shape == (37, 16, 10) and not inputs[20:, :, :9].any()
    assert inputs[20, :, 9].all() and not inputs[:20, :, 9].any() and not inputs[21:].any()
    np.testing.assert_array_equal(mask, np.r_[np.zeros(21), np.ones(16)][:, None].repeat(16, 1))
    for b in range(16):
        priority = inputs[:20, b, 8]
        assert priority.min() >= -1 and priority.max() <= 1 and len(set(priority)) == 20
        ranked = sorted(range(20), key=lambda i: -priority[i])
        np.testing.assert_array_equal(targets[21:, b], inputs[ranked[:16], b, :8])
        assert not targets[:21, b].any()


def collect(env, seed: int, policy) -> tuple[list, list, list, list]:
    obs, info = env.reset(seed=seed)
    observations, rewards, targets, output_steps = [obs], [], [], []
    terminated = False
    while not terminated:
        obs, reward, terminated, truncated, info = env.step(policy(len(rewards)))
        assert not truncated
        observations.append(obs)
        rewards.append(reward)
        targets.append(info["target"])
        output_steps.append(info["output_step"])
    return observations, rewards, targets, output_steps


@pytest.mark.parametrize("env_id", IDS)
def test_env_api_rewards_and_replay(env_id):
    env = envs.make(env_id)
    task = env.unwrapped
    zeros = np.zeros(task.output_size, np.int8)
    obs, rewards, targets, output_steps = collect(env, 7, lambda t: zeros)
    inputs, ref_targets, mask = task.sample_batch(1, seeding.np_random(7)[0])
    assert len(rewards) == len(mask) and not obs[-1].any()
    np.testing.assert_array_equal(np.stack(obs[:-1]), inputs[:, 0])
    np.testing.assert_array_equal(np.stack(targets), ref_targets[:, 0])
    np.testing.assert_array_equal(output_steps, mask[:, 0].astype(bool))
    assert sum(rewards) == -float((ref_targets[:, 0] * mask[:, 0, None]).sum()) < 0
    assert all(r == 0 for r, out in zip(rewards, output_steps) if not out)
    obs2, perfect, _, _ = collect(env, 7, lambda t: targets[t].astype(np.int8))
    assert sum(perfect) == 0 and len(perfect) == len(rewards)
    np.testing.assert_array_equal(np.stack(obs2), np.stack(obs))  # same seed -> same episode
    with pytest.raises(RuntimeError, match="episode is over"):
        task.step(zeros)


@pytest.mark.parametrize(
    ("cls", "kwargs", "message"),
    [
        (Copy, {"bits": 0}, r"bits=0 .*>= 1"),
        (Copy, {"min_len": 0}, r"min_len=0 .*>= 1"),
        (Copy, {"min_len": 5, "max_len": 4}, r"max_len=4 .*>= min_len=5"),
        (Copy, {"max_len": 2.5}, r"max_len=2.5 .*integer"),
        (RepeatCopy, {"min_repeats": 0}, r"min_repeats=0 "),
        (RepeatCopy, {"min_repeats": 4, "max_repeats": 3}, r"max_repeats=3 .*min_repeats=4"),
        (RepeatCopy, {"max_len": 0}, r"max_len=0 "),
        (AssociativeRecall, {"min_items": 1}, r"min_items=1 .*>= 2"),
        (AssociativeRecall, {"item_len": 0}, r"item_len=0 "),
        (AssociativeRecall, {"min_items": 3, "max_items": 2}, r"max_items=2 .*min_items=3"),
        (DynamicNGrams, {"n": 0}, r"n=0 .*>= 1"),
        (DynamicNGrams, {"alpha": 0.0}, r"alpha=0.0 .*0 < alpha"),
        (DynamicNGrams, {"alpha": float("nan")}, r"alpha=nan "),
        (DynamicNGrams, {"n": 6, "length": 5}, r"length=5 .*max\(2, n=6\)"),
        (PrioritySort, {"num_outputs": 21}, r"num_outputs=21 .*\[1, num_inputs=20\]"),
        (PrioritySort, {"num_inputs": 0}, r"num_inputs=0 "),
        (PrioritySort, {"bits": True}, r"bits=True "),
    ],
)
def test_bad_configs_raise_value_error(cls, kwargs, message):
    with pytest.raises(ValueError, match=f"{cls.__name__}: {message}"):
        cls(**kwargs)


def test_bad_configs_through_make_are_env_spec_errors():
    with pytest.raises(envs.EnvSpecError, match=r"could not build 'memrl/Copy-v0': .*bits=0"):
        envs.make("memrl/Copy-v0", bits=0)
    with pytest.raises(envs.EnvSpecError, match=r"could not build 'envs.algorithmic:Copy'"):
        envs.make("envs.algorithmic:Copy", min_len=3, max_len=2)
    with pytest.raises(ValueError, match="batch_size=0"):
        Copy().sample_batch(0, np.random.default_rng(0))


@pytest.mark.parametrize("env_id", IDS)
@pytest.mark.parametrize("size", [1, 16])
def test_sample_batch_shapes_and_determinism(env_id, size):
    task = envs.make(env_id).unwrapped
    first, second = batch(task, size, seed=11), batch(task, size, seed=11)
    inputs, targets, mask = first
    steps = len(mask)
    assert inputs.shape == (steps, size, task.input_size)
    assert targets.shape == (steps, size, task.output_size) and mask.shape == (steps, size)
    assert all(a.dtype == np.float32 for a in first)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    assert set(np.unique(mask)) <= {0.0, 1.0} and mask.sum(0).min() >= 1
    assert task.observation_space.contains(inputs[0, 0])
    assert ((inputs >= task.observation_space.low) & (inputs <= task.observation_space.high)).all()
    other = batch(task, size, seed=12)
    assert any(a.shape != b.shape or (a != b).any() for a, b in zip(first, other))


def test_repeat_copy_curriculum_keeps_the_count_scale():
    """configs/ntm_repeat_copy.yaml grows the repeat count level by level: every level's envs
    must encode a count as the full task does, or a count learned at one level means another
    later; the levels end at the full task, which every evaluation measures."""
    cfg = load_config(Path(__file__).parents[1] / "configs" / "ntm_repeat_copy.yaml")
    full = RepeatCopy(**cfg.env.kwargs)
    assert (full.count_mean, full.count_std) == (5.5, math.sqrt(99 / 12))
    tops = []
    for level in cfg.env.curriculum:
        env = RepeatCopy(**{**cfg.env.kwargs, **level})
        tops.append(env.max_repeats)
        counts = np.arange(env.min_repeats, env.max_repeats + 1)
        np.testing.assert_array_equal(env.encode_repeats(counts), full.encode_repeats(counts))
    assert tops == sorted(tops) and tops[-1] == full.max_repeats
    evaluated = RepeatCopy(**{**cfg.env.kwargs, **cfg.env.curriculum[0], **cfg.env.eval_kwargs})
    assert (evaluated.min_repeats, evaluated.max_repeats) == (1, 10)
