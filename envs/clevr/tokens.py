"""Token sequences for questions and programs, for the seq2seq program generator and the env.

Programs are written in prefix order, one token per node, `function` or `function[value]` (as
IEP's program vocabulary), so a policy can emit a program one token per step and the arities in
the catalog rebuild the tree. `prefix_to_program` never raises: a token sequence that is no
program comes back as an `ExecutionError`, like any other invalid program.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from envs.clevr.catalog import FUNCTIONS, PRIMITIVES, VALUE_TYPES
from envs.clevr.executor import INVALID_PROGRAM, ExecutionError, Node

NULL, START, END, UNK = "<NULL>", "<START>", "<END>", "<UNK>"
SPECIALS = (NULL, START, END, UNK)


def tokenize_question(text: str) -> list[str]:
    """Lower-case words, with ';', ',' and '?' as tokens of their own."""
    return re.findall(r"[a-z0-9]+|[;,?]", text.lower())


def node_token(node: Node) -> str:
    """`function` or `function[value]`; a template macro's values are comma-separated."""
    return f"{node.function}[{','.join(node.value_inputs)}]" if node.value_inputs else node.function


def program_to_prefix(nodes: Sequence[Node]) -> list[str]:
    """The program's tree from its last node, in prefix order (shared nodes are repeated)."""

    def walk(i: int) -> list[str]:
        out = [node_token(nodes[i])]
        for x in nodes[i].inputs:
            out += walk(x)
        return out

    return walk(len(nodes) - 1) if nodes else []


def _parse_token(token: str) -> tuple[str, tuple[str, ...]] | None:
    m = re.fullmatch(r"([a-z_]+)(?:\[([a-z,]*)\])?", token)
    if m is None or m.group(1) not in FUNCTIONS:
        return None
    fn = FUNCTIONS[m.group(1)]
    values = () if m.group(2) is None else tuple(m.group(2).split(","))
    if fn.macro_values:  # the executor checks the values of a macro
        return fn.name, values
    if len(values) != (1 if fn.value_type else 0):
        return None
    if values and values[0] not in VALUE_TYPES[fn.value_type or ""]:
        return None
    return fn.name, values


def prefix_to_program(tokens: Sequence[str]) -> tuple[Node, ...] | ExecutionError:
    """The program a prefix token sequence writes, nodes in CLEVR's order (inputs first)."""
    nodes: list[Node] = []
    pos = 0

    def build() -> int | ExecutionError:
        nonlocal pos
        if pos >= len(tokens):
            return ExecutionError(INVALID_PROGRAM, "the token sequence ends inside the program")
        parsed = _parse_token(tokens[pos])
        if parsed is None:
            return ExecutionError(INVALID_PROGRAM, f"{tokens[pos]!r} is not a program token", pos)
        pos += 1
        name, values = parsed
        inputs = []
        for _ in FUNCTIONS[name].inputs:
            got = build()
            if isinstance(got, ExecutionError):
                return got
            inputs.append(got)
        nodes.append(Node(name, tuple(inputs), values))
        return len(nodes) - 1

    if len(tokens) > 200:
        return ExecutionError(INVALID_PROGRAM, f"{len(tokens)} tokens is too long a program")
    root = build()
    if isinstance(root, ExecutionError):
        return root
    if pos != len(tokens):
        return ExecutionError(INVALID_PROGRAM, f"tokens left after the program: {tokens[pos:]}")
    return tuple(nodes)


def program_tokens() -> list[str]:
    """Every program token of the primitive functions (not the template macros), in order."""
    out = []
    for fn in PRIMITIVES.values():
        if fn.value_type is None:
            out.append(fn.name)
        else:
            out += [f"{fn.name}[{v}]" for v in VALUE_TYPES[fn.value_type]]
    return out


@dataclass
class Vocab:
    """Token <-> index, with <NULL>=0, <START>, <END>, <UNK> first."""

    tokens: list[str]
    index: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self.tokens = list(SPECIALS) + [t for t in self.tokens if t not in SPECIALS]
        self.index = {t: i for i, t in enumerate(self.tokens)}
        if len(self.index) != len(self.tokens):
            raise ValueError("Vocab: duplicate tokens")

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, tokens: Iterable[str], wrap: bool = True) -> list[int]:
        ids = [self.index.get(t, self.index[UNK]) for t in tokens]
        return [self.index[START], *ids, self.index[END]] if wrap else ids

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Tokens up to <END>, without <START>/<NULL>."""
        out = []
        for i in ids:
            t = self.tokens[i] if 0 <= i < len(self.tokens) else UNK
            if t == END:
                break
            if t not in (START, NULL):
                out.append(t)
        return out


def question_vocab(texts: Iterable[str]) -> Vocab:
    return Vocab(sorted({t for text in texts for t in tokenize_question(text)}))


def program_vocab() -> Vocab:
    return Vocab(program_tokens())
