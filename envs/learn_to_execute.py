"""Learning to Execute (Zaremba & Sutskever 2014, arXiv:1410.4615): read a small Python-like
program character by character, then print its output.

Programs are drawn with two difficulty parameters, as in the paper: `length`, the digits of
every constant, and `nesting`, how many operations are combined. The operations are the
paper's: addition, subtraction, multiplication by a small number, variable assignment, if/else
(as an expression), a small for-loop, and the final print. For example (length 4, nesting 2):

    b=(1500+8584)
    for x in range(8):b+=920
    print((b*7))

prints 130976. The target is evaluated by memrl's own interpreter (`run_program`: a tokenizer and a
recursive-descent parser for exactly this language); Python's eval/exec is never used (the tests
compare against it). The addition task (`task="addition"`) is the paper's: two `length`-digit
numbers, `print(a+b)`.

As a sequence task (`sample_batch`, the generated data source) the input is the program's
characters one-hot, then the output phase (a flag channel on) in which each step reads the
previous target character (teacher forcing, as the paper trains and scores) and predicts the
next: T = len(program) + len(output), the output ending with '.'.
The outputs are symbols (Discrete(len(VOCAB))). As a Gymnasium env one step is one character and
an output step's reward is minus 1/(output characters) for a wrong character, so an episode's
return is the per-character accuracy minus 1: evaluation scores and `env.curriculum_threshold`
read as the paper's accuracy (-0.05 = 95% of characters right).

Curricula (the paper's section 4, `strategy`): `baseline` draws every program at the target
(`target_length`, `target_nesting`); `naive` at the current level (`length`, `nesting`), which
an `env.curriculum` list of levels raises as evaluation passes `env.curriculum_threshold`;
`mix` draws length and nesting uniformly up to the target for each program; `combined` draws a
mix program with probability 1/5 and a naive one otherwise.

Held-out programs (`split`): as the reference code (wojciechz/learning_to_execute, data.lua,
which keeps a program for a set when a hash of its text modulo 3 names that set), every program
belongs to one third by a stable hash of its text and output (`program_split`); `split="train"`,
`"validation"` or `"test"` draws only that third's programs (redrawing the others), so a test
program is never a training one. Short difficulties have few distinct programs (1-digit
addition: 100), all of which training sees; without a split (`"all"`, the default) their test
accuracy is partly memory. The end-of-run grid draws from `"test"` whenever `split` is set.
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np

from envs.algorithmic import AlgorithmicTask

# every character a program or an output uses; index 0 is padding/blank
VOCAB = " \n0123456789abcdefghijklmnopqrstuvwxyz+-*=()<>:,.%_"
CHAR_ID = {c: i for i, c in enumerate(VOCAB)}
STRATEGIES = ("baseline", "naive", "mix", "combined")
SPLITS = ("all", "train", "validation", "test")
VARIABLES = "abcdefghij"


class ProgramError(ValueError):
    """A program outside the language `run_program` understands (the message says where)."""


# ----------------------------------------------------------------- the generator


class _Builder:
    """Draws one program: statements (assignments, for-loops) and the printed expression."""

    def __init__(self, length: int, rng: np.random.Generator):
        self.length, self.rng = length, rng
        self.statements: list[str] = []
        self.free = list(VARIABLES)
        self.operations = 0  # combined so far (the nesting the program reaches)

    def number(self) -> str:
        lo = 10 ** (self.length - 1) if self.length > 1 else 0
        return str(int(self.rng.integers(lo, 10**self.length)))

    def small(self) -> int:
        return int(self.rng.integers(1, 4 * self.length + 1))

    def _variable(self) -> str | None:
        if not self.free:
            return None
        return self.free.pop(int(self.rng.integers(len(self.free))))

    def expression(self, nesting: int) -> str:
        """An expression combining `nesting` operations (a constant at 0)."""
        if nesting <= 0:
            return self.number()
        self.operations += 1
        op = ("+", "-", "*", "if", "assign", "for")[int(self.rng.integers(6))]
        if op in ("+", "-"):
            left_ops = int(self.rng.integers(nesting))
            left = self.expression(left_ops)
            right = self.expression(nesting - 1 - left_ops)
            return f"({left}{op}{right})"
        if op == "*":
            return f"({self.expression(nesting - 1)}*{self.small()})"
        if op == "if":
            a, b = self.expression(nesting - 1), self.number()
            cmp = "<" if self.rng.integers(2) else ">"
            return f"({a} if {self.number()}{cmp}{self.number()} else {b})"
        var = self._variable()
        if var is None:  # ten variables used: fall back to an addition
            return f"({self.expression(nesting - 1)}+{self.number()})"
        if op == "assign":
            self.statements.append(f"{var}={self.expression(nesting - 1)}")
            return var
        # for: the loop adds (or subtracts) a constant each time round
        self.statements.append(f"{var}={self.expression(nesting - 1)}")
        sign = "+" if self.rng.integers(2) else "-"
        self.statements.append(f"for x in range({self.small()}):{var}{sign}={self.number()}")
        return var


def generate_program(length: int, nesting: int, rng: np.random.Generator) -> tuple[str, int]:
    """One program with constants of `length` digits and `nesting` operations, and the value it
    prints (by memrl's interpreter)."""
    builder = _Builder(length, rng)
    printed = builder.expression(nesting)
    code = "\n".join([*builder.statements, f"print({printed})"])
    return code, run_program(code)


def generate_addition(length: int, rng: np.random.Generator) -> tuple[str, int]:
    """The paper's addition task: two `length`-digit numbers."""
    b = _Builder(length, rng)
    code = f"print({b.number()}+{b.number()})"
    return code, run_program(code)


def program_split(code: str, output: str) -> str:
    """The third of all programs that `code` (printing `output`) belongs to: 'train',
    'validation' or 'test', by the CRC-32 of its text modulo 3 (stable across runs and
    machines, unlike Python's salted hash)."""
    return SPLITS[1 + zlib.crc32(f"{code}\n{output}".encode()) % 3]


# ----------------------------------------------------------------- the interpreter


def _tokens(text: str, line: int) -> list[str]:
    out, i = [], 0
    while i < len(text):
        c = text[i]
        if c == " ":
            i += 1
        elif c.isdigit():
            j = i
            while j < len(text) and text[j].isdigit():
                j += 1
            out.append(text[i:j])
            i = j
        elif c.isalpha() or c == "_":
            j = i
            while j < len(text) and (text[j].isalnum() or text[j] == "_"):
                j += 1
            out.append(text[i:j])
            i = j
        elif text[i : i + 2] in ("+=", "-="):
            out.append(text[i : i + 2])
            i += 2
        elif c in "+-*=()<>:":
            out.append(c)
            i += 1
        else:
            raise ProgramError(f"line {line}: unexpected character {c!r}")
    return out


class _Expression:
    """Recursive descent over one line's tokens: expr := term (('+'|'-') term)*, term := atom
    ('*' atom)*, atom := number | variable | '(' expr ['if' expr ('<'|'>') expr 'else' expr] ')'."""

    def __init__(self, tokens: list[str], env: dict[str, int], line: int):
        self.tokens, self.env, self.line, self.i = tokens, env, line, 0

    def peek(self) -> str | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None or (expected is not None and token != expected):
            raise ProgramError(f"line {self.line}: expected {expected or 'more'}, got {token!r}")
        self.i += 1
        return token

    def expr(self) -> int:
        value = self.term()
        while self.peek() in ("+", "-"):
            value = value + self.term() if self.take() == "+" else value - self.term()
        return value

    def term(self) -> int:
        value = self.atom()
        while self.peek() == "*":
            self.take()
            value *= self.atom()
        return value

    def atom(self) -> int:
        token = self.take()
        if token.isdigit():
            return int(token)
        if token == "(":
            value = self.expr()
            if self.peek() == "if":
                self.take()
                left = self.expr()
                cmp = self.take()
                if cmp not in ("<", ">"):
                    raise ProgramError(f"line {self.line}: expected < or >, got {cmp!r}")
                right = self.expr()
                self.take("else")
                other = self.expr()
                value = value if (left < right if cmp == "<" else left > right) else other
            self.take(")")
            return value
        if token in self.env:
            return self.env[token]
        raise ProgramError(f"line {self.line}: unknown name {token!r}")


def _evaluate(tokens: list[str], env: dict[str, int], line: int) -> int:
    parser = _Expression(tokens, env, line)
    value = parser.expr()
    if parser.peek() is not None:
        raise ProgramError(f"line {line}: unexpected {parser.peek()!r}")
    return value


def run_program(code: str) -> int:
    """The value a program prints. Statements: `v=expr`, `for x in range(N):v+=expr` (or -=),
    and a final `print(expr)`."""
    env: dict[str, int] = {}
    lines = code.split("\n")
    for number, text in enumerate(lines, 1):
        t = _tokens(text, number)
        if t[:2] == ["print", "("] and t[-1] == ")":
            if number != len(lines):
                raise ProgramError(f"line {number}: print must be the last line")
            return _evaluate(t[2:-1], env, number)
        if t[:1] == ["for"]:
            if (
                t[1:5] != ["x", "in", "range", "("]
                or t[6:9] != [")", ":", t[8]]
                or not t[5].isdigit()
            ):
                raise ProgramError(f"line {number}: expected 'for x in range(N):v+=expr'")
            var, op = t[8], t[9] if len(t) > 9 else None
            if var not in env or op not in ("+=", "-="):
                raise ProgramError(f"line {number}: the loop must update a defined variable")
            for _ in range(int(t[5])):
                step = _evaluate(t[10:], env, number)
                env[var] = env[var] + step if op == "+=" else env[var] - step
            continue
        if len(t) >= 3 and t[1] == "=" and t[0].isalpha():
            env[t[0]] = _evaluate(t[2:], env, number)
            continue
        raise ProgramError(f"line {number}: not a statement of the language: {text!r}")
    raise ProgramError("the program has no print")


# ----------------------------------------------------------------- the task


class LearnToExecute(AlgorithmicTask):
    """Programs in, their printed output out, one character per step (see the module docstring).

    The end-of-run report scores the paper's test grid at every difficulty up to the target, each
    drawn as `baseline` programs at exactly that difficulty: lengths 1..target for addition,
    lengths x nestings for programs (`report_variants`, set per instance)."""

    def __init__(
        self,
        task: str = "programs",
        length: int = 4,
        nesting: int = 2,
        target_length: int | None = None,
        target_nesting: int | None = None,
        strategy: str = "baseline",
        split: str = "all",
    ) -> None:
        if task not in ("programs", "addition"):
            raise ValueError(f"LearnToExecute: task={task!r}; valid: 'programs', 'addition'")
        if strategy not in STRATEGIES:
            raise ValueError(f"LearnToExecute: strategy={strategy!r}; valid: {STRATEGIES}")
        if split not in SPLITS:
            raise ValueError(f"LearnToExecute: split={split!r}; valid: {SPLITS}")
        self.task, self.strategy, self.split = task, strategy, split
        self.length = self._int_arg("length", length, 1, 12, "in 1..12")
        self.nesting = self._int_arg("nesting", nesting, 1 if task == "programs" else 0, 6, "<= 6")
        self.target_length = self._int_arg(
            "target_length", length if target_length is None else target_length, 1, 12, "in 1..12"
        )
        self.target_nesting = self._int_arg(
            "target_nesting", nesting if target_nesting is None else target_nesting, 0, 6, "<= 6"
        )
        n = len(VOCAB)
        # channels: the character read (one-hot), then a flag that the output phase has begun
        super().__init__(n + 1, 1, classes=n)
        self.report_variants = self._test_grid()

    def _test_grid(self) -> list[tuple[str, int, dict[str, Any]]]:
        """(label, length, env kwargs) of every difficulty up to the target, as baseline draws
        (of the held-out test programs when this task draws from a split)."""
        held_out = {"split": "test"} if self.split != "all" else {}
        if self.task == "addition":
            return [
                (
                    f"{k} digits",
                    k,
                    {"length": k, "target_length": k, "strategy": "baseline", **held_out},
                )
                for k in range(1, self.target_length + 1)
            ]
        return [
            (
                f"length {k}, nesting {m}",
                k,
                {
                    "length": k,
                    "nesting": m,
                    "target_length": k,
                    "target_nesting": m,
                    "strategy": "baseline",
                    **held_out,
                },
            )
            for k in range(1, self.target_length + 1)
            for m in range(1, max(self.target_nesting, 1) + 1)
        ]

    def _difficulty(self, rng: np.random.Generator) -> tuple[int, int]:
        """(length, nesting) of the next program under the strategy."""
        target = (self.target_length, self.target_nesting)
        if self.strategy == "baseline":
            return target
        mix = (
            int(rng.integers(1, self.target_length + 1)),
            int(rng.integers(1, max(self.target_nesting, 1) + 1)),
        )
        if self.strategy == "mix" or (self.strategy == "combined" and rng.random() < 0.2):
            return mix
        return self.length, self.nesting  # naive: the curriculum's current level

    def draw(self, rng: np.random.Generator) -> tuple[str, str]:
        """One (program, printed output) pair under the strategy, from `split`'s third."""
        length, nesting = self._difficulty(rng)  # the strategy's draw, kept across redraws
        for _ in range(1000):  # a third of the programs match: 1000 misses have p ~ 1e-176
            if self.task == "addition":
                code, value = generate_addition(length, rng)
            else:
                code, value = generate_program(length, nesting, rng)
            output = f"{value}."
            if self.split == "all" or program_split(code, output) == self.split:
                return code, output
        raise RuntimeError(f"LearnToExecute: no {self.split!r} program in 1000 draws")

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """The base's step, its -1 per wrong character scaled by the output's length."""
        obs, reward, terminated, truncated, info = super().step(action)
        return obs, reward / float(self._mask.sum()), terminated, truncated, info

    def _generate(self, batch_size: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
        pairs = [self.draw(rng) for _ in range(batch_size)]
        steps = np.array([len(code) + len(out) for code, out in pairs])
        T, n = int(steps.max()), len(VOCAB)
        inputs = np.zeros((T, batch_size, n + 1), np.float32)
        targets = np.zeros((T, batch_size), np.int64)
        mask = np.zeros((T, batch_size), np.float32)
        for b, (code, out) in enumerate(pairs):
            for t, c in enumerate(code):
                inputs[t, b, CHAR_ID[c]] = 1.0
            start = len(code)
            inputs[start : start + len(out), b, n] = 1.0  # the output phase
            for k, c in enumerate(out):
                targets[start + k, b] = CHAR_ID[c]
                mask[start + k, b] = 1.0
                if k + 1 < len(out):  # teacher forcing: the next step reads this character
                    inputs[start + k + 1, b, CHAR_ID[c]] = 1.0
        return inputs, targets, mask, steps


def decode(ids: Any) -> str:
    """Characters of symbol ids (for pictures and logs)."""
    return "".join(VOCAB[int(i)] for i in np.asarray(ids).reshape(-1))
