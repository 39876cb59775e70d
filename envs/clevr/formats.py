"""Readers and writers for CLEVR's JSON files: scenes and questions.

Two question layouts are read:

- CLEVR's own (the public v1.0 release and its generator): `{"info": ..., "questions": [...]}`,
  one question per entry with `question`, `answer`, `image_index`, `program` (a list of nodes
  with `function` or `type`, `inputs`, `value_inputs` or `side_inputs`), `question_family_index`.
- The multi-scene variant in ../shared/data/clevr/questions_train (a third party's run of CLEVR's
  generator): `image_indices`, `answers` and `program` are lists with one entry per scene the
  question was asked on, and each node carries its executed `_output`. It is expanded into one
  `Question` per scene.

Every malformed file is a `ClevrFormatError` (a ValueError) naming the file, the entry and the key;
nothing read is imported or evaluated. Answers are normalised to CLEVR's written form: "yes"/"no"
for booleans, ints for counts (the public release writes counts as strings, "3").
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from envs.clevr.catalog import ATTRIBUTE_OF_TYPE, ATTRIBUTES, FUNCTIONS, SYNONYMS
from envs.clevr.executor import Answer, Node, check_scene
from envs.files import atomic_write_text


class ClevrFormatError(ValueError):
    """A CLEVR JSON file that is not in a format memrl reads: names the file and where."""

    def __init__(self, path: str | os.PathLike[str], where: str, reason: str) -> None:
        self.path = str(path)
        self.where = where
        self.reason = reason
        loc = f" at {where}" if where else ""
        super().__init__(f"{self.path}{loc}: {reason}")


@dataclass
class Question:
    """One question on one scene. `program` is None where the file keeps none (a test split);
    `outputs` holds each step's `_output` where the file has them; `restored_nodes` lists the
    nodes whose dropped value input `read_questions(restore_dropped_values=True)` put back."""

    question: str
    image_index: int
    answer: Answer | None = None
    program: tuple[Node, ...] | None = None
    question_index: int | None = None
    question_family_index: int | None = None
    image_filename: str | None = None
    split: str | None = None
    template_filename: str | None = None
    outputs: list[Any] | None = None
    restored_nodes: tuple[int, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        """The question in CLEVR's own (public release) format."""
        out: dict[str, Any] = {"question": self.question, "image_index": self.image_index}
        if self.answer is not None:
            out["answer"] = self.answer
        if self.program is not None:
            out["program"] = [n.to_json() for n in self.program]
        for key in ("question_index", "question_family_index", "image_filename", "split"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out


def normalise_answer(value: object) -> Answer:
    """An answer as CLEVR writes it: booleans as "yes"/"no", counts as ints."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        return int(value) if value.isdigit() else value
    raise TypeError(f"an answer is a word, an integer or a boolean, not {type(value).__name__}")


def _load(path: str | os.PathLike[str]) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise ClevrFormatError(path, "", "no such file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ClevrFormatError(path, "", f"not a JSON file ({e})") from None
    except OSError as e:
        raise ClevrFormatError(path, "", f"cannot be read ({e.strerror or e})") from None


def _entries(path: str | os.PathLike[str], data: Any, key: str) -> list[Any]:
    if isinstance(data, Mapping):
        if key not in data:
            raise ClevrFormatError(path, "", f"a JSON object without a {key!r} list")
        data = data[key]
    if not isinstance(data, list):
        raise ClevrFormatError(path, key, f"must be a list, not {type(data).__name__}")
    return data


def _is_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def read_scenes(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The scenes of a CLEVR scenes file, as the dicts the file holds, checked to be runnable
    (objects with the four attribute words and 3d coordinates, relationships for left, right,
    behind, front)."""
    entries = _entries(path, _load(path), "scenes")
    for i, scene in enumerate(entries):
        where = f"scenes[{i}]"
        if not isinstance(scene, dict):
            raise ClevrFormatError(path, where, "a scene is a JSON object")
        if not _is_int(scene.get("image_index")):
            raise ClevrFormatError(path, f"{where}.image_index", "missing or not an integer")
        bad = check_scene(scene)
        if bad is not None:
            raise ClevrFormatError(path, where, bad.reason)
        for j, obj in enumerate(scene["objects"]):
            xyz = obj.get("3d_coords")
            if not (
                isinstance(xyz, list)
                and len(xyz) == 3
                and all(isinstance(c, int | float) and not isinstance(c, bool) for c in xyz)
            ):
                raise ClevrFormatError(
                    path, f"{where}.objects[{j}].3d_coords", "must be a list of 3 numbers"
                )
    return entries


def _node(path: str | os.PathLike[str], where: str, raw: object, i: int) -> Node:
    """A node's JSON shape (not its meaning: the executor judges that)."""
    if not isinstance(raw, Mapping):
        raise ClevrFormatError(path, where, "a program node is a JSON object")
    name = raw.get("function", raw.get("type"))
    if not isinstance(name, str):
        raise ClevrFormatError(path, f"{where}.function", "missing or not a string ('type' too)")
    inputs = raw.get("inputs", [])
    if not isinstance(inputs, list) or not all(_is_int(x) and 0 <= x < i for x in inputs):
        raise ClevrFormatError(path, f"{where}.inputs", f"must list earlier nodes (< {i})")
    key = "value_inputs" if "value_inputs" in raw else "side_inputs"
    values = raw.get(key, [])
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ClevrFormatError(path, f"{where}.{key}", "must be a list of words")
    return Node(name, tuple(inputs), tuple(values))


def _program(path: str | os.PathLike[str], where: str, raw: object) -> tuple[Node, ...]:
    if not isinstance(raw, list) or not raw:
        raise ClevrFormatError(path, where, "a program is a non-empty list of nodes")
    return tuple(_node(path, f"{where}[{i}]", n, i) for i, n in enumerate(raw))


def _answer(path: str | os.PathLike[str], where: str, raw: object) -> Answer:
    try:
        return normalise_answer(raw)
    except TypeError as e:
        raise ClevrFormatError(path, where, str(e)) from None


def _opt(path: str | os.PathLike[str], where: str, q: Mapping, key: str, typ: type) -> Any:
    value = q.get(key)
    if value is not None and (not isinstance(value, typ) or isinstance(value, bool)):
        raise ClevrFormatError(path, f"{where}.{key}", f"must be a {typ.__name__}")
    return value


_WORD_VALUE: dict[str, tuple[str, str]] = {}
for _attr, (_typ, _vals) in ATTRIBUTES.items():
    for _v in _vals:
        for _w in SYNONYMS.get(_v, (_v,)):
            _WORD_VALUE[_w] = (_attr, _v)


def _text_values(text: str, attr: str) -> list[str]:
    """The values of `attr` a question's words name, in order (plurals and synonyms folded)."""
    found = []
    for word in re.findall(r"[a-z]+", text.lower()):
        hit = _WORD_VALUE.get(word) or (_WORD_VALUE.get(word[:-1]) if word.endswith("s") else None)
        if hit and hit[0] == attr:
            found.append(hit[1])
    return found


def _restore(text: str, programs: list[tuple[Node, ...]]) -> list[tuple[tuple[Node, ...], tuple]]:
    """Puts back filter values the multi-scene file dropped (its generator emptied some
    `value_inputs` while the `_output`s were computed with the value): from the same node of
    the question's other programs where one keeps it, else from the question's words of that
    attribute that no other filter of the program uses, where exactly one is left."""
    result = []
    for prog in programs:
        nodes = list(prog)
        restored = []
        dropped = [
            i
            for i, node in enumerate(nodes)
            if node.function in FUNCTIONS
            and FUNCTIONS[node.function].value_type in ATTRIBUTE_OF_TYPE
            and not node.value_inputs
        ]
        for i in dropped:  # first from the other programs, then from the words left over
            siblings = {
                p[i].value_inputs
                for p in programs
                if len(p) > i and p[i].function == nodes[i].function and p[i].value_inputs
            }
            if len(siblings) == 1:
                nodes[i] = Node(nodes[i].function, nodes[i].inputs, siblings.pop())
                restored.append(i)
        for i in dropped:
            if i in restored:
                continue
            attr = ATTRIBUTE_OF_TYPE[FUNCTIONS[nodes[i].function].value_type]
            left = _text_values(text, attr)
            for other in nodes:
                same = other.function == nodes[i].function and other.value_inputs
                if same and other.value_inputs[0] in left:
                    left.remove(other.value_inputs[0])
            if len(set(left)) == 1:
                nodes[i] = Node(nodes[i].function, nodes[i].inputs, (left[0],))
                restored.append(i)
        result.append((tuple(nodes), tuple(sorted(restored))))
    return result


def _multi_scene(
    path: str | os.PathLike[str], where: str, q: Mapping, base: dict[str, Any], restore: bool
) -> list[Question]:
    indices, answers, programs = q.get("image_indices"), q.get("answers"), q.get("program")
    if not isinstance(indices, list) or not all(_is_int(x) for x in indices):
        raise ClevrFormatError(path, f"{where}.image_indices", "must be a list of integers")
    n = len(indices)
    for key, value in (("answers", answers), ("program", programs)):
        if value is not None and (not isinstance(value, list) or len(value) != n):
            raise ClevrFormatError(path, f"{where}.{key}", f"must be a list of {n} (one a scene)")
    files = q.get("image_filenames")
    if files is not None and (
        not isinstance(files, list) or len(files) != n or not all(isinstance(f, str) for f in files)
    ):
        raise ClevrFormatError(path, f"{where}.image_filenames", f"must be a list of {n} names")
    progs: list[tuple[Node, ...]] = []
    outputs: list[list[Any]] = []
    if programs is not None:
        for k, raw in enumerate(programs):
            progs.append(_program(path, f"{where}.program[{k}]", raw))
            outputs.append([n.get("_output") for n in raw])
    fixed = _restore(base["question"], progs) if restore else [(p, ()) for p in progs]
    out = []
    for k in range(n):
        prog, restored = fixed[k] if fixed else (None, ())
        out.append(
            Question(
                **base,
                image_index=indices[k],
                answer=None
                if answers is None
                else _answer(path, f"{where}.answers[{k}]", answers[k]),
                program=prog,
                image_filename=None if files is None else files[k],
                outputs=outputs[k]
                if outputs and all("_output" in n for n in programs[k])
                else None,
                restored_nodes=restored,
            )
        )
    return out


def read_questions(
    path: str | os.PathLike[str], *, restore_dropped_values: bool = False
) -> list[Question]:
    """The questions of a CLEVR questions file, in either layout (see the module docstring).
    `restore_dropped_values` repairs the multi-scene files' emptied filter values (off by
    default: the file is read as written)."""
    entries = _entries(path, _load(path), "questions")
    questions: list[Question] = []
    for i, q in enumerate(entries):
        where = f"questions[{i}]"
        if not isinstance(q, Mapping):
            raise ClevrFormatError(path, where, "a question is a JSON object")
        if not isinstance(q.get("question"), str):
            raise ClevrFormatError(path, f"{where}.question", "missing or not a string")
        family = _opt(path, where, q, "question_family_index", int)
        if family is None:
            family = _opt(path, where, q, "template_index", int)
        base = {
            "question": q["question"],
            "question_index": _opt(path, where, q, "question_index", int),
            "question_family_index": family,
            "split": _opt(path, where, q, "split", str),
            "template_filename": _opt(path, where, q, "template_filename", str),
        }
        if "image_indices" in q:
            questions += _multi_scene(path, where, q, base, restore_dropped_values)
            continue
        if not _is_int(q.get("image_index")):
            raise ClevrFormatError(path, f"{where}.image_index", "missing or not an integer")
        program = q.get("program")
        questions.append(
            Question(
                **base,
                image_index=q["image_index"],
                answer=None
                if q.get("answer") is None
                else _answer(path, f"{where}.answer", q["answer"]),
                program=None if program is None else _program(path, f"{where}.program", program),
                image_filename=_opt(path, where, q, "image_filename", str),
            )
        )
    return questions


def clevr_data_dir() -> Path | None:
    """The CLEVR data folder: $MEMRL_DATA/clevr if MEMRL_DATA is set, else ../shared/data/clevr
    beside the repository; None if it is not there (callers skip or generate instead)."""
    root = os.environ.get("MEMRL_DATA")
    base = Path(root) if root else Path(__file__).resolve().parents[3] / "shared" / "data"
    folder = base / "clevr"
    return folder if folder.is_dir() else None


def _atomic_write_json(path: str | os.PathLike[str], data: Any) -> None:
    """Writes JSON through a temporary file in the same folder and a rename, so a reader never
    sees half a file."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(target, json.dumps(data))


def write_questions(
    path: str | os.PathLike[str], questions: Iterable[Question], info: Mapping | None = None
) -> None:
    """Writes questions in CLEVR's own format (one entry per question and scene)."""
    data = {"info": dict(info or {}), "questions": [q.to_json() for q in questions]}
    _atomic_write_json(path, data)


def write_scenes(
    path: str | os.PathLike[str], scenes: Sequence[Mapping], info: Mapping | None = None
) -> None:
    """Writes scenes in CLEVR's scenes format."""
    _atomic_write_json(path, {"info": dict(info or {}), "scenes": [dict(s) for s in scenes]})
