"""A symbolic executor for CLEVR programs over scene graphs, with CLEVR's own semantics.

`execute(program, scene)` takes a program and a scene exactly as they appear in CLEVR's JSON files
(nodes in either style: the public release's `function`/`value_inputs` or the generator's
`type`/`side_inputs`) and returns the answer as CLEVR writes it: "yes"/"no", an int, or an
attribute word. The semantics follow CLEVR's question engine: `relate` and `same_*` never return
the object itself, `unique` fails unless its input holds exactly one object, `union`/`intersect`
return sorted index lists.

Nothing here raises on bad input. An agent's program is untrusted (a policy emits it token by
token), so an invalid program, a malformed scene or a program that fails on its scene (unique()
of 0 or 2+ objects) comes back as an `ExecutionError` value with the offending node's index and
a reason; a reward function can treat it as a wrong answer without a try/except.
`execute_steps` returns every node's output as well, in the form CLEVR's generator stores in
`_output` (index lists, an object index, ints, bools, words), to check a program step by step.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from envs.clevr.catalog import (
    ANSWER_TYPES,
    ATTRIBUTES,
    BOOL,
    FUNCTIONS,
    OBJECT,
    OBJECT_SET,
    RELATIONS,
    VALUE_TYPES,
)

Answer = str | int

INVALID_PROGRAM = "invalid_program"
INVALID_SCENE = "invalid_scene"
FAILED = "failed"


@dataclass(frozen=True)
class ExecutionError:
    """Why a program gave no answer. `kind` is `invalid_program` (unknown function, wrong input
    type or count, bad input index, bad value input), `invalid_scene` (the scene dict is not a
    CLEVR scene) or `failed` (a valid program that has no answer on this scene, e.g. unique() of
    two objects). `node` is the offending node's index where there is one."""

    kind: str
    reason: str
    node: int | None = None

    def __str__(self) -> str:
        where = f" at node {self.node}" if self.node is not None else ""
        return f"{self.kind}{where}: {self.reason}"


@dataclass(frozen=True)
class Node:
    """One program step, whichever key style it was written in."""

    function: str
    inputs: tuple[int, ...]
    value_inputs: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        """The node in the public CLEVR release's style."""
        return {
            "function": self.function,
            "inputs": list(self.inputs),
            "value_inputs": list(self.value_inputs),
        }


@dataclass(frozen=True)
class Trace:
    """`execute_steps`' result: each node's output up to the last one run, and the answer (or
    the error that stopped the program)."""

    outputs: list[Any]
    answer: Answer | ExecutionError


def is_error(value: object) -> bool:
    return isinstance(value, ExecutionError)


def _bad(reason: str, node: int | None = None) -> ExecutionError:
    return ExecutionError(INVALID_PROGRAM, reason, node)


def _one_of(node: Mapping, keys: tuple[str, str], default: Any, i: int) -> Any:
    """The node's value under either of two synonymous keys; an error if both differ."""
    present = [node[k] for k in keys if k in node]
    if len(present) == 2 and present[0] != present[1]:
        return _bad(f"node has both {keys[0]!r} and {keys[1]!r} and they differ", i)
    return present[0] if present else default


def parse_node(node: object, i: int) -> Node | ExecutionError:
    """Node `i` of a program as a `Node`, checked against the catalog on its own (its input
    types are checked by `parse_program`, which sees the whole program)."""
    if isinstance(node, Node):
        raw: Mapping[str, Any] = node.to_json()
    elif isinstance(node, Mapping):
        raw = node
    else:
        return _bad(f"a node is a JSON object, not {type(node).__name__}", i)
    name = _one_of(raw, ("function", "type"), None, i)
    if isinstance(name, ExecutionError):
        return name
    if name is None:
        return _bad("node has no 'function' (or 'type') key", i)
    if not isinstance(name, str) or name not in FUNCTIONS:
        return _bad(f"unknown function {name!r}; known: {', '.join(sorted(FUNCTIONS))}", i)
    fn = FUNCTIONS[name]
    inputs = raw.get("inputs", [])
    if not isinstance(inputs, list | tuple) or not all(
        isinstance(x, numbers.Integral) and not isinstance(x, bool) for x in inputs
    ):
        return _bad(f"{name}: 'inputs' must be a list of node indices, got {inputs!r}", i)
    inputs = [int(x) for x in inputs]  # numpy integers from a policy are fine
    if len(inputs) != len(fn.inputs):
        return _bad(f"{name} takes {len(fn.inputs)} input(s), got {len(inputs)}", i)
    for x in inputs:
        if not 0 <= x < i:
            return _bad(f"{name}: input {x} is not an earlier node (0..{i - 1})", i)
    values = _one_of(raw, ("value_inputs", "side_inputs"), [], i)
    if isinstance(values, ExecutionError):
        return values
    if not isinstance(values, list | tuple) or not all(isinstance(v, str) for v in values):
        return _bad(f"{name}: 'value_inputs' must be a list of words, got {values!r}", i)
    if fn.macro_values:
        return _macro_node(name, tuple(inputs), tuple(values), i)
    want = 1 if fn.value_type else 0
    if len(values) != want:
        what = f"one value input (a {fn.value_type})" if fn.value_type else "no value inputs"
        return _bad(f"{name} takes {what}, got {list(values)!r}", i)
    if fn.value_type and values[0] not in VALUE_TYPES[fn.value_type]:
        allowed = ", ".join(VALUE_TYPES[fn.value_type])
        return _bad(f"{name}: {values[0]!r} is not a {fn.value_type} ({allowed})", i)
    return Node(name, tuple(inputs), tuple(values))


