"""Experiment configs: YAML sections -> typed, validated dataclasses.

Loading is strict (DESIGN.md, style rule 9): an unknown key, a wrong type or a bad choice is a
`ConfigError` that names the file, the dotted key, and the valid keys or choices, with the closest
match suggested. YAML is read with a strict `yaml.SafeLoader` only: a key given twice in one
mapping and YAML aliases (`&a`/`*a`, which let a few lines expand into gigabytes) are errors.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import math
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from agents import AGENTS, agent_config_class


class ConfigError(ValueError):
    """A config the user can fix: the message says which file, which key and what is valid."""


class StrictLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses duplicate keys (the last one would win silently) and aliases
    (an alias bomb expands a few hundred bytes into gigabytes)."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None,
                None,
                f"YAML aliases (*{event.anchor}) are not allowed in memrl configs; write the "
                "value out",
                event.start_mark,
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:  # an unhashable key: SafeLoader reports it below
                continue
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping",
                    node.start_mark,
                    f"the key '{key}' is given twice (the last one would win silently); keep one",
                    key_node.start_mark,
                )
        return super().construct_mapping(node, deep=deep)


MAX_ERROR_CHARS = 600


def load_yaml_text(text: str) -> Any:
    """Parse YAML text with StrictLoader (raises yaml.YAMLError)."""
    return yaml.load(text, Loader=StrictLoader)  # noqa: S506 - StrictLoader is a SafeLoader


def _short(text: str) -> str:
    return text if len(text) <= MAX_ERROR_CHARS else text[:MAX_ERROR_CHARS] + " [...]"


@dataclass
class EnvConfig:
    """Which environment the workers step (any spec `envs.make` resolves)."""

    id: str = "CartPole-v1"
    kwargs: dict[str, Any] = field(default_factory=dict)
    # Run Gymnasium's env checker on a plug-in env before training (envs.check); false skips it.
    check: bool = True


@dataclass
class LearnerConfig:
    """Optimisation, shared by every agent (agents.Learner)."""

    optimizer: Literal["adam", "rmsprop", "sgd"] = "adam"
    lr: float = 1e-3
    # 'cosine' or 'linear' decay lr to lr * lr_end_ratio over lr_decay_updates updates, then hold
    # it there; a pure function of the update count, so a resumed run continues the schedule.
    lr_schedule: Literal["constant", "cosine", "linear"] = "constant"
    lr_decay_updates: int = 0
    lr_end_ratio: float = 0.1
    eps: float = 1e-8
    # Adam's decay of its squared-gradient average (torch's betas[1]); beta1 is 0.9
    beta2: float = 0.999
    momentum: float = 0.0
    alpha: float = 0.95
    # RMSProp: True is the centered variant of Nature DQN (eps inside the root; agents/learner.py)
    centered: bool = False
    weight_decay: float = 0.0
    grad_clip: float = 10.0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # 0 = automatic: 1 for models under 1M parameters, else the cores the workers leave free.
    torch_threads: int = 0
    # bfloat16 convolutions on the learner (Nature CNN): 'auto' = where the hardware has native
    # bf16 (CUDA; CPUs with AVX512-BF16 or AMX), 'on', 'off'. Rollout workers act in float32.
    mixed_precision: Literal["auto", "on", "off"] = "auto"
    # the whole update (forward, backward, clip, Adam) replayed as one CUDA graph per batch shape:
    # 'auto' = on a CUDA learner for agents that allow it (NTM, LSTM) with adam and a constant lr
    # (9x faster NTM updates at batch 8 on an H200); 'on' insists, 'off' never
    cuda_graphs: Literal["auto", "on", "off"] = "auto"


@dataclass
class RolloutConfig:
    """Ray rollout workers. num_workers 0 runs the same worker class in the driver."""

    num_workers: int = 1
    envs_per_worker: int = 8
    # Env steps each worker collects per iteration (summed over its envs). Sequence agents (NTM,
    # LSTM) draw agent.batch_size whole sequences per iteration instead.
    steps_per_sample: int = 64
    # Sample the next batch while the learner trains on the current one (weights lag 1 update).
    overlap: bool = True
    # Send the workers new weights once the learner has made this many updates since the last
    # send (an update-free iteration, e.g. before DQN's learning_starts, sends nothing).
    weights_every: int = 1
    # Scheduling priority the workers' processes give up (Unix nice). Where workers share cores
    # with the learner, a multi-threaded learner then loses no time to preempted threads.
    worker_nice: int = 5
    # Atari: a worker steps its envs in two halves so the policy's inference on one half runs
    # while ale-py's threads step the other (stateless agents such as DQN).
    pipeline: bool = True
    # A dead worker is replaced (fresh actor, current weights) up to this many times per slot.
    max_worker_restarts: int = 3
    # Placement group strategy for the workers' one-CPU bundles ('none': Ray's default).
    placement: Literal["PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD", "none"] = "PACK"
    placement_timeout_s: float = 120.0  # wait this long for the cluster to fit the workers


@dataclass
class RunConfig:
    """Length, stopping, evaluation, logging and checkpointing of one run."""

    name: str = "run"
    seed: int = 0
    dir: str = "runs"
    total_env_steps: int = 100_000
    total_episodes: int = 0  # also stop after this many episodes / supervised sequences (0 = off)
    max_time_s: float = 0.0  # 0 = no limit
    eval_every_steps: int = 10_000  # 0 = only at the end
    eval_episodes: int = 20
    stop_return: float | None = None  # stop once the evaluation mean reaches this
    checkpoint_every_steps: int = 20_000
    keep_checkpoints: int = 3
    save_replay: bool = True
    log_every_s: float = 10.0


@dataclass
class ExperimentConfig:
    env: EnvConfig = field(default_factory=EnvConfig)
    agent: Any = None  # the chosen agent's Config dataclass; its `name` picks it
    learner: LearnerConfig = field(default_factory=LearnerConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    run: RunConfig = field(default_factory=RunConfig)


SECTIONS = {"env": EnvConfig, "learner": LearnerConfig, "rollout": RolloutConfig, "run": RunConfig}


def _closest(word: str, choices: typing.Iterable[str]) -> str:
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.5)
    return f" Did you mean '{match[0]}'?" if match else ""


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (types.UnionType, typing.Union):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is not None:
        return str(tp).replace("typing.", "")
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check `value` against the annotation `tp`; return it converted (int -> float, list -> tuple)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    bad = ConfigError(
        f"{where} must be {_type_name(tp)}, got {_short(repr(value))} ({type(value).__name__})."
    )
    if tp is Any:
        return value
    if origin is Literal:
        if isinstance(value, bool) and {"on", "off"} <= set(args):
            value = "on" if value else "off"  # YAML 1.1 reads a bare on/off as a bool
        if value not in args:
            raise ConfigError(
                f"{where} must be one of {', '.join(map(repr, args))}, got {_short(repr(value))}."
                + (_closest(value, map(str, args)) if isinstance(value, str) else "")
            )
        return value
    if origin in (types.UnionType, typing.Union):
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except ConfigError:
                continue
        raise bad
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            raise bad
        item = args[0] if args else Any
        items = [_coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise bad
        return dict(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise bad
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad
        try:
            value = float(value)
        except OverflowError:
            raise bad from None
        if not math.isfinite(value):
            raise ConfigError(f"{where} must be a finite number, got {value!r}.")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise bad
        return value
    raise ConfigError(f"{where}: unsupported field type {tp!r}")  # a bug in a Config class


def build_dataclass(cls: type, data: dict[str, Any], where: str) -> Any:
    """Build `cls` from a mapping, strictly: unknown keys and wrong types raise ConfigError."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a mapping of keys to values, got {_short(repr(data))}.")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        if key not in fields:
            raise ConfigError(
                f"unknown key '{where}.{_short(str(key))}'.{_closest(str(key), fields)} "
                f"Valid keys in '{where}': {', '.join(fields)}."
            )
        kwargs[key] = _coerce(value, hints[key], f"'{where}.{key}'")
    obj = cls(**kwargs)
    check = getattr(obj, "validate", None)
    if check is not None:
        try:
            check()
        except ValueError as exc:
            raise ConfigError(f"'{where}': {exc}") from None
    return obj


