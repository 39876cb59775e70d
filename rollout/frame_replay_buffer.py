"""Replay for stacked-frame observations (Atari) that stores each frame once.

An observation is the last `stack` frames, so consecutive observations share stack-1 frames.
Storing only each step's newest frame (uint8) cuts memory by the stack size: 1M transitions of
84x84 frames take ~7.1 GB instead of 56 GB for (obs, next_obs) pairs. Observations are rebuilt at
sample time, vectorised over the batch: frames before an episode's first step are zeros, as the
env pads them.

Storage is [rows, streams] like `ReplayBuffer` (one column per rollout env, rows in time order),
with the same n-step targets. What a frame store cannot rebuild is the final observation of an
episode cut by the time limit (its bootstrap target): those few frames are kept apart, keyed by
(row, stream). A terminated step needs none (no bootstrap), and a lost life (terminated for the
learner) does not reset the game, so the next row holds the next observation.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import IO

import numpy as np

from rollout.replay_buffer import n_step_targets, read_npz, write_npz

FIELDS = ("frames", "starts", "actions", "rewards", "terminated", "truncated")


class FrameReplayBuffer:
    def __init__(
        self, capacity: int, num_streams: int, stack: int, n_step: int = 1, gamma: float = 0.99
    ):
        if capacity < num_streams * (stack + 1):
            raise ValueError(
                f"replay capacity {capacity} is too small for {num_streams} env streams "
                f"of {stack}-frame observations"
            )
        self.rows = capacity // num_streams
        self.num_streams = num_streams
        self.stack = stack
        self.n_step = n_step
        self.gamma = gamma
        self.storage: dict[str, np.ndarray] = {}
        self.finals: dict[tuple[int, int], np.ndarray] = {}
        # (row, stream) of transitions whose next observation was never stored: the stream was
        # cut there (its worker replaced, the run resumed); never drawn, and no n-step crosses
        self.cuts: set[tuple[int, int]] = set()
        self.cursor = 0
        self.filled = 0

    def __len__(self) -> int:
        return self.filled * self.num_streams

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.storage.values())

    def add(
        self, batch: dict[str, np.ndarray], finals: Iterable[tuple[int, int, np.ndarray]] = ()
    ) -> None:
        """Append time-major [T, streams, ...] arrays with the keys in FIELDS: `frames` is each
        step's newest observation frame, `starts` marks observations that begin an episode.
        `finals` holds (t, stream, frame): the newest frame of the final observation of a step cut
        by the time limit."""
        steps, streams = batch["rewards"].shape
        if streams != self.num_streams:
            raise ValueError(f"batch has {streams} env streams, the buffer {self.num_streams}")
        if not self.storage:
            for key in FIELDS:
                v = batch[key]
                self.storage[key] = np.zeros((self.rows, streams, *v.shape[2:]), v.dtype)
        rows = (self.cursor + np.arange(steps)) % self.rows
        overwritten = set(rows.tolist())
        for key in [k for k in self.finals if k[0] in overwritten]:
            del self.finals[key]
        self.cuts = {k for k in self.cuts if k[0] not in overwritten}
        for key in FIELDS:
            self.storage[key][rows] = batch[key]
        for t, stream, frame in finals:
            self.finals[(int(rows[t]), int(stream))] = np.asarray(frame)
        self.cursor = int((self.cursor + steps) % self.rows)
        self.filled = min(self.rows, self.filled + steps)

    def cut_streams(self, streams: Iterable[int]) -> None:
        """The streams' next rows come from a new worker: their newest transition has no stored
        next observation, so it is never drawn and n-step returns stop before it."""
        if self.filled:
            last = (self.cursor - 1) % self.rows
            self.cuts.update((last, int(c)) for c in streams)

    def _is_cut(self, row: np.ndarray, col: np.ndarray) -> np.ndarray:
        if not self.cuts:
            return np.zeros(len(row), bool)
        keys = np.array([r * self.num_streams + c for r, c in self.cuts])
        return np.isin(row * self.num_streams + col, keys)

    def observations(self, row: np.ndarray, col: np.ndarray) -> np.ndarray:
        """Rebuild the [B, stack, H, W] observations at (row, col)."""
        frames, starts = self.storage["frames"], self.storage["starts"]
        out = np.empty((len(row), self.stack, *frames.shape[2:]), frames.dtype)
        out[:, -1] = frames[row, col]
        same_episode = np.ones(len(row), bool)
        for back in range(1, self.stack):
            # frame row-back belongs to this episode unless a later row up to `row` starts one
            same_episode &= ~starts[(row - back + 1) % self.rows, col]
            earlier = frames[(row - back) % self.rows, col]
            out[:, -1 - back] = np.where(same_episode[:, None, None], earlier, 0)
        return out

    def sample(self, batch_size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Uniform transitions with rebuilt obs/next_obs, n-step `returns` and `discounts`.

        Rows whose stack reaches past the oldest row, and the newest row (its next observation is
        not written yet), are never drawn."""
        if self.filled < self.stack + 1:
            raise ValueError(
                f"frame replay holds {self.filled} rows per stream; sampling needs at least "
                f"{self.stack + 1} (raise agent.learning_starts)"
            )
        s = self.storage
        oldest = (self.cursor - self.filled) % self.rows
        age = rng.integers(self.stack - 1, self.filled - 1, size=batch_size)
        row = (oldest + age) % self.rows
        col = rng.integers(0, self.num_streams, size=batch_size)
        while (redraw := self._is_cut(row, col)).any():  # rare: one row per cut stream
            age[redraw] = rng.integers(self.stack - 1, self.filled - 1, size=int(redraw.sum()))
            row = (oldest + age) % self.rows
            col[redraw] = rng.integers(0, self.num_streams, size=int(redraw.sum()))
        newer = self.filled - 2 - age  # rows after this one whose next observation exists
        returns, discount, last = n_step_targets(
            s["rewards"],
            s["terminated"],
            s["truncated"],
            row,
            col,
            newer,
            self.n_step,
            self.gamma,
            self._is_cut if self.cuts else None,
        )
        terminal = s["terminated"][last, col]
        truncated = s["truncated"][last, col] & ~terminal
        # the next observation: the row after `last`, or for a time-limit cut its kept final frame
        next_row = np.where(truncated | terminal, last, (last + 1) % self.rows)
        next_obs = self.observations(next_row, col)
        for i in np.flatnonzero(truncated):
            key = (int(last[i]), int(col[i]))
            next_obs[i, :-1] = next_obs[i, 1:].copy()
            next_obs[i, -1] = self.finals[key]
        return {
            "obs": self.observations(row, col),
            "actions": s["actions"][row, col],
            "returns": returns,
            "discounts": np.where(terminal, 0.0, discount).astype(np.float32),
            "next_obs": next_obs,
        }

    def save(self, file: IO[bytes]) -> None:
        """Write the buffer as an uncompressed .npz (no pickles) to an open binary file."""
        keys = np.array(sorted(self.finals), np.int64).reshape(-1, 2)
        frames = [self.finals[tuple(k)] for k in keys.tolist()]
        shape = self.storage["frames"].shape[2:] if self.storage else (0,)
        extra = {
            "final_keys": keys,
            "final_frames": np.stack(frames) if frames else np.zeros((0, *shape), np.uint8),
            "cut_keys": np.array(sorted(self.cuts), np.int64).reshape(-1, 2),
        }
        write_npz(self, file, extra)

    def load(self, path: Path) -> None:
        extra = read_npz(self, path)
        self.finals = {
            (int(r), int(c)): f
            for (r, c), f in zip(extra["final_keys"].tolist(), extra["final_frames"])
        }
        self.cuts = {(int(r), int(c)) for r, c in extra["cut_keys"].tolist()}
