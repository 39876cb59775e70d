"""CLEVR data code: the executor on hand-checked scenes and on every real question of
../shared/data/clevr, the readers and writers, the scene and question generators, and property
tests that no bad program, scene or file escapes as anything but memrl's own error."""

from __future__ import annotations

import collections
import contextlib
import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from envs.clevr import (
    FUNCTIONS,
    ClevrFormatError,
    ExecutionError,
    Node,
    Question,
    execute,
    execute_steps,
    read_questions,
    read_scenes,
    write_questions,
    write_scenes,
)
from envs.clevr.catalog import ATTRIBUTES, VALUE_TYPES
from envs.clevr.executor import FAILED, INVALID_PROGRAM, INVALID_SCENE, check_scene
from envs.clevr.formats import clevr_data_dir
from envs.clevr.question_generator import (
    QUESTION_TYPES,
    TEMPLATES,
    QuestionConfig,
    generate_questions,
    template_of,
)
from envs.clevr.scene_generator import (
    SceneConfig,
    compute_relationships,
    directions_for,
    generate_scenes,
)
from envs.clevr.tokens import prefix_to_program as from_prefix
from envs.clevr.tokens import (
    program_to_prefix,
    program_vocab,
    question_vocab,
    tokenize_question,
)

DATA = clevr_data_dir()
needs_data = pytest.mark.skipif(
    DATA is None, reason="no CLEVR data: set MEMRL_DATA or provide ../shared/data/clevr"
)

# -- a hand-checked scene -------------------------------------------------------------------
# Seen from above, right = +x, behind = +y:
#   2 small blue rubber cube (0, 2)
#   0 large red metal cube (0, 0)      1 small red rubber sphere (2, 0)
#   3 large green metal cylinder (-2, -2)
TINY_OBJECTS = [
    ("large", "red", "metal", "cube", (0.0, 0.0)),
    ("small", "red", "rubber", "sphere", (2.0, 0.0)),
    ("small", "blue", "rubber", "cube", (0.0, 2.0)),
    ("large", "green", "metal", "cylinder", (-2.0, -2.0)),
]
TINY_RELATIONSHIPS = {  # worked out by hand from the coordinates above
    "right": [[1], [], [1], [0, 1, 2]],
    "left": [[3], [0, 2, 3], [3], []],
    "behind": [[2], [2], [], [0, 1, 2]],
    "front": [[3], [3], [0, 1, 3], []],
}


def tiny_scene() -> dict[str, Any]:
    objects = [
        {"size": z, "color": c, "material": m, "shape": s, "3d_coords": [x, y, 0.5]}
        for z, c, m, s, (x, y) in TINY_OBJECTS
    ]
    return {
        "image_index": 0,
        "objects": objects,
        "relationships": copy.deepcopy(TINY_RELATIONSHIPS),
        "directions": directions_for(0.0),
    }


def chain(*steps: str | tuple[str, str]) -> list[dict[str, Any]]:
    """A chain program, each step taking the one before: "fn" or ("fn", value)."""
    out = []
    for i, step in enumerate(steps):
        fn, values = (step, []) if isinstance(step, str) else (step[0], [step[1]])
        out.append({"function": fn, "inputs": [] if i == 0 else [i - 1], "value_inputs": values})
    return out


def tree(*nodes: tuple) -> list[dict[str, Any]]:
    """A program from (fn, inputs, *values) tuples."""
    return [{"function": n[0], "inputs": list(n[1]), "value_inputs": list(n[2:])} for n in nodes]


def two_objects(a: list, b: list, last: str) -> list[dict[str, Any]]:
    """`last`(query-or-object of a, of b) where a and b are filter steps picking one object."""
    nodes: list[tuple] = [("scene", [])]
    for f, v in a:
        nodes.append((f, [len(nodes) - 1], v))
    nodes.append(("unique", [len(nodes) - 1]))
    ua = len(nodes) - 1
    nodes.append(("scene", []))
    for f, v in b:
        nodes.append((f, [len(nodes) - 1], v))
    nodes.append(("unique", [len(nodes) - 1]))
    ub = len(nodes) - 1
    if last.startswith("equal_") and last != "equal_object":
        q = "query_" + last[6:]
        nodes += [(q, [ua]), (q, [ub]), (last, [len(nodes), len(nodes) + 1])]
    else:
        nodes.append((last, [ua, ub]))
    return tree(*nodes)


RED_CUBE = [("filter_color", "red"), ("filter_shape", "cube")]  # object 0
SPHERE = [("filter_shape", "sphere")]  # object 1
BLUE = [("filter_color", "blue")]  # object 2
CYLINDER = [("filter_shape", "cylinder")]  # object 3


