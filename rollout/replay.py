"""Uniform replay with n-step returns, stored as parallel env streams.

Storage is time-major, [rows, streams]: each rollout env writes its own column, so a transition's
successors in the same episode sit in the rows below it, and n-step returns are computed at
sample time, vectorised over the batch. An n-step return stops early at the end of an episode
(terminated: no bootstrap; truncated: bootstrap from the final observation) and at the newest
row written, so every target is a valid k-step return, k <= n.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO

import numpy as np

FIELDS = ("obs", "actions", "rewards", "terminated", "truncated", "next_obs")


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

    def add(self, batch: dict[str, np.ndarray]) -> None:
        """Append time-major [T, num_streams, ...] arrays with the keys in FIELDS."""
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

        returns = np.zeros(batch_size, np.float32)
        discount = np.ones(batch_size, np.float32)
        alive = np.ones(batch_size, bool)
        last = row.copy()
        for k in range(self.n_step):
            r = (row + k) % self.rows
            alive &= k <= newer
            returns += np.where(alive, discount * s["rewards"][r, col], 0.0).astype(np.float32)
            discount = np.where(alive, discount * self.gamma, discount)
            last = np.where(alive, r, last)
            alive &= ~(s["terminated"][r, col] | s["truncated"][r, col])
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
        arrays = {f"storage_{k}": v for k, v in self.storage.items()}
        meta = np.array([self.cursor, self.filled, self.rows, self.num_streams], np.int64)
        np.savez(file, meta=meta, **arrays)

    def load(self, path: Path) -> None:
        with np.load(path, allow_pickle=False) as data:
            cursor, filled, rows, streams = (int(x) for x in data["meta"])
            if (rows, streams) != (self.rows, self.num_streams):
                raise ValueError(
                    f"saved replay has shape {rows}x{streams}, this run's buffer {self.rows}x{self.num_streams}"
                )
            self.storage = {
                k.removeprefix("storage_"): data[k] for k in data.files if k.startswith("storage_")
            }
            self.cursor, self.filled = cursor, filled
