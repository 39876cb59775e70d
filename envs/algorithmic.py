"""The algorithmic tasks of Graves, Wayne & Danihelka (2014), "Neural Turing Machines",
arXiv:1410.5401, section 4: copy (4.1), repeat copy (4.2), associative recall (4.3), dynamic
N-grams (4.4) and priority sort (4.5).

Each task is both a batch sampler for supervised training and a Gymnasium env:

- `sample_batch(batch_size, rng)` returns time-major float32 `(inputs [T, B, input_size],
  targets [T, B, output_size], mask [T, B])`. Every sequence draws its own length, starts at
  t=0 and is padded at the end with zeros; `mask` is 1 exactly at the steps a model is scored on;
  T is the longest sequence in the batch.
- As an env, one step is one time step: the observation is the input vector, the action the
  output bits (`MultiBinary(output_size)`), the reward minus the number of wrong bits at an
  output step (0 elsewhere), and the episode terminates at the sequence's last step.

Defaults are the paper's training settings.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray]
# (label, length, env kwargs) of the end-of-run generalisation report's rows
Variants = list[tuple[str, int, dict[str, int]]]


def _scatter(dest: np.ndarray, start: np.ndarray, values: np.ndarray, lengths: Any = None) -> None:
    """dest[start[b] + i, b] = values[i, b] for i < lengths[b] (every i when lengths is None)."""
    steps, batch = values.shape[:2]
    i = np.arange(steps)[:, None]
    t = np.asarray(start)[None, :] + i
    b = np.broadcast_to(np.arange(batch)[None, :], t.shape)
    keep = np.ones(t.shape, bool) if lengths is None else i < np.asarray(lengths)[None, :]
    dest[t[keep], b[keep]] = values[keep]


def _window(steps: int, start: np.ndarray, stop: np.ndarray) -> np.ndarray:
    """[steps, B] float32: 1 where start[b] <= t < stop[b]."""
    t = np.arange(steps)[:, None]
    return ((t >= start[None, :]) & (t < stop[None, :])).astype(np.float32)


class AlgorithmicTask(gym.Env):
    """Base class: batch sampling with padding, and the step-per-time-step env on top of it.

    A subclass sets its sizes through `__init__` and implements `_generate(batch_size, rng)`,
    returning `(inputs, targets, mask, lengths)` with T = lengths.max(); this class zeroes every
    step past a sequence's own length and casts to float32.
    """

    metadata: dict[str, Any] = {"render_modes": []}
    # what the end-of-run report scores beyond training (the paper's generalisation tests)
    report_variants: ClassVar[Variants] = []
    # sequences per row of that report when the task's paper fixes a validation set size (None:
    # the report's default)
    report_sequences: ClassVar[int | None] = None

    def __init__(
        self,
        input_size: int,
        output_size: int,
        obs_low: Any = 0.0,
        obs_high: Any = 1.0,
        classes: int = 0,
    ) -> None:
        """`classes` > 0 makes the outputs symbols (Discrete(classes) actions, integer targets
        [T, B]) instead of `output_size` bits (MultiBinary actions, float targets [T, B, bits])."""
        self.input_size, self.output_size, self.classes = input_size, output_size, classes
        low = np.broadcast_to(np.asarray(obs_low, np.float32), (input_size,)).copy()
        high = np.broadcast_to(np.asarray(obs_high, np.float32), (input_size,)).copy()
        self.observation_space = gym.spaces.Box(low, high, (input_size,), np.float32)
        self.action_space: gym.Space = (
            gym.spaces.Discrete(classes) if classes else gym.spaces.MultiBinary(output_size)
        )
        self._inputs: np.ndarray | None = None
        self._targets = np.zeros((0, output_size), np.float32)
        self._mask = np.zeros(0, np.float32)
        self._t = 0

    # -- argument checks ------------------------------------------------------------------------

    def _int_arg(
        self, name: str, value: Any, low: int, high: float = math.inf, valid: str = ""
    ) -> int:
        """`value` as an int, or a ValueError naming the argument, its value and the valid range."""
        if (
            isinstance(value, bool)
            or not isinstance(value, numbers.Integral)
            or not low <= value <= high
        ):
            raise ValueError(
                f"{type(self).__name__}: {name}={value!r} is invalid; valid range: an integer "
                f"{valid or f'>= {low}'}"
            )
        return int(value)

    # -- sampling -------------------------------------------------------------------------------

    @property
    def memory_slots_needed(self) -> int | None:
        """Memory rows a model needs to store the whole input (None: no fixed amount)."""
        return None

    def _generate(self, batch_size: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
        raise NotImplementedError

    def sample_batch(self, batch_size: int, rng: np.random.Generator) -> Arrays:
        """`(inputs [T, B, input_size], targets [T, B, output_size], mask [T, B])`, float32,
        time-major, left-aligned, zero-padded at the end; T = the longest sequence. Symbol
        tasks (`classes` > 0) give int64 targets [T, B]."""
        batch_size = self._int_arg("batch_size", batch_size, 1)
        inputs, targets, mask, lengths = self._generate(batch_size, rng)
        steps = int(np.max(lengths))
        live = np.arange(steps)[:, None] < np.asarray(lengths)[None, :]
        inputs = (inputs[:steps] * live[..., None]).astype(np.float32)
        if self.classes:
            targets = (targets[:steps] * live).astype(np.int64)
        else:
            targets = (targets[:steps] * live[..., None]).astype(np.float32)
        return inputs, targets, (mask[:steps] * live).astype(np.float32)

    # -- env API --------------------------------------------------------------------------------

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        inputs, targets, mask = self.sample_batch(1, self.np_random)
        self._inputs, self._targets, self._mask = inputs[:, 0], targets[:, 0], mask[:, 0]
        self._t = 0
        return self._inputs[0].copy(), {"sequence_length": len(self._mask)}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self._inputs is None:
            raise RuntimeError(f"{type(self).__name__}: call reset() before step().")
        if self._t >= len(self._mask):
            raise RuntimeError(f"{type(self).__name__}: the episode is over; call reset().")
        act = np.asarray(action)
        expected = 1 if self.classes else self.output_size
        if act.size != expected:
            raise ValueError(
                f"{type(self).__name__}: action has {act.size} values, expected {expected}."
            )
        t = self._t
        target = self._targets[t]
        output_step = bool(self._mask[t])
        # minus the wrong bits, or minus one for a wrong symbol
        reward = -float(np.count_nonzero(act.reshape(-1) != target)) if output_step else 0.0
        self._t += 1
        terminated = self._t == len(self._mask)
        obs = np.zeros(self.input_size, np.float32) if terminated else self._inputs[self._t].copy()
        return (
            obs,
            reward,
            terminated,
            False,
            {"target": np.copy(target), "output_step": output_step},
        )


class Copy(AlgorithmicTask):
    """Copy (NTM paper, section 4.1): reproduce a sequence of random binary vectors.

    Input (bits+1 channels, the last the delimiter): L vectors of Bernoulli(0.5) bits, L uniform
    in [min_len, max_len] per sequence; one step with only the delimiter on; L blank steps.
    Target (bits channels): the L vectors, during the L blank steps. T = 2L+1.
    """

    report_variants: ClassVar[Variants] = [
        (f"length {n}", n, {"min_len": n, "max_len": n}) for n in (10, 20, 30, 40, 60, 80, 100, 120)
    ]

    def __init__(self, bits: int = 8, min_len: int = 1, max_len: int = 20) -> None:
        self.bits = self._int_arg("bits", bits, 1)
        self.min_len = self._int_arg("min_len", min_len, 1)
        self.max_len = self._int_arg(
            "max_len", max_len, self.min_len, valid=f">= min_len={self.min_len}"
        )
        super().__init__(self.bits + 1, self.bits)

    @property
    def memory_slots_needed(self) -> int:
        return self.max_len

    def _generate(self, batch_size: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
        lens = rng.integers(self.min_len, self.max_len + 1, batch_size)
        longest, steps, cols = int(lens.max()), 2 * lens + 1, np.arange(batch_size)
        data = rng.integers(0, 2, (longest, batch_size, self.bits)).astype(np.float32)
        data *= (np.arange(longest)[:, None] < lens[None, :])[..., None]
        inputs = np.zeros((steps.max(), batch_size, self.input_size), np.float32)
        inputs[:longest, :, : self.bits] = data
        inputs[lens, cols, self.bits] = 1.0
        targets = np.zeros((steps.max(), batch_size, self.bits), np.float32)
        _scatter(targets, lens + 1, data, lens)
        return inputs, targets, _window(steps.max(), lens + 1, steps), steps


class RepeatCopy(AlgorithmicTask):
    """Repeat copy (NTM paper, section 4.2): output a sequence R times, then an end marker.

    Input (bits+2 channels: bits, delimiter, repeat count): L vectors of Bernoulli(0.5) bits (L
    uniform in [min_len, max_len]); one step with only the delimiter on; one step with only the
    repeat count R (uniform in [min_repeats, max_repeats]) on its own channel, normalised to mean
    0 and variance 1 under the discrete uniform distribution of R (0 when min_repeats ==
    max_repeats; see `encode_repeats`); then L*R+1 blank steps. The paper: the sequence is
    "followed by a scalar value indicating the desired number of copies, which appears on a
    separate input channel", and "no inputs are provided to the network after the initial
    sequence and repeat number"; the count comes after the delimiter, as in pytorch-ntm's task.
    Target (bits+1 channels, the last the end marker): nothing (masked) while input is given;
    the L vectors repeated R times during the blank steps, the end-marker channel 0 there; then
    one step with only the end marker on. Every output step scores all bits+1 channels.
    T = L*(R+1)+3.
    """

    @property  # type: ignore[override]
    def report_variants(self) -> Variants:
        """By repeat count (length 10) and by length (10 repeats); the count channel keeps this
        task's normalisation, so 20 repeats reads as 20 (beyond training), not as the mean."""
        norm = {"count_mean": self.count_mean, "count_std": self.count_std}
        return [
            (
                f"length {n} x {r} repeats",
                n * r,
                {"min_len": n, "max_len": n, "min_repeats": r, "max_repeats": r, **norm},
            )
            for n, r in ((10, 5), (10, 10), (10, 15), (10, 20), (20, 10))
        ]

    def __init__(
        self,
        bits: int = 8,
        min_len: int = 1,
        max_len: int = 10,
        min_repeats: int = 1,
        max_repeats: int = 10,
        count_mean: float | None = None,
        count_std: float | None = None,
    ) -> None:
        """`count_mean`/`count_std` fix the count channel's normalisation (default: the uniform
        R of this task's own range). The generalisation report passes the training task's, so
        20 repeats is shown as the value it has beyond the training range, as in the paper."""
        self.bits = self._int_arg("bits", bits, 1)
        self.min_len = self._int_arg("min_len", min_len, 1)
        self.max_len = self._int_arg(
            "max_len", max_len, self.min_len, valid=f">= min_len={self.min_len}"
        )
        self.min_repeats = self._int_arg("min_repeats", min_repeats, 1)
        self.max_repeats = self._int_arg(
            "max_repeats", max_repeats, self.min_repeats, valid=f">= min_repeats={self.min_repeats}"
        )
        lo, hi = self.min_repeats, self.max_repeats
        self.count_mean = float((lo + hi) / 2.0 if count_mean is None else count_mean)
        if count_std is None:
            count_std = math.sqrt(((hi - lo + 1) ** 2 - 1) / 12.0)
        if not (
            isinstance(count_std, numbers.Real) and count_std >= 0 and math.isfinite(count_std)
        ):
            raise ValueError(
                f"RepeatCopy: count_std={count_std!r} is invalid; valid range: a finite number >= 0"
            )
        self.count_std = float(count_std)
        low = np.zeros(self.bits + 2, np.float32)
        high = np.ones(self.bits + 2, np.float32)
        # the count channel holds 0 on every step but the count's own
        lo_count, hi_count = self.encode_repeats(np.array([self.min_repeats, self.max_repeats]))
        low[-1], high[-1] = min(lo_count, 0.0), max(hi_count, 0.0)
        super().__init__(self.bits + 2, self.bits + 1, low, high)

    @property
    def memory_slots_needed(self) -> int:
        return self.max_len

    def encode_repeats(self, repeats: np.ndarray) -> np.ndarray:
        """The count channel's value for R: (R - mean) / std of the uniform R (float32)."""
        repeats = np.asarray(repeats, np.float64)
        if self.count_std == 0:
            return np.zeros_like(repeats, np.float32)
        return ((repeats - self.count_mean) / self.count_std).astype(np.float32)

    def _generate(self, batch_size: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
        lens = rng.integers(self.min_len, self.max_len + 1, batch_size)
        reps = rng.integers(self.min_repeats, self.max_repeats + 1, batch_size)
        longest, outs, cols = int(lens.max()), lens * reps, np.arange(batch_size)
        first_out = lens + 2  # after the delimiter step and the count step
        steps = first_out + outs + 1
        data = rng.integers(0, 2, (longest, batch_size, self.bits)).astype(np.float32)
        data *= (np.arange(longest)[:, None] < lens[None, :])[..., None]
        inputs = np.zeros((steps.max(), batch_size, self.input_size), np.float32)
        inputs[:longest, :, : self.bits] = data
        inputs[lens, cols, self.bits] = 1.0
        inputs[lens + 1, cols, self.bits + 1] = self.encode_repeats(reps)
        repeated = data[np.arange(outs.max())[:, None] % lens[None, :], cols[None, :]]
        targets = np.zeros((steps.max(), batch_size, self.output_size), np.float32)
        _scatter(targets[..., : self.bits], first_out, repeated, outs)
        targets[first_out + outs, cols, self.bits] = 1.0
        return inputs, targets, _window(steps.max(), first_out, steps), steps


class AssociativeRecall(AlgorithmicTask):
    """Associative recall (NTM paper, section 4.3): given one item of a list, output the next.

    An item is item_len vectors of Bernoulli(0.5) bits. Input (bits+2 channels: bits, item
    delimiter, query delimiter): for each of n items (n uniform in [min_items, max_items]) one
    step with the item delimiter on, then the item's vectors; then a query-delimiter step, a copy
    of item q (q uniform in 0..n-2), another query-delimiter step; then item_len blank steps.
    Target (bits channels): item q+1 during the blank steps. T = (n+2)*(item_len+1).
    """

    report_variants: ClassVar[Variants] = [
        (f"{n} items", n, {"min_items": n, "max_items": n}) for n in (3, 6, 9, 12, 15, 20)
    ]

    def __init__(
        self, bits: int = 6, item_len: int = 3, min_items: int = 2, max_items: int = 6
    ) -> None:
        self.bits = self._int_arg("bits", bits, 1)
        self.item_len = self._int_arg("item_len", item_len, 1)
        self.min_items = self._int_arg("min_items", min_items, 2)
        self.max_items = self._int_arg(
            "max_items", max_items, self.min_items, valid=f">= min_items={self.min_items}"
        )
        super().__init__(self.bits + 2, self.bits)

    @property
    def memory_slots_needed(self) -> int:
        return self.max_items * self.item_len

    def _generate(self, batch_size: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
        k, cols = self.item_len, np.arange(batch_size)
        n = rng.integers(self.min_items, self.max_items + 1, batch_size)
        q = rng.integers(0, n - 1)  # uniform in 0..n-2, per sequence
        most = int(n.max())
        items = rng.integers(0, 2, (most, batch_size, k, self.bits)).astype(np.float32)
        block = np.zeros((most, k + 1, batch_size, self.input_size), np.float32)
        block[:, 0, :, self.bits] = 1.0
        block[:, 1:, :, : self.bits] = items.transpose(0, 2, 1, 3)
        block *= (np.arange(most)[:, None] < n[None, :])[:, None, :, None]
        steps = (n + 2) * (k + 1)
        inputs = np.zeros((steps.max(), batch_size, self.input_size), np.float32)
        inputs[: most * (k + 1)] = block.reshape(most * (k + 1), batch_size, self.input_size)
        query = np.zeros((k + 2, batch_size, self.input_size), np.float32)
        query[[0, k + 1], :, self.bits + 1] = 1.0
        query[1 : k + 1, :, : self.bits] = items[q, cols].transpose(1, 0, 2)
        start = n * (k + 1)
        _scatter(inputs, start, query)
        targets = np.zeros((steps.max(), batch_size, self.bits), np.float32)
        _scatter(targets, start + k + 2, items[q + 1, cols].transpose(1, 0, 2))
        return inputs, targets, _window(steps.max(), start + k + 2, steps), steps


class DynamicNGrams(AlgorithmicTask):
    """Dynamic N-grams (NTM paper, section 4.4): predict the next bit of an N-gram sequence.

    For each sequence a fresh table of 2^(n-1) probabilities is drawn from Beta(alpha, alpha),
    one per context of n-1 bits; the first n-1 bits are Bernoulli(0.5) and each later bit is 1
    with the table's probability for its n-1 predecessors. The model predicts every one of the
    `length` bits, each from the bits before it (one channel in, one out): T = length,
    inputs[0] = 0 (nothing seen yet), inputs[t] = b_(t-1), targets[t] = b_t, mask 1 everywhere.
    So the cost is over all 200 bits, as the paper's (its Bayes-optimal cost, 133 bits per
    sequence, includes the first bits, which cost 1 bit each to any predictor).
    """

    report_variants: ClassVar[Variants] = [("200 bits", 200, {})]
    # the paper's validation protocol: the report scores 1000 sequences (the same ones every
    # time: a fixed seed), against the Bayes-optimal estimator on those sequences
    report_sequences: ClassVar[int] = 1000

    def __init__(self, n: int = 6, length: int = 200, alpha: float = 0.5) -> None:
        self.n = self._int_arg("n", n, 1)
        self.length = self._int_arg(
            "length", length, max(2, self.n), valid=f">= max(2, n={self.n})"
        )
        if (
            isinstance(alpha, bool)
            or not isinstance(alpha, numbers.Real)
            or not 0 < alpha < math.inf
        ):
            raise ValueError(
                f"DynamicNGrams: alpha={alpha!r} is invalid; valid range: 0 < alpha < inf"
            )
        self.alpha = float(alpha)
        super().__init__(1, 1)

    def _generate(self, batch_size: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
        contexts, cols = 2 ** (self.n - 1), np.arange(batch_size)
        table = rng.beta(self.alpha, self.alpha, (batch_size, contexts))
        bits = np.zeros((self.length, batch_size), np.int64)
        bits[: self.n - 1] = rng.integers(0, 2, (self.n - 1, batch_size))
        ctx = np.zeros(batch_size, np.int64)  # the last n-1 bits, the most recent lowest
        for t in range(self.n - 1):
            ctx = ((ctx << 1) | bits[t]) & (contexts - 1)
        uniform = rng.random((self.length, batch_size))
        for t in range(self.n - 1, self.length):  # each bit depends on the previous ones
            bits[t] = uniform[t] < table[cols, ctx]
            ctx = ((ctx << 1) | bits[t]) & (contexts - 1)
        inputs = np.zeros((self.length, batch_size, 1), np.float32)
        inputs[1:, :, 0] = bits[:-1]
        targets = bits[:, :, None].astype(np.float32)
        mask = np.ones((self.length, batch_size), np.float32)
        return inputs, targets, mask, np.full(batch_size, self.length)

    def bayes_optimal_predictions(
        self, inputs: np.ndarray, context_bits: int | None = None
    ) -> np.ndarray:
        """[T, B] P(b_t = 1) of the paper's Bayes-optimal estimator: (N1 + alpha) /
        (N1 + N0 + 2 alpha), N1/N0 counting the 1s/0s that followed the same context earlier in
        the same sequence; 0.5 until a full context has been seen. The context is the n-1 bits
        before b_t (the optimal estimator), or its last `context_bits` bits (an estimator of a
        shorter order, 0 = the sequence's overall share of 1s: what a model that captures only
        that much of the context can reach). The bits come from `inputs` (inputs[t] = b_(t-1))."""
        k = self.n - 1 if context_bits is None else int(context_bits)
        if not 0 <= k <= self.n - 1:
            raise ValueError(f"context_bits must be in [0, n-1={self.n - 1}], got {context_bits}")
        seen = np.rint(np.asarray(inputs)[1:, :, 0]).astype(np.int64)  # b_0 .. b_(T-2)
        steps, batch_size = seen.shape[0] + 1, seen.shape[1]
        contexts, cols = 2**k, np.arange(batch_size)
        counts = np.zeros((batch_size, contexts, 2))
        out = np.full((steps, batch_size), 0.5)
        ctx = np.zeros(batch_size, np.int64)  # bits t-k .. t-1, the most recent lowest
        for t in range(steps):
            if t >= k:
                ones, zeros = counts[cols, ctx, 1], counts[cols, ctx, 0]
                out[t] = (ones + self.alpha) / (ones + zeros + 2 * self.alpha)
                if t < steps - 1:  # b_t is the next input: count it after its context
                    counts[cols, ctx, seen[t]] += 1
            if t < steps - 1:
                ctx = ((ctx << 1) | seen[t]) & (contexts - 1)
        return out

    def bayes_optimal_cost(
        self,
        inputs: np.ndarray,
        targets: np.ndarray,
        mask: np.ndarray,
        context_bits: int | None = None,
    ) -> float:
        """The Bayes-optimal estimator's cross-entropy in bits per sequence (of a shorter order
        with `context_bits`): the sum over masked steps of -log2 p(target), averaged over the
        batch."""
        prob_one = self.bayes_optimal_predictions(inputs, context_bits)
        prob = np.where(np.asarray(targets)[..., 0] > 0.5, prob_one, 1.0 - prob_one)
        return float(-(np.asarray(mask) * np.log2(prob)).sum() / prob.shape[1])


class PrioritySort(AlgorithmicTask):
    """Priority sort (NTM paper, section 4.5): output the highest-priority vectors, sorted.

    Input (bits+2 channels: bits, priority, delimiter): num_inputs vectors of Bernoulli(0.5)
    bits, each with a priority uniform in [-1, 1] on the priority channel; one delimiter step;
    num_outputs blank steps. Target (bits channels): the num_outputs vectors with the highest
    priorities, in descending priority order. T = num_inputs + 1 + num_outputs.
    """

    report_variants: ClassVar[Variants] = [("20 inputs -> 16 sorted", 20, {})]

    def __init__(self, bits: int = 8, num_inputs: int = 20, num_outputs: int = 16) -> None:
        self.bits = self._int_arg("bits", bits, 1)
        self.num_inputs = self._int_arg("num_inputs", num_inputs, 1)
        self.num_outputs = self._int_arg(
            "num_outputs", num_outputs, 1, self.num_inputs, f"in [1, num_inputs={self.num_inputs}]"
        )
        low = np.zeros(self.bits + 2, np.float32)
        low[self.bits] = -1.0
        super().__init__(self.bits + 2, self.bits, low, 1.0)

    @property
    def memory_slots_needed(self) -> int:
        return self.num_inputs

    def _generate(self, batch_size: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
        n, k = self.num_inputs, self.num_outputs
        steps = n + 1 + k
        data = rng.integers(0, 2, (n, batch_size, self.bits)).astype(np.float32)
        priority = rng.uniform(-1.0, 1.0, (n, batch_size)).astype(np.float32)
        inputs = np.zeros((steps, batch_size, self.input_size), np.float32)
        inputs[:n, :, : self.bits] = data
        inputs[:n, :, self.bits] = priority
        inputs[n, :, self.bits + 1] = 1.0
        top = np.argsort(-priority, axis=0, kind="stable")[:k]
        targets = np.zeros((steps, batch_size, self.bits), np.float32)
        targets[n + 1 :] = np.take_along_axis(data, top[..., None], axis=0)
        mask = np.zeros((steps, batch_size), np.float32)
        mask[n + 1 :] = 1.0
        return inputs, targets, mask, np.full(batch_size, steps)


__all__ = [
    "AlgorithmicTask",
    "AssociativeRecall",
    "Copy",
    "DynamicNGrams",
    "PrioritySort",
    "RepeatCopy",
]