def count_of(*filters: tuple[str, str]) -> list[tuple]:
    return [("scene", []), *((f, [i], v) for i, (f, v) in enumerate(filters))]


def compare(function: str, a: list, b: list) -> list[dict[str, Any]]:
    nodes = count_of(*a)
    nodes.append(("count", [len(nodes) - 1]))
    na = len(nodes) - 1
    start = len(nodes)
    nodes.append(("scene", []))
    for i, (f, v) in enumerate(b):
        nodes.append((f, [start + i], v))
    nodes.append(("count", [len(nodes) - 1]))
    nodes.append((function, [na, len(nodes) - 1]))
    return tree(*nodes)


HAND_CHECKED = [
    ("scene/count", chain("scene", "count"), 4),
    ("filter_color", chain("scene", ("filter_color", "red"), "count"), 2),
    ("filter_size", chain("scene", ("filter_size", "small"), "count"), 2),
    ("filter_material", chain("scene", ("filter_material", "rubber"), "count"), 2),
    ("filter_shape", chain("scene", ("filter_shape", "cylinder"), "count"), 1),
    (
        "unique/query_shape",
        chain("scene", ("filter_color", "blue"), "unique", "query_shape"),
        "cube",
    ),
    ("query_size", chain("scene", ("filter_shape", "cylinder"), "unique", "query_size"), "large"),
    ("query_color", chain("scene", ("filter_shape", "cylinder"), "unique", "query_color"), "green"),
    (
        "query_material",
        chain("scene", ("filter_shape", "sphere"), "unique", "query_material"),
        "rubber",
    ),
    (
        "relate right",
        chain(
            "scene",
            ("filter_color", "blue"),
            "unique",
            ("relate", "right"),
            "unique",
            "query_shape",
        ),
        "sphere",
    ),
    (
        "relate left",
        chain("scene", ("filter_shape", "sphere"), "unique", ("relate", "left"), "count"),
        3,
    ),
    (
        "relate behind",
        chain("scene", ("filter_shape", "cylinder"), "unique", ("relate", "behind"), "count"),
        3,
    ),
    (
        "relate front",
        chain(
            "scene",
            ("filter_color", "blue"),
            "unique",
            ("relate", "front"),
            ("filter_material", "metal"),
            "count",
        ),
        2,
    ),
    ("exist yes", chain("scene", ("filter_color", "green"), "exist"), "yes"),
    ("exist no", chain("scene", ("filter_color", "yellow"), "exist"), "no"),
    (
        "exist after relate",
        chain("scene", ("filter_shape", "cylinder"), "unique", ("relate", "front"), "exist"),
        "no",
    ),
    (
        "same_color",
        chain(
            "scene",
            *[("filter_color", "red"), ("filter_shape", "cube")],
            "unique",
            "same_color",
            "unique",
            "query_shape",
        ),
        "sphere",
    ),
    (
        "same_size",
        chain("scene", ("filter_color", "green"), "unique", "same_size", "unique", "query_color"),
        "red",
    ),
    (
        "same_material",
        chain(
            "scene", ("filter_shape", "sphere"), "unique", "same_material", "unique", "query_color"
        ),
        "blue",
    ),
    ("same_shape", chain("scene", ("filter_color", "blue"), "unique", "same_shape", "count"), 1),
    (
        "union",
        tree(
            *count_of(("filter_color", "blue")),
            ("scene", []),
            ("filter_color", [2], "green"),
            ("union", [1, 3]),
            ("count", [4]),
        ),
        2,
    ),
    (
        "intersect",
        tree(
            *count_of(("filter_color", "red")),
            ("scene", []),
            ("filter_material", [2], "metal"),
            ("intersect", [1, 3]),
            ("count", [4]),
        ),
        1,
    ),
    ("equal_color yes", two_objects(RED_CUBE, SPHERE, "equal_color"), "yes"),
    ("equal_color no", two_objects(BLUE, SPHERE, "equal_color"), "no"),
    ("equal_size", two_objects(SPHERE, BLUE, "equal_size"), "yes"),
    ("equal_material", two_objects(RED_CUBE, BLUE, "equal_material"), "no"),
    ("equal_shape", two_objects(RED_CUBE, BLUE, "equal_shape"), "yes"),
    ("equal_object no", two_objects(RED_CUBE, BLUE, "equal_object"), "no"),
    (
        "equal_object yes",
        two_objects(BLUE, [("filter_size", "small"), ("filter_shape", "cube")], "equal_object"),
        "yes",
    ),
    (
        "equal_integer",
        compare("equal_integer", [("filter_color", "red")], [("filter_shape", "cube")]),
        "yes",
    ),
    ("less_than", compare("less_than", [("filter_material", "metal")], []), "yes"),
    ("greater_than", compare("greater_than", [("filter_material", "metal")], []), "no"),
    # CLEVR's template macros: "" (or "thing" for a shape) filters nothing
    ("filter", tree(("scene", []), ("filter", [0], "", "red", "", "thing"), ("count", [1])), 2),
    ("filter_count", tree(("scene", []), ("filter_count", [0], "small", "", "rubber", "")), 2),
    ("filter_exist", tree(("scene", []), ("filter_exist", [0], "large", "blue", "", "")), "no"),
    (
        "filter_unique",
        tree(("scene", []), ("filter_unique", [0], "", "", "", "sphere"), ("query_color", [1])),
        "red",
    ),
    (
        "relate_filter",
        tree(
            ("scene", []),
            ("filter_unique", [0], "", "", "", "cylinder"),
            ("relate_filter", [1], "behind", "small", "", "", ""),
            ("count", [2]),
        ),
        2,
    ),
    (
        "relate_filter_count",
        tree(
            ("scene", []),
            ("filter_unique", [0], "", "blue", "", ""),
            ("relate_filter_count", [1], "front", "", "red", "", ""),
            ("greater_than", [2, 2]),
        ),
        "no",
    ),
    (
        "relate_filter_exist",
        tree(
            ("scene", []),
            ("filter_unique", [0], "", "blue", "", ""),
            ("relate_filter_exist", [1], "right", "", "", "", "sphere"),
        ),
        "yes",
    ),
    (
        "relate_filter_unique",
        tree(
            ("scene", []),
            ("filter_unique", [0], "", "blue", "", ""),
            ("relate_filter_unique", [1], "front", "", "green", "", ""),
            ("query_shape", [2]),
        ),
        "cylinder",
    ),
]


