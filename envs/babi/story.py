"""The pieces every generated bAbI story shares: the seeded draws, the story being written and
the verbs of the official files."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import numpy as np

T = TypeVar("T")

MOVES = ("moved to", "went to", "went back to", "journeyed to", "travelled to")
GRABS = ("got", "took", "picked up", "grabbed")
DROPS = ("dropped", "left", "discarded", "put down")
GIVES = ("gave", "handed", "passed")
THEN = ("After that", "Afterwards", "Following that", "Then")


class Rng:
    """The few draws the stories need, over one seeded numpy generator."""

    def __init__(self, seed: int | Sequence[int]) -> None:
        self.gen = np.random.default_rng(seed)

    def choice(self, items: Sequence[T]) -> T:
        return items[int(self.gen.integers(len(items)))]

    def sample(self, items: Sequence[T], k: int) -> list[T]:
        return [items[i] for i in self.gen.permutation(len(items))[:k]]

    def chance(self, p: float) -> bool:
        return bool(self.gen.random() < p)

    def integer(self, low: int, high: int) -> int:
        """Uniform in [low, high]."""
        return int(self.gen.integers(low, high + 1))


class Story:
    """The lines of one story: `say` adds a sentence and returns its line id (what supporting
    facts cite), `ask` adds a question line in the official layout."""

    def __init__(self, spaced: bool) -> None:
        self.lines: list[str] = []
        self.spaced = spaced

    def say(self, text: str) -> int:
        self.lines.append(text)
        return len(self.lines)

    def ask(self, question: str, answer: str, supports: Sequence[int]) -> None:
        space = " " if self.spaced else ""
        self.lines.append(f"{question}{space}\t{answer}\t{' '.join(map(str, supports))}")
