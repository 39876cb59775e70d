"""What `memrl sweep` varies: command-line values -> axes -> a Ray Tune search space.

A sweep argument is an ordinary dotted override (`learner.lr=3e-4`, the same in every trial) or
an axis:
- `key=[a,b,c]`: grid search over the items (every combination of all grid axes runs);
- `'key=choice(a,b,c)'`, `'key=uniform(lo,hi)'`, `'key=loguniform(lo,hi)'`,
  `'key=randint(lo,hi)'` (both ends included): random search, one draw per trial, with
  `--samples N` trials (a grid beside them is repeated N times, as in Ray Tune).
A key whose config field holds a list (e.g. `agent.hidden`) takes a list as its plain value, so
its grid is a list of lists: `agent.hidden=[[64],[128,128]]`.

Every value of every axis (both ends of a range) is checked against the config before Ray
starts: an unknown key, a wrong type or an unparsable list fails with the key and what is valid.
"""

from __future__ import annotations

import json
import math
import re
import types
import typing
from dataclasses import dataclass, fields
from typing import Any

import yaml

from rollout.config import (
    SECTIONS,
    ConfigError,
    apply_overrides,
    build_config,
    load_yaml_text,
    parse_override,
)

RANDOM_KINDS = ("choice", "uniform", "loguniform", "randint")
_CALL = re.compile(r"^\s*(" + "|".join(RANDOM_KINDS) + r")\s*\((.*)\)\s*$", re.DOTALL)
_LOOKS_LIKE_CALL = re.compile(r"^\s*([A-Za-z_]\w*)\s*\(.*\)\s*$", re.DOTALL)


@dataclass(frozen=True)
class Axis:
    """One swept key: `kind` is grid, choice, uniform, loguniform or randint; `values` the items
    (grid, choice) or the two ends (ranges)."""

    key: str
    kind: str
    values: tuple[Any, ...]
    text: str  # as the user wrote it, for messages

    def tune_domain(self) -> Any:
        from ray import tune

        if self.kind == "grid":
            return tune.grid_search(list(self.values))
        if self.kind == "choice":
            return tune.choice(list(self.values))
        lo, hi = self.values
        if self.kind == "uniform":
            return tune.uniform(lo, hi)
        if self.kind == "loguniform":
            return tune.loguniform(lo, hi)
        return tune.randint(lo, hi + 1)  # Tune's upper end is exclusive; ours is included

    @property
    def random(self) -> bool:
        return self.kind != "grid"


def as_override(key: str, value: Any) -> str:
    """`key=value` that `parse_override` reads back as `value` (JSON is YAML's flow style)."""
    return f"{key}={json.dumps(value)}"


def _field_type(data: dict[str, Any], path: list[str]) -> Any:
    """The annotation of the config field a dotted key names, or None (a free-form key such as
    env.kwargs.size, or an unknown one: building the config reports it)."""
    if len(path) != 2:
        return None
    section, key = path
    cls = SECTIONS.get(section)
    if section == "agent":
        from agents import AGENTS, agent_config_class

        name = (
            (data.get("agent") or {}).get("name") if isinstance(data.get("agent"), dict) else None
        )
        cls = agent_config_class(name) if name in AGENTS else None
    if cls is None or key not in {f.name for f in fields(cls)}:
        return None
    return typing.get_type_hints(cls)[key]


def _holds_list(tp: Any) -> bool:
    origin = typing.get_origin(tp)
    if origin in (list, tuple):
        return True
    if origin in (types.UnionType, typing.Union):
        return any(_holds_list(a) for a in typing.get_args(tp))
    return False


def _items(text: str, where: str) -> list[Any]:
    """The comma-separated YAML scalars inside choice(...) and the ranges."""
    try:
        value = load_yaml_text(f"[{text}]")
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"{where}: cannot read the values ({str(exc).splitlines()[0]})."
        ) from None
    return [_number(v) for v in value]


