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
from agents.learner import LearnerConfig  # its home is beside the Learner; exported here too


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
    # kwargs laid over `kwargs` for evaluation (e.g. a split or the target difficulty)
    eval_kwargs: dict[str, Any] = field(default_factory=dict)
    # curriculum levels, each a dict laid over `kwargs` for the workers; the level rises by one
    # when an evaluation's score (mean return, or accuracy on datasets) >= curriculum_threshold
    curriculum: list[dict[str, Any]] = field(default_factory=list)
    curriculum_threshold: float | None = None
    # instead of the threshold: one level up per this many training sequences, whatever the
    # evaluations say (the stack RNN paper's one more n per epoch); 0 = off. Sequence tasks only
    curriculum_every_sequences: int = 0
    # with curriculum_threshold: the level also moves up when its evaluation score is below the
    # score this many evaluations earlier at the same level (a stall; Learning to Execute's
    # reference code moves on after 5); 0 = only the threshold moves it
    curriculum_patience: int = 0
    # with `eval_kwargs` (a fixed target), the current level is evaluated too, in the level's
    # kwargs with these laid over (e.g. {strategy: naive}: only the level's own difficulty, not
    # a mixture's share of harder ones); its score is what moves the level
    curriculum_eval_kwargs: dict[str, Any] = field(default_factory=dict)


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
    # dataset tasks: 'epochs' = shuffled passes without replacement, 'replacement' = uniform draws
    dataset_order: Literal["epochs", "replacement"] = "epochs"


@dataclass
class RunConfig:
    """Length, stopping, evaluation, logging and checkpointing of one run."""

    name: str = "run"
    seed: int = 0
    dir: str = "runs"
    # Budgets: the run stops at the first one reached; 0 = no limit (at least one must be set).
    total_env_steps: int = 100_000
    total_episodes: int = 0  # complete RL episodes
    total_sequences: int = 0  # generated training sequences (NTM/LSTM tasks)
    total_epochs: int = 0  # passes over a dataset task's train split
    max_time_s: float = 0.0
    eval_every_steps: int = 10_000  # 0 = only at the end
    eval_every_epochs: int = 1  # dataset tasks: a full pass over 'valid' every this many epochs
    eval_episodes: int = 20
    stop_return: float | None = None  # stop once the evaluation score reaches this
    # what an evaluation's score is (the `best` weights, stop_return and the curriculum compare
    # it): 'return', the mean episode return (sequence tasks: minus the wrong bits); 'cost',
    # minus the mean cost in bits of `eval_episodes` sequences from the task's sampler, the
    # training loss's figure (sequence agents on generated tasks; dynamic n-grams, priority
    # sort: the paper's measure). Both are logged (eval_return_mean, eval_cost_bits).
    eval_metric: Literal["return", "cost"] = "return"
    # the weights the end-of-run report scores: the best evaluation's (model selection on the
    # evaluation episodes; the final weights can sit in a late spike) or the final ones, where
    # the evaluation's figure is not the report's and the learning rate anneals to the end
    # (dynamic n-grams: evaluations count wrong bits, the report the cost in bits)
    report_weights: Literal["best", "final"] = "best"
    # stop once the mean return of the last 100 training episodes reaches this (gym's "solved"
    # rule, e.g. the tape tasks' reward_threshold; episodes follow the env's own curriculum)
    stop_train_return: float | None = None
    checkpoint_every_steps: int = 20_000
    keep_checkpoints: int = 3
    save_replay: bool = True
    log_every_s: float = 10.0
    # Start from another run's weights (weights only: a fresh optimiser, counters and RNG; this
    # config's loss): a run folder (its best checkpoint, else its newest), one checkpoint folder
    # or a state.pt. rollout/warm_start.py. Ignored by --resume, which continues its own run.
    init_from: str | None = None


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
        *((False, message) for message in cfg.learner.errors()),
        (
            min(run.total_env_steps, run.total_episodes, run.total_sequences, run.total_epochs)
            >= 0,
            "the run budgets 'run.total_*' must be >= 0 (0 = no limit)",
        ),
        (
            any(
                (
                    run.total_env_steps,
                    run.total_episodes,
                    run.total_sequences,
                    run.total_epochs,
                    run.max_time_s,
                )
            ),
            "a run needs a budget: set one of 'run.total_env_steps', 'run.total_episodes', "
            "'run.total_sequences', 'run.total_epochs' or 'run.max_time_s' above 0",
        ),
        (run.eval_every_epochs >= 1, "'run.eval_every_epochs' must be >= 1"),
        (
            not cfg.env.curriculum_eval_kwargs or bool(cfg.env.curriculum),
            "'env.curriculum_eval_kwargs' is set but 'env.curriculum' has no levels",
        ),
        (
            cfg.env.curriculum_every_sequences >= 0,
            "'env.curriculum_every_sequences' must be >= 0 (0 = no schedule)",
        ),
        (
            not cfg.env.curriculum
            or cfg.env.curriculum_threshold is not None
            or cfg.env.curriculum_every_sequences > 0,
            "'env.curriculum' needs 'env.curriculum_threshold' (the evaluation score that "
            "moves it one level up) or 'env.curriculum_every_sequences' (a fixed schedule)",
        ),
        (
            cfg.env.curriculum_threshold is None or cfg.env.curriculum_every_sequences == 0,
            "'env.curriculum_threshold' and 'env.curriculum_every_sequences' exclude each other: "
            "the level moves on evaluations or on a fixed schedule, not both",
        ),
        (
            cfg.env.curriculum_patience >= 0,
            "'env.curriculum_patience' must be >= 0 (0 = only the threshold moves the level)",
        ),
        (
            cfg.env.curriculum_patience == 0
            or (cfg.env.curriculum_threshold is not None and bool(cfg.env.curriculum)),
            "'env.curriculum_patience' needs 'env.curriculum_threshold' and 'env.curriculum' "
            "(it moves a threshold curriculum on when its evaluations stall)",
        ),
        (
            cfg.env.curriculum_every_sequences == 0 or bool(cfg.env.curriculum),
            "'env.curriculum_every_sequences' is set but 'env.curriculum' has no levels",
        ),
        (
            0 <= run.seed < 2**32,
            "'run.seed' must be in 0..4294967295 (numpy and torch take 32-bit seeds)",
        ),
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
