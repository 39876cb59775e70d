"""Uniform replay with n-step returns, stored as parallel env streams.

Storage is time-major, [rows, streams]: each rollout env writes its own column, so a transition's
successors in the same episode sit in the rows below it, and n-step returns are computed at
sample time, vectorised over the batch. An n-step return stops early at the end of an episode
(terminated: no bootstrap; truncated: bootstrap from the final observation) and at the newest
row written, so every target is a valid k-step return, k <= n.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

import numpy as np

FIELDS = ("obs", "actions", "rewards", "terminated", "truncated", "next_obs")


def n_step_targets(
    rewards: np.ndarray,
    terminated: np.ndarray,
    truncated: np.ndarray,
    row: np.ndarray,
    col: np.ndarray,
    newer: np.ndarray,
    n_step: int,
    gamma: float,
    blocked: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """k-step returns (k <= n_step) from [rows, streams] storage for transitions at (row, col),
    vectorised over the batch: stop after a terminal or truncated step, after `newer` more rows
    (the newest usable row), and before a row `blocked(rows, cols)` marks (a transition whose
    successor was never stored). Returns (returns, gamma^k, row of the last reward)."""
    rows = rewards.shape[0]
    batch = len(row)
    returns = np.zeros(batch, np.float32)
    discount = np.ones(batch, np.float32)
    alive = np.ones(batch, bool)
    last = row.copy()
    for k in range(n_step):
        r = (row + k) % rows
        alive &= k <= newer
        if blocked is not None and k > 0:
            alive &= ~blocked(r, col)
        returns += np.where(alive, discount * rewards[r, col], 0.0).astype(np.float32)
        discount = np.where(alive, discount * gamma, discount)
        last = np.where(alive, r, last)
        alive &= ~(terminated[r, col] | truncated[r, col])
    return returns, discount, last


class ReplayBuffer:
    def __init__(self, capacity: int, num_streams: int, n_step: int = 1, gamma: float = 0.99):
        if capacity < num_streams:
            raise ValueError(
                f"replay capacity {capacity} is smaller than its {num_streams} env streams"
            )
        self.rows = capacity // num_streams
        self.num_streams = num_streams
        self.n_step = n_step
        self.gamma = gamma
        self.storage: dict[str, np.ndarray] = {}
        self.cursor = 0  # next row to write
        self.filled = 0  # rows holding data

    def __len__(self) -> int:
        return self.filled * self.num_streams

    def _allocate(self, batch: dict[str, np.ndarray]) -> None:
        for key in FIELDS:
            value = batch[key]
            self.storage[key] = np.zeros(
                (self.rows, self.num_streams, *value.shape[2:]), value.dtype
            )

    def add(self, batch: dict[str, np.ndarray], finals: Any = ()) -> None:
        """Append time-major [T, num_streams, ...] arrays with the keys in FIELDS. (`finals` is
        for frame replay, which stores final observations apart; here they are in next_obs.)"""
        steps, streams = batch["rewards"].shape
        if streams != self.num_streams:
            raise ValueError(f"batch has {streams} env streams, the buffer {self.num_streams}")
        if not self.storage:
            self._allocate(batch)
        rows = (self.cursor + np.arange(steps)) % self.rows
        for key in FIELDS:
            self.storage[key][rows] = batch[key]
        self.cursor = int((self.cursor + steps) % self.rows)
        self.filled = min(self.rows, self.filled + steps)

    def cut_streams(self, streams: Iterable[int]) -> None:
        """The env streams' next rows come from new episodes of a new worker (a replaced worker,
        a resumed run): end their newest transition as truncated, so no n-step return crosses
        into the new data; its stored next_obs is the true bootstrap observation."""
        if self.filled:
            self.storage["truncated"][(self.cursor - 1) % self.rows, list(streams)] = True

    def sample(self, batch_size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Uniform transitions with n-step `returns` and bootstrap `discounts` (gamma^k or 0)."""
        if self.filled == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        s = self.storage
        oldest = (self.cursor - self.filled) % self.rows
        age = rng.integers(0, self.filled, size=batch_size)  # 0 = oldest row
        row = (oldest + age) % self.rows
        col = rng.integers(0, self.num_streams, size=batch_size)
        newer = self.filled - 1 - age  # rows written after this one

        returns, discount, last = n_step_targets(
            s["rewards"], s["terminated"], s["truncated"], row, col, newer, self.n_step, self.gamma
        )
        terminal = s["terminated"][last, col]
        return {
            "obs": s["obs"][row, col],
            "actions": s["actions"][row, col],
            "returns": returns,
            "discounts": np.where(terminal, 0.0, discount).astype(np.float32),
            "next_obs": s["next_obs"][last, col],
        }

    def save(self, file: IO[bytes]) -> None:
        """Write the buffer as an uncompressed .npz (no pickles) to an open binary file."""
        write_npz(self, file)

    def load(self, path: Path) -> None:
        read_npz(self, path)


def write_npz(buf: Any, file: IO[bytes], extra: dict[str, np.ndarray] | None = None) -> None:
    """A [rows, streams] buffer's storage, cursor and fill level (and `extra` arrays) as .npz."""
    arrays = {f"storage_{k}": v for k, v in buf.storage.items()}
    meta = np.array([buf.cursor, buf.filled, buf.rows, buf.num_streams], np.int64)
    np.savez(file, meta=meta, **arrays, **(extra or {}))


def read_npz(buf: Any, path: Path) -> dict[str, np.ndarray]:
    """Restore what `write_npz` wrote into `buf` (shapes must agree); returns the extra arrays."""
    with np.load(path, allow_pickle=False) as data:
        cursor, filled, rows, streams = (int(x) for x in data["meta"])
        if (rows, streams) != (buf.rows, buf.num_streams):
            raise ValueError(
                f"saved replay has shape {rows}x{streams}, this run's buffer "
                f"{buf.rows}x{buf.num_streams}"
            )
        buf.storage = {
            k.removeprefix("storage_"): data[k] for k in data.files if k.startswith("storage_")
        }
        buf.cursor, buf.filled = cursor, filled
        return {k: data[k] for k in data.files if k != "meta" and not k.startswith("storage_")}