def _number(value: Any) -> Any:
    """YAML reads 3e-4 as a string; accept the usual float spelling, as overrides do."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def parse_axis(text: str, data: dict[str, Any]) -> Axis | None:
    """The axis `text` names, or None for a plain override (`data`: the config so far, to tell a
    list-valued field's list from a grid)."""
    key, sep, raw = text.partition("=")
    path, _ = parse_override(text)  # a malformed key fails here with the usual message
    where = f"sweep value '{text}'"
    call = _CALL.match(raw)
    if call:
        kind, inner = call.group(1), call.group(2)
        values = _items(inner, where)
        if kind == "choice":
            if not values:
                raise ConfigError(f"{where}: choice(...) needs at least one value.")
            return Axis(key, kind, tuple(values), text)
        if len(values) != 2 or not all(_is_real(v) for v in values):
            raise ConfigError(f"{where}: {kind}(lo, hi) takes two numbers, e.g. {kind}(1, 10).")
        lo, hi = values
        if kind == "randint":
            if not all(float(v).is_integer() for v in values):
                raise ConfigError(f"{where}: randint(lo, hi) takes two integers.")
            lo, hi = int(lo), int(hi)
        else:
            lo, hi = float(lo), float(hi)
        if not lo < hi:
            raise ConfigError(f"{where}: the range needs lo < hi, got {lo:g} and {hi:g}.")
        if kind == "loguniform" and lo <= 0:
            raise ConfigError(f"{where}: loguniform(lo, hi) needs 0 < lo.")
        return Axis(key, kind, (lo, hi), text)
    other = _LOOKS_LIKE_CALL.match(raw)
    if other and not raw.lstrip().startswith(("[", "{", '"', "'")):
        raise ConfigError(
            f"{where}: unknown sampler '{other.group(1)}'; use [a,b,c] (grid), "
            f"{', '.join(f'{k}(...)' for k in RANDOM_KINDS)}."
        )
    if not raw.lstrip().startswith("["):
        return None
    try:
        value = load_yaml_text(raw)
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"{where}: cannot read the list ({str(exc).splitlines()[0]}); write "
            "key=[a,b,c] with the items separated by commas."
        ) from None
    if not isinstance(value, list):
        raise ConfigError(f"{where}: cannot read the list; write key=[a,b,c].")
    if _holds_list(_field_type(data, path)) and not all(isinstance(v, list) for v in value):
        return None  # the field's own value, the same in every trial
    if not value:
        raise ConfigError(f"{where}: the list is empty; give at least one value.")
    return Axis(key, "grid", tuple(_number(v) for v in value), text)


def _is_real(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@dataclass
class SweepSpec:
    """A parsed `memrl sweep` command: the config's data with the fixed overrides applied, the
    fixed overrides as given, and the axes."""

    data: dict[str, Any]
    source: str
    fixed: list[str]
    axes: list[Axis]

    def param_space(self) -> dict[str, Any]:
        return {axis.key: axis.tune_domain() for axis in self.axes}

    @property
    def random(self) -> bool:
        return any(axis.random for axis in self.axes)

    def grid_size(self) -> int:
        return math.prod(len(a.values) for a in self.axes if a.kind == "grid")

    def trial_data(self, values: dict[str, Any], extra: typing.Sequence[str] = ()) -> dict:
        """The config data of one trial: the fixed overrides, then its axis values."""
        overrides = [as_override(k, v) for k, v in values.items()]
        return apply_overrides(self.data, [*overrides, *extra])


def parse_sweep(data: dict[str, Any], source: str, arguments: typing.Sequence[str]) -> SweepSpec:
    """Split `arguments` into fixed overrides and axes, and check every value against the config
    (`data`: the config file's mapping). Raises ConfigError naming the argument."""
    fixed: list[str] = []
    raw_axes: list[str] = []
    seen: dict[str, str] = {}
    for text in arguments:
        key = text.partition("=")[0].strip()
        if key in seen:
            raise ConfigError(f"'{key}' is given twice ('{seen[key]}' and '{text}'); keep one.")
        seen[key] = text
        (raw_axes if _maybe_axis(text) else fixed).append(text)
    base = apply_overrides(data, fixed)
    build_config(base, source)  # the fixed part must be valid on its own
    axes: list[Axis] = []
    for text in raw_axes:
        axis = parse_axis(text, base)
        if axis is None:  # a list value for a list field: a fixed override after all
            fixed.append(text)
            base = apply_overrides(base, [text])
            build_config(base, source)
        else:
            axes.append(axis)
    for axis in axes:
        for value in axis.values:
            try:
                build_config(apply_overrides(base, [as_override(axis.key, value)]), source)
            except ConfigError as exc:
                message = str(exc).removeprefix(f"{source}: ")
                hint = ""
                if axis.kind == "uniform" and "must be int" in message:
                    hint = f" Use randint(lo, hi) for the integer key '{axis.key}'."
                raise ConfigError(
                    f"sweep value '{axis.text}' (value {value!r}) in {source}: {message}{hint}"
                ) from None
    return SweepSpec(base, source, fixed, axes)


def _maybe_axis(text: str) -> bool:
    raw = text.partition("=")[2].lstrip()
    return raw.startswith("[") or bool(_LOOKS_LIKE_CALL.match(raw))
