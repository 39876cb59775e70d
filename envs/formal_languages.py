"""The counting and memorisation languages of Joulin & Mikolov (2015), "Inferring Algorithmic
Patterns with Stack-Augmented Recurrent Nets" (NIPS 2015, section 4.1 and 4.3), as next-symbol
prediction on the NTM tasks' base (`AlgorithmicTask`: one sequence per episode, the same
sampler feeding supervised batches and the step-by-step env).

Every sequence is framed by a boundary symbol '#' (symbol 0): the model reads '#', s_0, ...,
s_{L-1} and predicts s_0, ..., s_{L-1}, '#', one symbol per step (inputs one-hot, targets symbol
ids). The paper trains on a stream in which the next sequence's first symbol marks the end; '#'
plays that role here, so each sequence stands alone and starts with empty memory.

Only the deterministic part is scored (`mask`), as the paper measures it: the steps from the
first symbol after the point where the rest of the string is fixed, through the end marker.
For aⁿbⁿ that is every b after the first and the end (the first b could have been another a);
for aⁿbᵐc^{n+m} every c after the first; for memorisation the reversed string; for addition the
sum's digits. n is uniform in [min_n, max_n] per sequence; for the two-count languages it is the
total n+m with m uniform in [1, n-1], as the paper's generator draws them, so `n` is what bounds
the memory a sequence needs. Training uses max_n = 20; `report_variants` score n up to 60 and
beyond (the paper tests 2..59).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from envs.algorithmic import AlgorithmicTask, Variants

# The report's lengths: the training range's top, then the paper's test range and beyond it.
REPORT_NS = (10, 20, 30, 40, 50, 60, 80, 100)


def _variants(ns: tuple[int, ...]) -> Variants:
    return [(f"n={n}", n, {"min_n": n, "max_n": n}) for n in ns]


class FormalLanguage(AlgorithmicTask):
    """Base of the languages: sampling n, framing with '#', the deterministic mask.

    A subclass sets `alphabet` (symbol 0 is the boundary '#') and implements `draw(n, rng) ->
    (string, first_scored)`: one string for total count n and the index of its first
    deterministic symbol; everything from there to the end marker is scored.
    """

    alphabet: ClassVar[str] = "#ab"
    min_total: ClassVar[int] = 1  # the smallest n the language is defined for
    report_variants: ClassVar[Variants] = _variants(REPORT_NS)

    def __init__(self, min_n: int = 2, max_n: int = 20) -> None:
        low = self.min_total
        self.min_n = self._int_arg("min_n", min_n, low, valid=f">= {low}")
        self.max_n = self._int_arg("max_n", max_n, self.min_n, valid=f">= min_n={self.min_n}")
        classes = len(self.alphabet)
        super().__init__(classes, 1, classes=classes)

    def draw(self, n: int, rng: np.random.Generator) -> tuple[str, int]:
        raise NotImplementedError

    def encode(self, text: str) -> np.ndarray:
        return np.array([self.alphabet.index(c) for c in text], np.int64)

    def decode(self, ids: np.ndarray) -> str:
        return "".join(self.alphabet[int(i)] for i in np.asarray(ids).reshape(-1))

    def _generate(self, batch_size: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
        ns = rng.integers(self.min_n, self.max_n + 1, batch_size)
        drawn = [self.draw(int(n), rng) for n in ns]
        steps = np.array([len(s) + 1 for s, _ in drawn])
        T, classes = int(steps.max()), len(self.alphabet)
        inputs = np.zeros((T, batch_size, classes), np.float32)
        targets = np.zeros((T, batch_size), np.int64)
        mask = np.zeros((T, batch_size), np.float32)
        for b, (text, first) in enumerate(drawn):
            ids = self.encode(text)
            framed = np.concatenate([[0], ids, [0]])  # '#' s_0 .. s_{L-1} '#'
            L = len(ids)
            inputs[np.arange(L + 1), b, framed[:-1]] = 1.0
            targets[: L + 1, b] = framed[1:]
            mask[first : L + 1, b] = 1.0
        return inputs, targets, mask, steps


class Counting(FormalLanguage):
    """aⁿbⁿ (and aⁿbⁿcⁿ, aⁿbⁿcⁿdⁿ through `letters`): every letter n times, in order."""

    letters: ClassVar[str] = "ab"

    def draw(self, n: int, rng: np.random.Generator) -> tuple[str, int]:
        return "".join(c * n for c in self.letters), n + 1


class AnBn(Counting):
    alphabet = "#ab"
    letters = "ab"


class AnBnCn(Counting):
    alphabet = "#abc"
    letters = "abc"


class AnBnCnDn(Counting):
    alphabet = "#abcd"
    letters = "abcd"


class AnB2n(FormalLanguage):
    """aⁿb²ⁿ: twice as many b's as a's."""

    def draw(self, n: int, rng: np.random.Generator) -> tuple[str, int]:
        return "a" * n + "b" * (2 * n), n + 1


class _TwoCounts(FormalLanguage):
    """Languages of two counts: n is the total, m uniform in [1, n-1] and the a-count n-m."""

    alphabet = "#abc"
    min_total = 2

    def counts(self, n: int, rng: np.random.Generator) -> tuple[int, int]:
        m = int(rng.integers(1, n))
        return n - m, m


class AnBmCnm(_TwoCounts):
    """aⁿbᵐc^{n+m} (the paper's addition of counts); n in the report is the total n+m."""

    def draw(self, n: int, rng: np.random.Generator) -> tuple[str, int]:
        a, m = self.counts(n, rng)
        return "a" * a + "b" * m + "c" * (a + m), a + m + 1


class AnBmCnDm(_TwoCounts):
    """aⁿbᵐcⁿdᵐ; n in the report is the total n+m."""

    alphabet = "#abcd"

    def draw(self, n: int, rng: np.random.Generator) -> tuple[str, int]:
        a, m = self.counts(n, rng)
        return "a" * a + "b" * m + "c" * a + "d" * m, a + m + 1


class AnBmCnTimesM(_TwoCounts):
    """aⁿbᵐc^{nm} (multiplication of counts); n in the report is the total n+m. The string
    grows as (n/2)², so the report stops at n = 60."""

    report_variants = _variants((10, 20, 30, 40, 60))

    def draw(self, n: int, rng: np.random.Generator) -> tuple[str, int]:
        a, m = self.counts(n, rng)
        return "a" * a + "b" * m + "c" * (a * m), a + m + 1


class Memorisation(FormalLanguage):
    """A string of n random letters over {b, c}, the separator a, then the string reversed; the
    reversed string and the end are scored."""

    alphabet = "#abc"

    def draw(self, n: int, rng: np.random.Generator) -> tuple[str, int]:
        word = "".join("bc"[i] for i in rng.integers(0, 2, n))
        return word + "a" + word[::-1], n + 1


class BinaryAddition(FormalLanguage):
    """x+y=z. with x and y in binary, most significant bit first, and their sum z least
    significant bit first (so a stack can hold the operands and release them in the order
    addition needs), as the paper's generator writes them. n is the operands' total digit
    count, split uniformly between them (an empty operand is written 0); the sum and '.' are
    scored (and the '=' after a second operand 0, which can have no more digits).
    """

    alphabet = "#01+=."
    min_total = 1
    report_variants = _variants((10, 20, 30, 40, 60))

    def __init__(self, min_n: int = 2, max_n: int = 20) -> None:
        super().__init__(min_n, max_n)

    @staticmethod
    def _number(length: int, rng: np.random.Generator) -> str:
        if length == 0:
            return "0"
        digits = rng.integers(0, 2, length)
        digits[0] = 1  # no leading zero
        return "".join(str(d) for d in digits)

    def draw(self, n: int, rng: np.random.Generator) -> tuple[str, int]:
        first = int(rng.integers(0, n + 1))
        x, y = self._number(first, rng), self._number(n - first, rng)
        total = format(int(x, 2) + int(y, 2), "b")[::-1]
        prefix = f"{x}+{y}="
        # an operand 0 has no more digits, so after "+0" the '=' is fixed too
        return f"{prefix}{total}.", len(prefix) - (y == "0")


__all__ = [
    "AnB2n",
    "AnBmCnDm",
    "AnBmCnTimesM",
    "AnBmCnm",
    "AnBn",
    "AnBnCn",
    "AnBnCnDn",
    "BinaryAddition",
    "FormalLanguage",
    "Memorisation",
]
