"""CLEVR's vocabulary and function catalog, as in the official generator's metadata.json.

Kept as Python constants (not read from a file) so the executor, the readers and the
generators agree on one catalog with no data folder present. `tests/test_clevr.py` checks these
against ../shared/data/clevr/metadata.json where it exists.
"""

from __future__ import annotations

from dataclasses import dataclass

# Attribute name (the scene object's key) -> CLEVR's type name and its values, in metadata order.
ATTRIBUTES: dict[str, tuple[str, tuple[str, ...]]] = {
    "size": ("Size", ("small", "large")),
    "color": ("Color", ("gray", "red", "blue", "green", "brown", "purple", "cyan", "yellow")),
    "material": ("Material", ("rubber", "metal")),
    "shape": ("Shape", ("cube", "sphere", "cylinder")),
}
RELATIONS: tuple[str, ...] = ("left", "right", "behind", "front")

# CLEVR type name -> its values (for value inputs and attribute answers).
VALUE_TYPES: dict[str, tuple[str, ...]] = {t: vals for t, vals in ATTRIBUTES.values()}
VALUE_TYPES["Relation"] = RELATIONS
ATTRIBUTE_OF_TYPE: dict[str, str] = {t: name for name, (t, _) in ATTRIBUTES.items()}

OBJECT_SET = "ObjectSet"
OBJECT = "Object"
INTEGER = "Integer"
BOOL = "Bool"
ANSWER_TYPES = frozenset({INTEGER, BOOL, *(t for t, _ in ATTRIBUTES.values())})


@dataclass(frozen=True)
class Function:
    """One executable function: its input types, the type of its one value input (or None), and
    its output type."""

    name: str
    inputs: tuple[str, ...]
    value_type: str | None
    output: str
    # Template macros (metadata.json's `template_only`): the types of their several value
    # inputs, each of which may be "" (no filter on that attribute; "thing" too for Shape).
    macro_values: tuple[str, ...] = ()


def _catalog() -> dict[str, Function]:
    fns = [Function("scene", (), None, OBJECT_SET)]
    for attr, (typ, _) in ATTRIBUTES.items():
        fns.append(Function(f"filter_{attr}", (OBJECT_SET,), typ, OBJECT_SET))
        fns.append(Function(f"query_{attr}", (OBJECT,), None, typ))
        fns.append(Function(f"same_{attr}", (OBJECT,), None, OBJECT_SET))
        fns.append(Function(f"equal_{attr}", (typ, typ), None, BOOL))
    fns += [
        Function("unique", (OBJECT_SET,), None, OBJECT),
        Function("relate", (OBJECT,), "Relation", OBJECT_SET),
        Function("union", (OBJECT_SET, OBJECT_SET), None, OBJECT_SET),
        Function("intersect", (OBJECT_SET, OBJECT_SET), None, OBJECT_SET),
        Function("count", (OBJECT_SET,), None, INTEGER),
        Function("exist", (OBJECT_SET,), None, BOOL),
        Function("equal_integer", (INTEGER, INTEGER), None, BOOL),
        Function("less_than", (INTEGER, INTEGER), None, BOOL),
        Function("greater_than", (INTEGER, INTEGER), None, BOOL),
        Function("equal_object", (OBJECT, OBJECT), None, BOOL),
    ]
    attrs = tuple(t for t, _ in ATTRIBUTES.values())  # Size, Color, Material, Shape
    for prefix, inp, values in (("", OBJECT_SET, attrs), ("relate_", OBJECT, ("Relation", *attrs))):
        for suffix, out in (
            ("", OBJECT_SET),
            ("_unique", OBJECT),
            ("_count", INTEGER),
            ("_exist", BOOL),
        ):
            fns.append(Function(f"{prefix}filter{suffix}", (inp,), None, out, values))
    return {f.name: f for f in fns}


# The whole function catalog of metadata.json. Its `template_only` macros (filter_unique,
# relate_filter_count, ...) never appear in CLEVR's released programs but execute all the same.
FUNCTIONS: dict[str, Function] = _catalog()
PRIMITIVES: dict[str, Function] = {n: f for n, f in FUNCTIONS.items() if not f.macro_values}

# Words a question may use for a value (CLEVR's synonyms.json, singular forms).
SYNONYMS: dict[str, tuple[str, ...]] = {
    "large": ("large", "big"),
    "small": ("small", "tiny"),
    "metal": ("metal", "metallic", "shiny"),
    "rubber": ("rubber", "matte"),
    "sphere": ("sphere", "ball"),
    "cube": ("cube", "block"),
    "cylinder": ("cylinder",),
}