@pytest.mark.parametrize("name,program,answer", HAND_CHECKED, ids=[h[0] for h in HAND_CHECKED])
def test_executor_on_hand_checked_scene(name: str, program: list, answer: Any) -> None:
    assert execute(program, tiny_scene()) == answer


def test_hand_checked_programs_cover_every_function() -> None:
    used = {n["function"] for _, program, _ in HAND_CHECKED for n in program}
    assert used == set(FUNCTIONS)


def test_tiny_scene_relationships_follow_from_coordinates() -> None:
    scene = tiny_scene()
    assert compute_relationships(scene["objects"], scene["directions"]) == TINY_RELATIONSHIPS


def test_relate_and_same_exclude_the_object_itself() -> None:
    scene = tiny_scene()
    scene["relationships"]["behind"][3] = [0, 1, 2, 3]  # a scene that lists the object itself
    behind = chain("scene", ("filter_shape", "cylinder"), "unique", ("relate", "behind"), "count")
    assert execute(behind, scene) == 3
    same = chain("scene", ("filter_color", "blue"), "unique", "same_color", "count")
    assert execute(same, scene) == 0


def test_numpy_indices_from_a_policy_are_node_indices() -> None:
    program = chain("scene", ("filter_color", "red"), "count")
    program[2]["inputs"] = [np.int64(1)]
    assert execute(program, tiny_scene()) == 2


def test_unique_fails_unless_exactly_one_object() -> None:
    for colour, n in (("red", 2), ("yellow", 0)):
        got = execute(
            chain("scene", ("filter_color", colour), "unique", "query_shape"), tiny_scene()
        )
        assert isinstance(got, ExecutionError)
        assert (got.kind, got.node, got.reason) == (FAILED, 2, f"unique() of {n} objects")


def test_step_outputs_and_both_node_styles() -> None:
    program = chain("scene", ("filter_color", "blue"), "unique", ("relate", "right"), "exist")
    generator_style = [
        {"type": n["function"], "inputs": n["inputs"], "side_inputs": n["value_inputs"]}
        for n in program
    ]
    for p in (
        program,
        generator_style,
        [
            Node(
                **{
                    "function": n["function"],
                    "inputs": tuple(n["inputs"]),
                    "value_inputs": tuple(n["value_inputs"]),
                }
            )
            for n in program
        ],
    ):
        trace = execute_steps(p, tiny_scene())
        assert trace.outputs == [[0, 1, 2, 3], [2], 2, [1], True]
        assert trace.answer == "yes"


