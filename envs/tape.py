"""Tape tasks for RL-NTM (Zaremba & Sutskever 2015, "Reinforcement Learning Neural Turing
Machines", arXiv:1505.00521): the agent moves a read head over an input tape (or grid) and
writes symbols to an output tape, and learns from reward alone which symbols to write and where
to move. The rules are those of the classic gym algorithmic envs (gym 0.x,
`gym/envs/algorithmic/`), which were written for this paper's tasks:

- Observation: the symbol under the read head, `Discrete(base + 1)`; `base` is the blank seen
  off the ends of the input.
- Action: `MultiDiscrete([moves, 2, base])` = (head move, write flag, symbol). gym used a
  `Tuple` of three `Discrete`; a MultiDiscrete keeps the same three factors as one integer array,
  which Gymnasium's vector envs batch without special cases and which policies (memrl's
  REINFORCE head, RLlib, SB3) take as independent categoricals. Keeping the factors apart (rather
  than one flattened `Discrete(moves * 2 * base)`) is what lets RL-NTM's mixed objective train
  the symbol by likelihood and the interface actions (move, write) by REINFORCE, and lets the
  symbol's log-probability count only on steps that write.
- Reward: +1 per correct symbol written, -0.5 for a wrong one (the episode then ends), -1 when the
  task's clock runs out (`time_limit` steps: input length + target length + 4, reversed addition
  2 * input width + 4; the episode then ends), else 0. The episode also ends once the whole
  target is written. All three endings are `terminated` (they are the task's rules).
- `info["target"]` after each step: the symbol that was due at the write head when the step was
  taken, the supervision for RL-NTM's likelihood-trained outputs.
- Curriculum (gym's): every episode draws an input length min_length + {0, 1, 2}; after
  `promotion_window` episodes in a row whose return fell short of the best possible by no more
  than `-promotion_shortfall`, min_length grows by one, up to 30. `curriculum_scope="env"` keeps
  the level per env instance; `"process"` shares one level (and one window of episodes) between
  every env of the task in the process, i.e. the vector env of one rollout worker, as gym's class
  variable did: with many envs per worker the level then grows as fast in episodes as with one.
  `length=n` fixes the input length and turns the curriculum off (evaluation at a given length,
  e.g. 2x training).
- `reward_threshold`: gym's "solved" mean return over 100 consecutive episodes: Copy 25,
  RepeatCopy 75, DuplicatedInput 9, Reverse 25, ReversedAddition 25.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

SCOPES = ("env", "process")


@dataclass
class LengthLevel:
    """The curriculum's state: the minimum input length and the recent episodes' shortfalls."""

    min_length: int
    shortfalls: list[float] = field(default_factory=list)


# curriculum_scope="process": one level per task class, shared by its envs in this process
_PROCESS_LEVELS: dict[str, LengthLevel] = {}


def reset_process_levels() -> None:
    """Forget the shared levels (a fresh training run in the same process, tests)."""
    _PROCESS_LEVELS.clear()


class TapeTask(gym.Env):
    """Base: input drawing, the head, reward, termination, the clock and the curriculum.

    A subclass sets its class attributes and defines `target_from_input` (and, where the input is
    not `length` uniform symbols, `generate_input`).
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi"]}
    movements: ClassVar[tuple[str, ...]] = ("left", "right")
    base: ClassVar[int] = 5
    rows: ClassVar[int] = 0  # 0: a 1-d tape; >= 1: a grid with this many rows (x = column)
    reward_threshold: ClassVar[float] = 25.0
    starting_min_length: ClassVar[int] = 2
    promotion_window: ClassVar[int] = 10
    promotion_shortfall: ClassVar[float] = -1.0
    max_min_length: ClassVar[int] = 30

    def __init__(
        self,
        length: int | None = None,
        min_length: int | None = None,
        curriculum: bool = True,
        curriculum_scope: str = "env",
        render_mode: str | None = None,
    ):
        if length is not None and (isinstance(length, bool) or int(length) != length or length < 1):
            raise ValueError(f"length must be a positive integer or None, got {length!r}")
        if min_length is not None and (
            isinstance(min_length, bool) or int(min_length) != min_length or min_length < 1
        ):
            raise ValueError(f"min_length must be a positive integer or None, got {min_length!r}")
        if curriculum_scope not in SCOPES:
            raise ValueError(
                f"curriculum_scope must be one of {', '.join(SCOPES)}, got {curriculum_scope!r}"
            )
        if render_mode not in (None, "ansi"):
            raise ValueError(f"render_mode must be None or 'ansi', got {render_mode!r}")
        self.fixed_length = None if length is None else int(length)
        self.curriculum = bool(curriculum) and length is None
        start = int(min_length) if min_length is not None else self.starting_min_length
        if curriculum_scope == "process" and self.curriculum:
            self.level = _PROCESS_LEVELS.setdefault(type(self).__name__, LengthLevel(start))
        else:
            self.level = LengthLevel(start)
        self.render_mode = render_mode
        self.observation_space = gym.spaces.Discrete(self.base + 1)
        self.action_space = gym.spaces.MultiDiscrete([len(self.movements), 2, self.base])
        self.episode_return: float | None = None  # None before the first episode
        self.input_data = np.zeros(0, np.int64)
        self.target: list[int] = []
        self.head: tuple[int, ...] = (0,)
        self.write_position = 0
        self.time = 0

    # ------------------------------------------------------------- what a task defines
    def generate_input(self, length: int) -> np.ndarray:
        """`length` uniform symbols ([length], or [length, rows] on a grid)."""
        shape = (length, self.rows) if self.rows else (length,)
        return self.np_random.integers(0, self.base, size=shape)

    def target_from_input(self, data: np.ndarray) -> list[int]:
        raise NotImplementedError

    @property
    def time_limit(self) -> int:
        """More steps than this end the episode with reward -1 (gym's 'fairly conservative')."""
        return len(self.input_data) + len(self.target) + 4

    # ------------------------------------------------------------- the env
    def _observe(self) -> int:
        if any(p < 0 for p in self.head):
            return self.base
        x = self.head[0]
        if x >= len(self.input_data):
            return self.base
        if self.rows:
            y = self.head[1]
            return self.base if y >= self.rows else int(self.input_data[x, y])
        return int(self.input_data[x])

    def _move(self, move: int) -> None:
        dx, dy = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}[
            self.movements[move]
        ]
        if self.rows:
            self.head = (self.head[0] + dx, self.head[1] + dy)
        else:
            self.head = (self.head[0] + dx,)

    def _promote(self) -> None:
        """gym's level-up, between episodes: `promotion_window` near-perfect episodes in a row."""
        if not self.curriculum or self.episode_return is None:
            return
        level = self.level
        level.shortfalls.append(self.episode_return - len(self.target))
        del level.shortfalls[: -self.promotion_window]
        if (
            len(level.shortfalls) == self.promotion_window
            and min(level.shortfalls) >= self.promotion_shortfall
            and level.min_length < self.max_min_length
        ):
            level.min_length += 1
            level.shortfalls.clear()

    @property
    def min_length(self) -> int:
        return self.level.min_length

    @property
    def shortfalls(self) -> list[float]:
        return self.level.shortfalls

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[int, dict[str, Any]]:
        super().reset(seed=seed)
        self._promote()
        if self.fixed_length is not None:
            length = self.fixed_length
        else:
            length = int(self.np_random.integers(3)) + self.min_length
        self.input_data = np.asarray(self.generate_input(length), np.int64)
        self.target = [int(s) for s in self.target_from_input(self.input_data)]
        self.head = (0, 0) if self.rows else (0,)
        self.write_position = 0
        self.time = 0
        self.episode_return = 0.0
        return self._observe(), {"length": length, "min_length": self.min_length}

    def step(self, action: Any) -> tuple[int, float, bool, bool, dict[str, Any]]:
        move, write, symbol = (int(a) for a in np.asarray(action).reshape(-1)[:3])
        if self.episode_return is None or self.write_position >= len(self.target):
            raise RuntimeError("step() before reset() or after the episode ended; call reset()")
        self.time += 1
        due = self.target[self.write_position]
        reward, terminated = 0.0, False
        if write == 1:
            if symbol == due:
                reward = 1.0
            else:  # a wrong symbol ends the episode
                reward, terminated = -0.5, True
            self.write_position += 1
            terminated = terminated or self.write_position >= len(self.target)
        self._move(move)
        if self.time > self.time_limit:
            reward, terminated = -1.0, True
        self.episode_return += reward
        return self._observe(), reward, terminated, False, {"target": due}

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        symbols = [str(i) for i in range(self.base)]
        grid = self.input_data if self.rows else self.input_data[:, None]
        lines = ["".join(symbols[v] for v in row) for row in grid.T]
        written = "".join(symbols[v] for v in self.target[: self.write_position])
        return (
            "\n".join(lines)
            + f"\nhead {self.head}, written '{written}', target "
            + "".join(symbols[v] for v in self.target)
        )


