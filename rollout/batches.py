"""What rollout workers and data sources hand the trainer: dicts of numpy arrays with a declared
batch axis (DESIGN.md, "The data flow").

Merging batches from several workers concatenates every array along the batch axis and pads the
other axes with zeros to the longest (e.g. time for episodes of different lengths), so a
time-major [T, B, ...] episode batch and a batch-major [B, S, W] story batch both merge right.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Batch:
    data: dict[str, np.ndarray]
    # the examples' axis in every array: 1 for time-major [T, B, ...], 0 for batch-major
    batch_axis: int = 1
    env_steps: int = 0
    episode_returns: list[float] = field(default_factory=list)
    episode_lengths: list[int] = field(default_factory=list)
    sample_time_s: float = 0.0
    sequences: int = 0  # generated sequences drawn from a task's sampler
    # the first batch of a (new) worker: its env streams start afresh (replay cuts them)
    fresh: bool = False
    # frame mode: (t, env, newest frame of the final observation) of steps cut by the time limit
    final_frames: list[tuple[int, int, np.ndarray]] = field(default_factory=list)


def _pad_to(arr: np.ndarray, shape: tuple[int, ...], axis: int) -> np.ndarray:
    """Zero-pad every axis but `axis` up to `shape`."""
    widths = [(0, 0 if a == axis else s - n) for a, (n, s) in enumerate(zip(arr.shape, shape))]
    if not any(w for _, w in widths):
        return arr
    return np.pad(arr, widths)


def merge_arrays(parts: list[dict[str, np.ndarray]], axis: int) -> dict[str, np.ndarray]:
    """Concatenate dicts of arrays along `axis`, zero-padding the other axes to the longest."""
    if len(parts) == 1:
        return parts[0]
    merged = {}
    for key in parts[0]:
        arrays = [p[key] for p in parts]
        ranks = {a.ndim for a in arrays}
        if len(ranks) != 1:
            raise ValueError(f"batch key '{key}' has arrays of different ranks {sorted(ranks)}")
        shape = tuple(max(a.shape[d] for a in arrays) for d in range(arrays[0].ndim))
        merged[key] = np.concatenate([_pad_to(a, shape, axis) for a in arrays], axis=axis)
    return merged


def merge_batches(batches: list[Batch]) -> dict[str, np.ndarray]:
    """Join workers' batches along their batch axis, padding the other axes."""
    axes = {b.batch_axis for b in batches}
    if len(axes) != 1:
        raise ValueError(f"cannot merge batches with different batch axes {sorted(axes)}")
    return merge_arrays([b.data for b in batches], axes.pop())


def stack_episodes(episodes: list[dict[str, list]]) -> dict[str, np.ndarray]:
    """Pad complete episodes into time-major [T_max, num_episodes, ...] arrays with a mask.
    Every key an episode holds (obs, actions, rewards, the agent's extras, targets) is stacked."""
    longest = max(len(ep["rewards"]) for ep in episodes)
    out: dict[str, np.ndarray] = {}
    for key in episodes[0]:
        first = np.asarray(episodes[0][key][0])
        dtype = np.float32 if key == "rewards" else first.dtype
        arr = np.zeros((longest, len(episodes), *first.shape), dtype)
        for i, ep in enumerate(episodes):
            arr[: len(ep[key]), i] = np.asarray(ep[key])
        out[key] = arr
    out["mask"] = np.zeros((longest, len(episodes)), np.float32)
    for i, ep in enumerate(episodes):
        out["mask"][: len(ep["rewards"]), i] = 1.0
    return out