INVALID = [
    ("unknown function", [{"function": "scene"}, {"function": "filter_weight", "inputs": [0]}], 1),
    ("wrong input type", chain("scene", "query_color"), 1),
    ("input not earlier", [{"function": "scene", "inputs": [0]}], 0),
    ("negative input", [{"function": "scene"}, {"function": "count", "inputs": [-1]}], 1),
    ("too many inputs", [{"function": "scene"}, {"function": "count", "inputs": [0, 0]}], 1),
    ("missing value", chain("scene", "filter_color", "count"), 1),
    ("unknown value", chain("scene", ("filter_color", "pink"), "count"), 1),
    ("value of wrong type", chain("scene", ("filter_color", "cube"), "count"), 1),
    ("value where none is taken", chain("scene", ("count", "red")), 1),
    ("no function key", [{"inputs": []}], 0),
    ("styles disagree", [{"function": "scene", "type": "count"}], 0),
    ("node not an object", ["scene"], 0),
    ("inputs not ints", [{"function": "scene"}, {"function": "count", "inputs": ["0"]}], 1),
    ("bool input", [{"function": "scene"}, {"function": "count", "inputs": [False]}], 1),
    ("ends in a set", chain("scene", ("filter_color", "red")), None),
    ("ends in an object", chain("scene", ("filter_color", "blue"), "unique"), None),
    ("empty", [], None),
    ("macro: too few values", tree(("scene", []), ("filter_count", [0], "small")), 1),
    (
        "macro: empty relation",
        tree(
            ("scene", []),
            ("filter_unique", [0], "", "", "", "cube"),
            ("relate_filter_exist", [1], "", "", "", "", ""),
        ),
        2,
    ),
    ("macro: wrong value", tree(("scene", []), ("filter_exist", [0], "red", "", "", "")), 1),
    ("not a list", {"function": "scene"}, None),
    ("a string", "scene count", None),
]


@pytest.mark.parametrize("name,program,node", INVALID, ids=[i[0] for i in INVALID])
def test_invalid_programs_give_an_error_value(name: str, program: Any, node: int | None) -> None:
    got = execute(program, tiny_scene())
    assert isinstance(got, ExecutionError) and got.kind == INVALID_PROGRAM
    assert got.node == node, got


def _mutate_scene(how: str) -> Any:
    s = tiny_scene()
    if how == "no objects key":
        del s["objects"]
    elif how == "object without colour":
        del s["objects"][1]["color"]
    elif how == "relation missing":
        del s["relationships"]["left"]
    elif how == "index out of range":
        s["relationships"]["left"][0] = [9]
    elif how == "too few lists":
        s["relationships"]["front"].pop()
    elif how == "not a dict":
        s = [s]
    return s


@pytest.mark.parametrize(
    "how",
    [
        "no objects key",
        "object without colour",
        "relation missing",
        "index out of range",
        "too few lists",
        "not a dict",
    ],
)
def test_malformed_scenes_give_an_error_value(how: str) -> None:
    got = execute(chain("scene", "count"), _mutate_scene(how))
    assert isinstance(got, ExecutionError) and got.kind == INVALID_SCENE


# -- the real data ---------------------------------------------------------------------------
@needs_data
def test_catalog_matches_metadata_json() -> None:
    meta = json.loads((DATA / "metadata.json").read_text())
    for t, values in VALUE_TYPES.items():
        assert tuple(meta["types"][t]) == values
    assert {f["name"] for f in meta["functions"]} == set(FUNCTIONS)
    for f in meta["functions"]:
        ours = FUNCTIONS[f["name"]]
        assert (tuple(f["inputs"]), f["output"]) == (ours.inputs, ours.output), f["name"]
        if f.get("template_only"):
            assert tuple(f["side_inputs"]) == ours.macro_values, f["name"]
        else:
            assert f.get("side_inputs", [None])[0] == ours.value_type, f["name"]


@pytest.fixture(scope="module")
def real_scenes() -> list[dict[str, Any]]:
    assert DATA is not None
    scenes = read_scenes(DATA / "CLEVR_train_scenes_1000.json")
    assert [s["image_index"] for s in scenes] == list(range(len(scenes)))
    return scenes


@needs_data
def test_relationships_of_real_scenes_follow_from_coordinates(real_scenes: list) -> None:
    assert len(real_scenes) == 1000
    for s in real_scenes:
        assert compute_relationships(s["objects"], s["directions"]) == s["relationships"]


@needs_data
def test_executor_reproduces_every_real_question(real_scenes: list, record_property) -> None:
    """Every real question's answer and every step's `_output`. The multi-scene files dropped
    some filter values (the `_output`s were computed with them), so programs are run twice: as
    written, where exactly the programs with a dropped value fail (as invalid programs at that
    node), and with the values restored by the reader, where all match."""
    files = sorted((DATA / "questions_train").glob("*.json"))
    as_written = [q for f in files for q in read_questions(f)]
    restored = [q for f in files for q in read_questions(f, restore_dropped_values=True)]
    assert len(as_written) == len(restored) == 565
    matched_as_written = 0
    for q in as_written:
        trace = execute_steps(q.program, real_scenes[q.image_index])
        dropped = [
            i
            for i, n in enumerate(q.program)
            if n.function.startswith("filter_") and not n.value_inputs
        ]
        if dropped:
            assert isinstance(trace.answer, ExecutionError) and trace.answer.node == dropped[0]
        else:
            assert (trace.answer, trace.outputs) == (q.answer, q.outputs), q.question
            matched_as_written += 1
    matched = 0
    for q in restored:
        trace = execute_steps(q.program, real_scenes[q.image_index])
        assert trace.answer == q.answer, (q.question, trace.answer)
        assert trace.outputs == q.outputs, q.question
        matched += 1
    record_property("real_questions", len(restored))
    record_property("matched_as_written", matched_as_written)
    record_property("matched_restored", matched)
    assert matched_as_written == 465 and matched == 565
    assert sum(len(q.restored_nodes) for q in restored) == 110