class TapeCopy(TapeTask):
    """Copy the input tape to the output (base 5)."""

    reward_threshold = 25.0

    def target_from_input(self, data: np.ndarray) -> list[int]:
        return list(data)


class TapeDuplicatedInput(TapeTask):
    """The input holds every symbol twice in a row; write each once (base 5)."""

    reward_threshold = 9.0
    duplication: ClassVar[int] = 2

    def generate_input(self, length: int) -> np.ndarray:
        pairs = max(length, self.duplication) // self.duplication
        return np.repeat(self.np_random.integers(0, self.base, size=pairs), self.duplication)

    def target_from_input(self, data: np.ndarray) -> list[int]:
        return list(data[:: self.duplication])


class TapeReverse(TapeTask):
    """Write the input backwards (base 2); levels up only after 50 perfect episodes."""

    base = 2
    reward_threshold = 25.0
    starting_min_length = 1
    promotion_window = 50
    promotion_shortfall = -0.1

    def target_from_input(self, data: np.ndarray) -> list[int]:
        return list(data[::-1])


class TapeRepeatCopy(TapeTask):
    """Write the input, then the input backwards, then the input again (base 5)."""

    reward_threshold = 75.0
    promotion_window = 50
    promotion_shortfall = -0.1

    def target_from_input(self, data: np.ndarray) -> list[int]:
        return [*data, *data[::-1], *data]


class TapeReversedAddition(TapeTask):
    """A 2-row grid holds two base-3 numbers, least significant digit first (column 0); write
    their sum, least significant digit first. The head moves left, right, up and down."""

    base = 3
    rows = 2
    movements = ("left", "right", "up", "down")
    reward_threshold = 25.0

    def target_from_input(self, data: np.ndarray) -> list[int]:
        digits, carry = [], 0
        for column in data:
            total = int(column.sum()) + carry
            digits.append(total % self.base)
            carry = total // self.base
        return [*digits, carry] if carry else digits

    @property
    def time_limit(self) -> int:
        # gym's rule: twice the input width (not input + target, which may be one longer)
        return 2 * len(self.input_data) + 4


TAPE_TASKS: dict[str, type[TapeTask]] = {
    "copy": TapeCopy,
    "duplicated_input": TapeDuplicatedInput,
    "reverse": TapeReverse,
    "repeat_copy": TapeRepeatCopy,
    "reversed_addition": TapeReversedAddition,
}