def _macro_node(
    name: str, inputs: tuple[int, ...], values: tuple[str, ...], i: int
) -> Node | ExecutionError:
    types = FUNCTIONS[name].macro_values
    if len(values) != len(types):
        return _bad(
            f"{name} takes {len(types)} value inputs ({', '.join(types)}), got {list(values)!r}", i
        )
    for t, v in zip(types, values):
        empty = v == "" or (t == "Shape" and v == "thing")
        if (empty and t == "Relation") or (not empty and v not in VALUE_TYPES[t]):
            return _bad(f"{name}: {v!r} is not a {t}" + ("" if t == "Relation" else " (nor '')"), i)
    return Node(name, inputs, values)


def parse_program(program: object) -> tuple[Node, ...] | ExecutionError:
    """A program as checked `Node`s: every function known, every input an earlier node of the
    type the function takes."""
    if not isinstance(program, Sequence) or isinstance(program, str | bytes):
        return _bad(f"a program is a list of nodes, not {type(program).__name__}")
    if not program:
        return _bad("the program is empty")
    nodes: list[Node] = []
    types: list[str] = []
    for i, raw in enumerate(program):
        node = parse_node(raw, i)
        if isinstance(node, ExecutionError):
            return node
        fn = FUNCTIONS[node.function]
        for x, want in zip(node.inputs, fn.inputs):
            if types[x] != want:
                return _bad(
                    f"{node.function} takes a {want} as input, node {x} ({nodes[x].function}) "
                    f"gives a {types[x]}",
                    i,
                )
        nodes.append(node)
        types.append(fn.output)
    return tuple(nodes)


def check_scene(scene: object) -> ExecutionError | None:
    """None if `scene` is a CLEVR scene the executor can run on (objects with the four
    attributes as words, relationships for the four relations as per-object index lists)."""

    def bad(reason: str) -> ExecutionError:
        return ExecutionError(INVALID_SCENE, reason)

    if not isinstance(scene, Mapping):
        return bad(f"a scene is a JSON object, not {type(scene).__name__}")
    objects = scene.get("objects")
    if not isinstance(objects, list):
        return bad("the scene has no 'objects' list")
    n = len(objects)
    for j, obj in enumerate(objects):
        if not isinstance(obj, Mapping):
            return bad(f"objects[{j}] is not a JSON object")
        for attr in ATTRIBUTES:
            if not isinstance(obj.get(attr), str):
                return bad(f"objects[{j}] has no {attr!r} word")
    rels = scene.get("relationships")
    if not isinstance(rels, Mapping):
        return bad("the scene has no 'relationships' object")
    for rel in RELATIONS:
        lists = rels.get(rel)
        if not isinstance(lists, list) or len(lists) != n:
            return bad(f"relationships[{rel!r}] is not a list of {n} index lists")
        for j, related in enumerate(lists):
            if not isinstance(related, list) or not all(
                isinstance(x, int) and not isinstance(x, bool) and 0 <= x < n for x in related
            ):
                return bad(f"relationships[{rel!r}][{j}] is not a list of object indices < {n}")
    return None