@needs_data
def test_real_questions_read_into_one_question_per_scene() -> None:
    qs = read_questions(DATA / "questions_train" / "CLEVR_train_1_zero_hop.json")
    raw = json.loads((DATA / "questions_train" / "CLEVR_train_1_zero_hop.json").read_text())
    first = raw["questions"][0]
    assert [q.image_index for q in qs[:5]] == first["image_indices"]
    assert [q.answer for q in qs[:5]] == first["answers"]
    assert {q.question for q in qs[:5]} == {first["question"]}
    assert qs[0].template_filename == "1_zero_hop.json"


@needs_data
def test_generator_asks_over_real_scenes(real_scenes: list) -> None:
    qs = generate_questions(real_scenes[:40], seed=3)
    assert len(qs) >= 350
    for q in qs:
        assert execute(q.program, real_scenes[q.image_index]) == q.answer


# -- readers ---------------------------------------------------------------------------------
OFFICIAL = {
    "info": {"split": "val", "version": "1.0"},
    "questions": [
        {
            "image_index": 0,
            "split": "val",
            "image_filename": "CLEVR_val_000000.png",
            "question_index": 0,
            "question_family_index": 39,
            "question": "Are there any other things that are the same shape as the big metallic object?",
            "answer": "no",
            "program": [
                {"inputs": [], "function": "scene", "value_inputs": []},
                {"inputs": [0], "function": "filter_size", "value_inputs": ["large"]},
                {"inputs": [1], "function": "filter_material", "value_inputs": ["metal"]},
                {"inputs": [2], "function": "unique", "value_inputs": []},
                {"inputs": [3], "function": "same_shape", "value_inputs": []},
                {"inputs": [4], "function": "exist", "value_inputs": []},
            ],
        },
        {
            "image_index": 0,
            "question": "How many red things are there?",
            "answer": "2",
            "program": [
                {"type": "scene", "inputs": []},
                {"type": "filter_color", "inputs": [0], "side_inputs": ["red"]},
                {"type": "count", "inputs": [1]},
            ],
        },
        {"image_index": 1, "question": "What colour is it?"},
    ],
}


def test_reads_clevr_official_format(tmp_path: Path) -> None:
    path = tmp_path / "q.json"
    path.write_text(json.dumps(OFFICIAL))
    a, b, c = read_questions(path)
    assert (a.answer, a.question_family_index, a.image_filename) == (
        "no",
        39,
        "CLEVR_val_000000.png",
    )
    assert [n.function for n in a.program] == [
        "scene",
        "filter_size",
        "filter_material",
        "unique",
        "same_shape",
        "exist",
    ]
    two = execute(a.program, tiny_scene())  # objects 0 and 3 are both large and metal
    assert isinstance(two, ExecutionError) and (two.kind, two.node) == (FAILED, 3)
    scene = tiny_scene()
    scene["objects"][3]["material"] = "rubber"
    assert execute(a.program, scene) == "yes"  # the large metal cube; object 2 is a cube too
    assert b.answer == 2 and b.program[1] == Node("filter_color", (0,), ("red",))
    assert execute(b.program, tiny_scene()) == b.answer
    assert c.answer is None and c.program is None