def parse_override(text: str) -> tuple[list[str], Any]:
    """`learner.lr=3e-4` -> (['learner', 'lr'], 0.0003). Values are parsed as YAML scalars."""
    key, sep, raw = text.partition("=")
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(
            f"bad override '{_short(text)}': write section.key=value, e.g. learner.lr=3e-4 "
            "or rollout.num_workers=2."
        )
    try:
        value = load_yaml_text(raw) if raw != "" else ""
    except yaml.YAMLError as exc:
        if "aliases" in str(exc) or "twice" in str(exc):
            raise ConfigError(f"override '{_short(text)}': {_short(str(exc))}") from None
        value = raw
    # YAML reads 3e-4 as a string (it wants 3.0e-4); accept the usual float spelling.
    if isinstance(value, str) and any(c in value for c in ".eE"):
        with contextlib.suppress(ValueError):
            value = float(value)
    return key.split("."), value


def read_yaml(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        near = ""
        if path.parent.is_dir():
            near = _closest(path.name, [p.name for p in path.parent.glob("*.yaml")])
        raise ConfigError(f"config file '{path}' does not exist.{near}")
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise ConfigError(
            f"config file '{path}' is {path.stat().st_size:,} bytes; a memrl config is a few "
            f"KB (the limit is {MAX_CONFIG_BYTES:,}). Is it the right file?"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(
            f"config file '{path}' is not text (not UTF-8); give a YAML file such as "
            "configs/dqn_cartpole.yaml."
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file '{path}': {exc.strerror or exc}.") from None
    try:
        data = load_yaml_text(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file '{path}' is not valid YAML: {_short(str(exc))}") from None
    except RecursionError:
        raise ConfigError(f"config file '{path}' nests too deeply to be a memrl config.") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"config file '{path}' must hold a mapping with sections {_SECTION_LIST}."
        )
    return data


_SECTION_LIST = "env, agent, learner, rollout, run"
MAX_CONFIG_BYTES = 1 << 20


def build_config(data: dict[str, Any], source: str = "<config>") -> ExperimentConfig:
    """Turn a raw mapping (already merged with overrides) into an ExperimentConfig."""
    try:
        return _build(data)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def _build(data: dict[str, Any]) -> ExperimentConfig:
    valid = list(SECTIONS) + ["agent"]
    for key in data:
        if key not in valid:
            raise ConfigError(
                f"unknown section '{_short(str(key))}'.{_closest(str(key), valid)} Valid sections: {_SECTION_LIST}."
            )
    sections = {
        name: build_dataclass(cls, data.get(name) or {}, name) for name, cls in SECTIONS.items()
    }
    raw_agent = data.get("agent") or {}
    if not isinstance(raw_agent, dict):
        raise ConfigError(
            f"'agent' must be a mapping of keys to values, got {_short(repr(raw_agent))}."
        )
    agent_data = dict(raw_agent)
    name = agent_data.get("name")
    if name is None:
        raise ConfigError(f"'agent.name' is missing. Valid agents: {', '.join(AGENTS)}.")
    if not isinstance(name, str) or name not in AGENTS:
        raise ConfigError(
            f"unknown agent '{_short(str(name))}' in 'agent.name'.{_closest(str(name), AGENTS)} "
            f"Valid agents: {', '.join(AGENTS)}."
        )
    agent = build_dataclass(agent_config_class(name), agent_data, "agent")
    cfg = ExperimentConfig(agent=agent, **sections)
    _check_ranges(cfg)
    return cfg


def _check_ranges(cfg: ExperimentConfig) -> None:
    r, run = cfg.rollout, cfg.run
    rules = [
        (r.num_workers >= 0, "'rollout.num_workers' must be >= 0"),
        (r.max_worker_restarts >= 0, "'rollout.max_worker_restarts' must be >= 0"),
        (r.weights_every >= 1, "'rollout.weights_every' must be >= 1"),
        (0 <= r.worker_nice <= 19, "'rollout.worker_nice' must be in 0..19"),
        (r.placement_timeout_s > 0, "'rollout.placement_timeout_s' must be > 0"),
        (r.envs_per_worker >= 1, "'rollout.envs_per_worker' must be >= 1"),
        (
            r.steps_per_sample >= r.envs_per_worker,
            "'rollout.steps_per_sample' must be >= 'rollout.envs_per_worker'",
        ),
        (cfg.learner.lr > 0, "'learner.lr' must be > 0"),
        (
            cfg.learner.lr_schedule == "constant" or cfg.learner.lr_decay_updates >= 1,
            f"'learner.lr_schedule: {cfg.learner.lr_schedule}' needs 'learner.lr_decay_updates' "
            ">= 1 (the updates over which lr decays)",
        ),
        (
            0 <= cfg.learner.lr_end_ratio <= 1,
            "'learner.lr_end_ratio' must be in [0, 1] (the final lr as a fraction of 'learner.lr')",
        ),
        (cfg.learner.grad_clip >= 0, "'learner.grad_clip' must be >= 0 (0 turns clipping off)"),
        (cfg.learner.eps > 0, "'learner.eps' must be > 0"),
        (0 <= cfg.learner.momentum < 1, "'learner.momentum' must be in [0, 1)"),
        (0 < cfg.learner.alpha < 1, "'learner.alpha' must be in (0, 1) (RMSProp's decay)"),
        (cfg.learner.weight_decay >= 0, "'learner.weight_decay' must be >= 0"),
        (cfg.learner.lr_decay_updates >= 0, "'learner.lr_decay_updates' must be >= 0"),
        (
            0 <= cfg.learner.torch_threads <= 1024,
            "'learner.torch_threads' must be in 0..1024 (0 = automatic)",
        ),
        (
            0 < cfg.learner.beta2 < 1,
            "'learner.beta2' must be in (0, 1) (Adam's decay of the squared gradients)",
        ),
        (
            cfg.learner.cuda_graphs != "on"
            or (cfg.learner.optimizer == "adam" and cfg.learner.lr_schedule == "constant"),
            "'learner.cuda_graphs: on' needs 'learner.optimizer: adam' and a constant lr "
            "('learner.lr_schedule: constant'); use 'auto' to fall back to ordinary updates",
        ),
        (run.total_env_steps > 0, "'run.total_env_steps' must be > 0"),
        (
            0 <= run.seed < 2**32,
            "'run.seed' must be in 0..4294967295 (numpy and torch take 32-bit seeds)",
        ),
        (run.total_episodes >= 0, "'run.total_episodes' must be >= 0 (0 = no limit)"),
        (run.max_time_s >= 0, "'run.max_time_s' must be >= 0 (0 = no limit)"),
        (run.eval_every_steps >= 0, "'run.eval_every_steps' must be >= 0 (0 = only at the end)"),
        (run.log_every_s >= 0, "'run.log_every_s' must be >= 0 (0 = every iteration)"),
        (bool(run.dir), "'run.dir' must not be empty (the folder runs are written under)"),
        (run.eval_episodes >= 1, "'run.eval_episodes' must be >= 1"),
        (run.keep_checkpoints >= 1, "'run.keep_checkpoints' must be >= 1"),
        (run.checkpoint_every_steps >= 0, "'run.checkpoint_every_steps' must be >= 0"),
        (
            run.name.replace("-", "").replace("_", "").isalnum(),
            "'run.name' may hold letters, digits, '-' and '_' only",
        ),
    ]
    for ok, message in rules:
        if not ok:
            raise ConfigError(message + ".")


def apply_overrides(data: dict[str, Any], overrides: typing.Sequence[str]) -> dict[str, Any]:
    data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in data.items()}
    for text in overrides:
        path, value = parse_override(text)
        node = data
        for part in path[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                raise ConfigError(f"override '{_short(text)}': '{part}' is a value, not a section.")
            else:
                child = node[part] = dict(child)
            node = child
        node[path[-1]] = value
    return data


def load_config(path: str | os.PathLike, overrides: typing.Sequence[str] = ()) -> ExperimentConfig:
    """Read a YAML config, apply dotted `key=value` overrides, validate."""
    data = apply_overrides(read_yaml(path), overrides)
    return build_config(data, source=str(path))


def config_to_dict(cfg: ExperimentConfig) -> dict[str, Any]:
    """Plain mapping of a config (tuples as lists) that `build_config` reads back unchanged."""

    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(cfg)


def dump_config(cfg: ExperimentConfig) -> str:
    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False)