def _run(nodes: Sequence[Node], scene: Mapping[str, Any], outputs: list[Any]) -> Any:
    """Runs the checked nodes, appending each output; returns an ExecutionError on failure."""
    objects = scene["objects"]
    rels = scene["relationships"]
    for i, node in enumerate(nodes):
        f = node.function
        args = [outputs[x] for x in node.inputs]
        if f == "scene":
            out: Any = list(range(len(objects)))
        elif FUNCTIONS[f].macro_values:
            out = _run_macro(node, args[0], objects, rels)
            if isinstance(out, ExecutionError):
                return ExecutionError(FAILED, out.reason, i)
        elif f.startswith("filter_"):
            attr, value = f[7:], node.value_inputs[0]
            out = [j for j in args[0] if objects[j][attr] == value]
        elif f == "unique":
            if len(args[0]) != 1:
                return ExecutionError(FAILED, f"unique() of {len(args[0])} objects", i)
            out = args[0][0]
        elif f == "relate":
            me = args[0]
            out = sorted({j for j in rels[node.value_inputs[0]][me] if j != me})
        elif f.startswith("same_"):
            attr, me = f[5:], args[0]
            out = [j for j, o in enumerate(objects) if j != me and o[attr] == objects[me][attr]]
        elif f.startswith("query_"):
            out = objects[args[0]][f[6:]]
        elif f == "union":
            out = sorted(set(args[0]) | set(args[1]))
        elif f == "intersect":
            out = sorted(set(args[0]) & set(args[1]))
        elif f == "count":
            out = len(args[0])
        elif f == "exist":
            out = len(args[0]) > 0
        elif f.startswith("equal_"):
            out = args[0] == args[1]
        elif f == "less_than":
            out = args[0] < args[1]
        elif f == "greater_than":
            out = args[0] > args[1]
        else:  # pragma: no cover - parse_node admits only catalog functions
            return _bad(f"no handler for {f}", i)
        outputs.append(out)
    return None


def _run_macro(node: Node, arg: Any, objects: list, rels: Mapping) -> Any:
    """CLEVR's template macros: [relate, then] filter on each non-empty value, then the suffix."""
    values = node.value_inputs
    current = arg
    if node.function.startswith("relate_"):
        current = sorted({j for j in rels[values[0]][arg] if j != arg})
        values = values[1:]
    for attr, v in zip(ATTRIBUTES, values):
        if v and not (attr == "shape" and v == "thing"):
            current = [j for j in current if objects[j][attr] == v]
    if node.function.endswith("_unique"):
        if len(current) != 1:
            return ExecutionError(FAILED, f"unique() of {len(current)} objects")
        return current[0]
    if node.function.endswith("_count"):
        return len(current)
    if node.function.endswith("_exist"):
        return len(current) > 0
    return current


def to_answer(value: Any) -> Answer:
    """A terminal node's output as CLEVR writes answers: bools as "yes"/"no"."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return value


def execute_steps(program: object, scene: object) -> Trace:
    """Every node's output (as CLEVR's `_output`) and the answer or the error that stopped it."""
    nodes = parse_program(program)
    if isinstance(nodes, ExecutionError):
        return Trace([], nodes)
    bad_scene = check_scene(scene)
    if bad_scene is not None:
        return Trace([], bad_scene)
    assert isinstance(scene, Mapping)
    outputs: list[Any] = []
    failure = _run(nodes, scene, outputs)
    if failure is not None:
        return Trace(outputs, failure)
    last = FUNCTIONS[nodes[-1].function].output
    if last not in ANSWER_TYPES:
        kind = "an object" if last == OBJECT else "a set of objects" if last == OBJECT_SET else last
        return Trace(
            outputs, _bad(f"the program ends in {nodes[-1].function}, {kind}, not an answer")
        )
    return Trace(outputs, to_answer(outputs[-1]))


def execute(program: object, scene: object) -> Answer | ExecutionError:
    """The answer of `program` on `scene` as CLEVR writes it, or an `ExecutionError`."""
    return execute_steps(program, scene).answer


def answer_type(program: Sequence[Node]) -> str:
    """The type of a checked program's answer (Bool, Integer, or an attribute type)."""
    return FUNCTIONS[program[-1].function].output


__all__ = [
    "BOOL",
    "Answer",
    "ExecutionError",
    "Node",
    "Trace",
    "answer_type",
    "check_scene",
    "execute",
    "execute_steps",
    "is_error",
    "parse_node",
    "parse_program",
    "to_answer",
]