BAD_QUESTION_FILES = [
    ("not json", "{", ""),
    ("no questions key", {"info": {}}, ""),
    ("questions not a list", {"questions": {}}, "questions"),
    ("question not an object", {"questions": [3]}, "questions[0]"),
    ("no question text", {"questions": [{"image_index": 0}]}, "questions[0].question"),
    ("no image index", {"questions": [{"question": "?"}]}, "questions[0].image_index"),
    (
        "program not a list",
        {"questions": [{"question": "?", "image_index": 0, "program": "scene"}]},
        "questions[0].program",
    ),
    (
        "node without function",
        {"questions": [{"question": "?", "image_index": 0, "program": [{"inputs": []}]}]},
        "questions[0].program[0].function",
    ),
    (
        "forward input",
        {
            "questions": [
                {
                    "question": "?",
                    "image_index": 0,
                    "program": [{"function": "scene", "inputs": [1]}],
                }
            ]
        },
        "questions[0].program[0].inputs",
    ),
    (
        "value not a word",
        {
            "questions": [
                {
                    "question": "?",
                    "image_index": 0,
                    "program": [{"function": "scene", "inputs": [], "value_inputs": [1]}],
                }
            ]
        },
        "questions[0].program[0].value_inputs",
    ),
    (
        "answer a list",
        {"questions": [{"question": "?", "image_index": 0, "answer": [1]}]},
        "questions[0].answer",
    ),
    (
        "family a string",
        {"questions": [{"question": "?", "image_index": 0, "question_family_index": "3"}]},
        "questions[0].question_family_index",
    ),
    (
        "answers too short",
        {"questions": [{"question": "?", "image_indices": [1, 2], "answers": [True]}]},
        "questions[0].answers",
    ),
    (
        "indices not ints",
        {"questions": [{"question": "?", "image_indices": ["1"]}]},
        "questions[0].image_indices",
    ),
    (
        "one program bad",
        {"questions": [{"question": "?", "image_indices": [1], "program": [[{"type": 5}]]}]},
        "questions[0].program[0][0].function",
    ),
]


@pytest.mark.parametrize(
    "name,content,where", BAD_QUESTION_FILES, ids=[b[0] for b in BAD_QUESTION_FILES]
)
def test_malformed_question_files_name_file_entry_and_key(
    tmp_path: Path, name: str, content: Any, where: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    with pytest.raises(ClevrFormatError) as err:
        read_questions(path)
    assert err.value.path == str(path) and err.value.where == where
    assert str(path) in str(err.value)


def test_missing_file_is_a_format_error(tmp_path: Path) -> None:
    with pytest.raises(ClevrFormatError, match="no such file"):
        read_scenes(tmp_path / "absent.json")


def test_malformed_scene_files_name_the_scene(tmp_path: Path) -> None:
    scene = tiny_scene()
    del scene["objects"][2]["shape"]
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"scenes": [tiny_scene(), scene]}))
    with pytest.raises(ClevrFormatError, match=r"scenes\[1\].*objects\[2\] has no 'shape'"):
        read_scenes(path)
    bad = tiny_scene()
    bad["objects"][0]["3d_coords"] = [0, 0]
    path.write_text(json.dumps({"scenes": [bad]}))
    with pytest.raises(ClevrFormatError, match=r"scenes\[0\]\.objects\[0\]\.3d_coords"):
        read_scenes(path)


# -- generators ------------------------------------------------------------------------------
def test_scene_generator_is_seeded_and_clevr_like() -> None:
    a, b = generate_scenes(30, seed=5), generate_scenes(30, seed=5)
    assert a == b and a != generate_scenes(30, seed=6)
    assert generate_scenes(3, seed=5) == a[:3]
    cfg = SceneConfig()
    for s in a:
        assert check_scene(s) is None
        assert cfg.min_objects <= len(s["objects"]) <= cfg.max_objects
        assert s["relationships"] == compute_relationships(s["objects"], s["directions"])
        for o in s["objects"]:
            for attr, (_, values) in ATTRIBUTES.items():
                assert o[attr] in values
            x, y, z = o["3d_coords"]
            assert -3 <= x <= 3 and -3 <= y <= 3 and z == {"large": 0.7, "small": 0.35}[o["size"]]
        for i, o in enumerate(s["objects"]):  # every pair is clearly ordered along each axis
            for j, p in enumerate(s["objects"]):
                if i == j:
                    continue
                for rel in ("right", "behind"):
                    d = s["directions"][rel]
                    m = sum((p["3d_coords"][k] - o["3d_coords"][k]) * d[k] for k in range(2))
                    assert abs(m) >= cfg.margin - 1e-9


@pytest.fixture(scope="module")
def generated() -> tuple[list, list]:
    scenes = generate_scenes(120, seed=11)
    return scenes, generate_questions(scenes, seed=11)


def test_every_generated_question_executes_to_its_answer(generated: tuple) -> None:
    scenes, qs = generated
    assert len(qs) >= 0.95 * 120 * QuestionConfig().questions_per_scene
    for q in qs:
        assert execute(q.program, scenes[q.image_index]) == q.answer, q.question


def test_generated_questions_cover_types_structures_and_functions(generated: tuple) -> None:
    _, qs = generated
    families = collections.Counter(q.question_family_index for q in qs)
    assert set(families) == {t.family for t in TEMPLATES}
    assert {template_of(q).question_type for q in qs} == set(QUESTION_TYPES)
    assert {template_of(q).structure for q in qs} == {"chain", "tree"}
    used = {n.function for q in qs for n in q.program}
    assert {
        "union",
        "intersect",
        "relate",
        "same_color",
        "same_size",
        "same_material",
        "same_shape",
        "equal_integer",
        "less_than",
        "greater_than",
        "count",
        "exist",
    } <= used


def test_generated_questions_are_well_posed_and_balanced(generated: tuple) -> None:
    scenes, qs = generated
    for q in qs:
        trace = execute_steps(q.program, scenes[q.image_index])
        for node, out in zip(q.program, trace.outputs):
            if node.function == "unique":
                assert isinstance(out, int)  # never ambiguous: exactly one object
        for node in q.program:
            if node.function.startswith("query_"):  # the queried object's own description
                i = q.program[node.inputs[0]].inputs[0]  # never gives the queried attribute
                while q.program[i].function.startswith("filter_"):
                    assert q.program[i].function != "filter_" + node.function[6:], q.question
                    i = q.program[i].inputs[0]
    for t in TEMPLATES:
        answers = collections.Counter(q.answer for q in qs if q.question_family_index == t.family)
        if t.question_type in ("exist", "compare_integer", "compare_attribute"):
            assert set(answers) == {"yes", "no"}
            assert abs(answers["yes"] - answers["no"]) <= 0.15 * sum(answers.values()) + 2, (
                t.name,
                answers,
            )
        elif t.question_type == "count":
            top = answers.most_common(2)
            assert top[0][1] <= 1.1 * top[1][1] + 1, (t.name, answers)


def test_question_generator_is_seeded() -> None:
    scenes = generate_scenes(10, seed=2)
    a = generate_questions(scenes, seed=4)
    assert [q.to_json() for q in a] == [q.to_json() for q in generate_questions(scenes, seed=4)]
    assert [q.question for q in a] != [q.question for q in generate_questions(scenes, seed=5)]
    only = generate_questions(
        scenes, seed=4, config=QuestionConfig(families=("compare_attr",), questions_per_scene=2)
    )
    assert only and {q.question_family_index for q in only} == {17}
    with pytest.raises(ValueError, match="unknown"):
        QuestionConfig(families=("nope",))


def test_generator_json_reader_round_trip(tmp_path: Path, generated: tuple) -> None:
    scenes, qs = generated
    write_scenes(tmp_path / "scenes.json", scenes, info={"split": "memrl"})
    write_questions(tmp_path / "questions.json", qs, info={"split": "memrl"})
    assert read_scenes(tmp_path / "scenes.json") == json.loads(json.dumps(scenes))
    back = read_questions(tmp_path / "questions.json")
    assert [q.to_json() for q in back] == [q.to_json() for q in qs]
    raw = json.loads((tmp_path / "questions.json").read_text())["questions"][0]
    assert set(raw["program"][0]) == {"function", "inputs", "value_inputs"}
    assert not list(tmp_path.glob(".*.tmp"))


# -- tokens ----------------------------------------------------------------------------------
def test_prefix_tokens_round_trip(generated: tuple) -> None:
    scenes, qs = generated
    vocab = program_vocab()
    for q in qs[:300]:
        tokens = program_to_prefix(q.program)
        assert vocab.decode(vocab.encode(tokens)) == tokens
        back = from_prefix(tokens)
        assert execute(back, scenes[q.image_index]) == q.answer
    words = question_vocab(q.question for q in qs)
    assert words.decode(words.encode(tokenize_question(qs[0].question))) == tokenize_question(
        qs[0].question
    )
    for bad in (
        ["count"],
        ["count", "scene", "scene"],
        ["filter_color[pink]", "scene"],
        ["relate", "scene"],
        [],
    ):
        assert isinstance(from_prefix(bad), ExecutionError)


# -- properties: nothing bad escapes as another exception ------------------------------------
FUNCTION_NAMES = sorted(FUNCTIONS)
WORDS = sorted({v for vals in VALUE_TYPES.values() for v in vals})
json_leaf = (
    st.none()
    | st.booleans()
    | st.integers(-3, 12)
    | st.text(max_size=4)
    | st.sampled_from(WORDS + FUNCTION_NAMES)
)
json_value = st.recursive(
    json_leaf,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                ["function", "type", "inputs", "value_inputs", "side_inputs", "objects", "x"]
            ),
            inner,
            max_size=3,
        )
    ),
    max_leaves=8,
)


@st.composite
def random_node(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 9)) == 0:
        return draw(json_value)
    key = draw(st.sampled_from(["function", "type"]))
    node: dict[str, Any] = {key: draw(st.sampled_from(FUNCTION_NAMES) | st.text(max_size=6))}
    node["inputs"] = draw(st.lists(st.integers(-1, 6), max_size=2))
    vkey = draw(st.sampled_from(["value_inputs", "side_inputs"]))
    node[vkey] = draw(st.lists(st.sampled_from(WORDS) | st.text(max_size=3), max_size=2))
    return node


def _check_result(result: Any) -> None:
    assert (
        isinstance(result, ExecutionError)
        or isinstance(result, str | int)
        and not isinstance(result, bool)
    )


SCENES = generate_scenes(4, seed=0)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(random_node(), max_size=7), st.integers(0, 3))
def test_random_programs_never_crash(program: list, scene: int) -> None:
    _check_result(execute(program, SCENES[scene]))
    trace = execute_steps(program, SCENES[scene])
    assert isinstance(trace.outputs, list)


MUTABLE_PROGRAMS = [q.program for q in generate_questions(generate_scenes(8, seed=1), seed=1)]


@st.composite
def mutated_program(draw: st.DrawFn) -> list:
    program: list[Any] = [n.to_json() for n in draw(st.sampled_from(MUTABLE_PROGRAMS))]
    for _ in range(draw(st.integers(1, 3))):
        if not program:
            break
        i = draw(st.integers(0, len(program) - 1))
        node = program[i]
        how = (
            draw(st.integers(0, 7)) if isinstance(node, dict) else draw(st.sampled_from([3, 4, 7]))
        )
        if how == 0:
            node["function"] = draw(st.sampled_from(FUNCTION_NAMES))
        elif how == 1:
            node["inputs"] = draw(st.lists(st.integers(-2, len(program) + 1), max_size=3))
        elif how == 2:
            node["value_inputs"] = draw(st.lists(st.sampled_from(WORDS), max_size=2))
        elif how == 3:
            del program[i]
        elif how == 4:
            program.insert(i, copy.deepcopy(node))
        elif how == 5:
            node["type"] = node.pop("function", None)
            node["side_inputs"] = node.pop("value_inputs", None)
        elif how == 6:
            node[draw(st.sampled_from(["function", "inputs", "value_inputs"]))] = draw(json_value)
        else:
            program[i] = draw(json_value)
    return program


@st.composite
def mutated_scene(draw: st.DrawFn) -> Any:
    scene: Any = copy.deepcopy(draw(st.sampled_from(SCENES)))
    for _ in range(draw(st.integers(0, 3))):
        if not isinstance(scene, dict):
            break
        how = draw(st.integers(0, 4))
        objects = scene.get("objects")
        rels = scene.get("relationships")
        if how == 0 and isinstance(objects, list) and objects:
            obj = objects[draw(st.integers(0, len(objects) - 1))]
            if isinstance(obj, dict):
                obj[draw(st.sampled_from(sorted(ATTRIBUTES)))] = draw(json_value)
        elif how == 1 and isinstance(rels, dict) and rels:
            rel = draw(st.sampled_from(sorted(rels)))
            lists = rels[rel]
            if isinstance(lists, list) and lists:
                lists[draw(st.integers(0, len(lists) - 1))] = draw(json_value)
            else:
                rels[rel] = draw(json_value)
        elif how == 2 and isinstance(objects, list) and objects:
            objects.pop()
        elif how == 3:
            scene[draw(st.sampled_from(["objects", "relationships"]))] = draw(json_value)
        elif how == 4:
            scene = draw(json_value)
    return scene


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_program(), mutated_scene())
def test_mutated_programs_and_scenes_never_crash(program: list, scene: Any) -> None:
    _check_result(execute(program, scene))


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_readers_give_only_format_errors(tmp_path: Path, data: st.DataObject) -> None:
    question = Question("How many?", 0, 3, MUTABLE_PROGRAMS[0]).to_json()
    multi = {
        "question": "Are there any?",
        "image_indices": [0, 1],
        "answers": [True, False],
        "program": [[n.to_json() | {"_output": []} for n in MUTABLE_PROGRAMS[1]]] * 2,
    }
    doc: Any = {"questions": [question, multi]}
    first_node = question["program"][0]
    for _ in range(data.draw(st.integers(1, 3))):
        target = data.draw(st.sampled_from([question, multi, first_node]))
        target[data.draw(st.sampled_from(sorted(target)))] = data.draw(json_value)
    if data.draw(st.booleans()):
        doc = data.draw(json_value)
    path = tmp_path / "q.json"
    path.write_text(json.dumps(doc))
    try:
        for q in read_questions(path, restore_dropped_values=data.draw(st.booleans())):
            if q.program is not None:
                _check_result(execute(q.program, SCENES[0]))
    except ClevrFormatError:
        pass
    scenes_doc = {"scenes": [data.draw(mutated_scene())]}
    path.write_text(json.dumps(scenes_doc))
    with contextlib.suppress(ClevrFormatError):
        assert isinstance(read_scenes(path), list)
