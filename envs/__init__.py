"""memrl environments and the one place env specs are resolved (`make`).

A spec is one of: a `memrl/*` id, any registered Gymnasium id (`CartPole-v1`, `ALE/Pong-v5`),
`package.module:EnvClass` / `package.module:make_fn` (a function marked with `env_maker`), or a
name an installed package registers in the entry-point group `memrl.envs`. An unknown spec is an
`EnvSpecError` naming the closest known ids.

Trust: a `module:attr` spec imports a module and calls into it, so it is code. `make` checks what
the attribute is before calling anything (a `gymnasium.Env` subclass or an `env_maker` function,
never an arbitrary callable such as `os:system`), and specs read back from files (a run folder, an
episode) go through `refuse_untrusted` first: there only registered ids and installed entry points
resolve without the user's say-so. A module named by a spec is looked up where Python looks
(memrl's packages and installed packages first), then in the folders of `MEMRL_PLUGIN_PATH` (the
CLI sets it to the working folder), for that module only: the working folder never shadows them.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import importlib.machinery
import importlib.metadata
import importlib.util
import json
import os
import re
import sys
import warnings
from collections.abc import Callable
from typing import Any

import gymnasium as gym

from envs import atari
from envs.observations import (
    ObservationSpaceError,
    adapt_observations,
    adapter_notes,
    observation_adapters,
)

ENTRY_POINT_GROUP = "memrl.envs"
# Folders (os.pathsep-separated) searched for the top-level module of a `module:attr` spec when
# Python's own path does not have it; the CLI sets it to the working folder, and embedded Ray
# workers inherit it.
PLUGIN_PATH_ENV = "MEMRL_PLUGIN_PATH"
MAKER_ATTR = "__memrl_env_maker__"

# memrl's own ids: id -> (entry point, one-line description). Tasks register here as they land.
MEMRL_ENVS: dict[str, tuple[str, str]] = {
    "memrl/Copy-v0": (
        "envs.algorithmic:Copy",
        "NTM copy (Graves et al. 2014, 4.1): reproduce a sequence of random bit vectors",
    ),
    "memrl/RepeatCopy-v0": (
        "envs.algorithmic:RepeatCopy",
        "NTM repeat copy (4.2): output a sequence R times, then an end marker",
    ),
    "memrl/AssociativeRecall-v0": (
        "envs.algorithmic:AssociativeRecall",
        "NTM associative recall (4.3): given an item of a list, output the next one",
    ),
    "memrl/DynamicNGrams-v0": (
        "envs.algorithmic:DynamicNGrams",
        "NTM dynamic N-grams (4.4): predict the next bit of a random 6-gram sequence",
    ),
    "memrl/LearnToExecute-v0": (
        "envs.learn_to_execute:LearnToExecute",
        "Learning to Execute (Zaremba & Sutskever 2014): print a small program's output",
    ),
    "memrl/PrioritySort-v0": (
        "envs.algorithmic:PrioritySort",
        "NTM priority sort (4.5): output the highest-priority vectors, sorted",
    ),
    "memrl/BAbI-v0": (
        "envs.babi.env:BabiEnv",
        "bAbI question answering (Weston et al. 2015): one question per episode, answer word id",
    ),
    "memrl/ClevrVQA-v0": (
        "envs.clevr.env:ClevrVQA",
        "CLEVR VQA over scene graphs (Johnson et al. 2017): emit a question's program, token "
        "by token; reward 1 if it executes to the answer",
    ),
}


class EnvSpecError(ValueError):
    """An env spec that cannot be resolved or built (the message says why and what is valid)."""


def _register_memrl_envs() -> None:
    for env_id, (entry_point, _) in MEMRL_ENVS.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=entry_point)


# `import envs` registers every memrl/* id, so gym.make("memrl/Copy-v0") works after the import,
# as ale-py's ids do after gym.register_envs(ale_py).
_register_memrl_envs()


def _register_ale() -> None:
    try:
        import ale_py

        gym.register_envs(ale_py)
    except ImportError:  # ale-py is a dependency, but a trimmed install can still list the rest
        pass


def _entry_points() -> dict[str, importlib.metadata.EntryPoint]:
    return {ep.name: ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}


def known_ids() -> list[str]:
    """Every id `make` accepts by name: memrl ids, Gymnasium's registry, plug-in entry points."""
    _register_memrl_envs()
    _register_ale()
    return sorted(set(gym.registry) | set(_entry_points()))


def describe(env_id: str) -> str:
    """One line about an id, for `memrl envs`."""
    if env_id in MEMRL_ENVS:
        return MEMRL_ENVS[env_id][1]
    eps = _entry_points()
    if env_id in eps:
        return f"plug-in ({eps[env_id].value})"
    spec = gym.registry.get(env_id)
    if spec is None:
        return ""
    entry = (
        spec.entry_point
        if isinstance(spec.entry_point, str)
        else getattr(spec.entry_point, "__name__", "")
    )
    steps = f", max {spec.max_episode_steps} steps" if spec.max_episode_steps else ""
    return f"gymnasium ({entry}{steps})"


def env_maker(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a function as one that makes a gymnasium.Env, so a `module:fn` spec may call it.
    Only classes that subclass gymnasium.Env and functions marked so are called from a spec: a
    spec cannot call an arbitrary function (`os:system`)."""
    setattr(fn, MAKER_ATTR, True)
    return fn


def is_module_spec(spec: str) -> bool:
    """True for `module:attr` specs (they import a module named by the spec), False for ids."""
    return isinstance(spec, str) and ":" in spec and "/" not in spec.split(":", 1)[0]


def refuse_untrusted(spec: Any, source: str, consent: str) -> None:
    """Refuse a spec read back from a file (`source` says which file and key) that would import
    code: only registered ids and installed entry points are made from data without the user's
    say-so. `consent` says how the user gives it (e.g. 'pass --trust')."""
    if not isinstance(spec, str) or not spec:
        raise EnvSpecError(f"{source}: the env spec must be a non-empty string, got {spec!r}.")
    if is_module_spec(spec):
        module = spec.split(":", 1)[0]
        raise EnvSpecError(
            f"{source} names the env '{spec}', which would import module '{module}' and call "
            "into it. Specs read back from run folders and episode files are data: memrl makes "
            "only registered ids (memrl/*, Gymnasium's, ALE's) and installed `memrl.envs` "
            f"plug-ins from them. If you trust this file and its code, {consent}."
        )


def _construct(
    build: Callable[[], Any], spec: str, kwargs: dict[str, Any], plugin: bool = False
) -> Any:
    """Call `build`, turning the errors a user can fix (bad kwargs, bad values) into EnvSpecError.
    A TypeError that is not about the arguments is a bug inside the env and propagates as is,
    except in a plug-in (`plugin`): any error raised while building one is the plug-in's, and is
    reported as such rather than as a memrl crash."""
    try:
        return build()
    except EnvSpecError:
        raise
    except gym.error.DependencyNotInstalled as exc:  # a listed env whose extra is missing
        raise EnvSpecError(_missing_dependency(spec, exc)) from None
    except ImportError as exc:
        if plugin:
            raise EnvSpecError(_plugin_failure(spec, "building it", exc)) from None
        raise EnvSpecError(_missing_dependency(spec, exc)) from None
    except TypeError as exc:
        if "argument" in str(exc):
            raise EnvSpecError(f"could not build '{spec}' with kwargs {kwargs}: {exc}") from None
        if not plugin:
            raise
        raise EnvSpecError(_plugin_failure(spec, "building it", exc)) from None
    except ValueError as exc:
        raise EnvSpecError(f"could not build '{spec}': {exc}") from None
    except Exception as exc:
        if not plugin:
            raise
        raise EnvSpecError(_plugin_failure(spec, "building it", exc)) from None


def _extra_of(spec: str) -> str | None:
    """The pip extra of Gymnasium that provides a registered id (box2d, mujoco, ...), from
    where its entry point lives: gymnasium.envs.<family>.<module>."""
    env_id = spec.split(":", 1)[1] if is_module_spec(spec) else spec  # gymnasium:Id-v0
    entry = getattr(gym.registry.get(env_id), "entry_point", None)
    match = isinstance(entry, str) and re.match(r"gymnasium\.envs\.(\w+)\.", entry)
    return match.group(1) if match else None


def _missing_dependency(spec: str, exc: BaseException) -> str:
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    extra = _extra_of(spec)
    how = f'`pip install "gymnasium[{extra}]"`' if extra else "the package that provides it"
    return (
        f"env '{spec}' is listed but cannot be built here: a package it needs is not "
        f"installed ({detail}). Install it with {how}."
    )


def _plugin_failure(spec: str, what: str, exc: BaseException) -> str:
    where = ""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is not None:
        where = f" at {tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}"
    if isinstance(exc, SyntaxError) and exc.filename:
        where = f" at {exc.filename}:{exc.lineno}"
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else "(no message)"
    return (
        f"the plug-in env '{spec}' raised {type(exc).__name__} while {what}{where}: {detail}. "
        "This is an error in the plug-in's code, not in memrl: fix it there."
    )


def _check_target(target: Any, spec: str, require_maker: bool) -> None:
    """What a spec names must be an env class or an env-making function: checked before it is
    called, so a spec naming `os:system` or `builtins:exec` calls nothing."""
    if isinstance(target, type):
        if not issubclass(target, gym.Env):
            raise EnvSpecError(f"'{spec}' is a class but not a gymnasium.Env subclass.")
        return
    is_function = callable(target) and not isinstance(target, type)
    if is_function and (not require_maker or getattr(target, MAKER_ATTR, False) is True):
        return
    kind = "a function not marked with @envs.env_maker" if is_function else type(target).__name__
    raise EnvSpecError(
        f"'{spec}' is {kind}, not a gymnasium.Env subclass or an env maker, so memrl does not "
        "call it. Name an Env class (package.module:EnvClass), or mark a function that returns "
        "an env with @envs.env_maker, or register an id with gymnasium.register."
    )


def _from_callable(
    target: Any, spec: str, kwargs: dict[str, Any], require_maker: bool = True
) -> gym.Env:
    _check_target(target, spec, require_maker)
    env = _construct(lambda: target(**kwargs), spec, kwargs, plugin=True)
    if not isinstance(env, gym.Env):
        raise EnvSpecError(f"'{spec}' returned {type(env).__name__}, not a gymnasium.Env.")
    for name in ("observation_space", "action_space"):
        if not isinstance(getattr(env, name, None), gym.spaces.Space):
            raise EnvSpecError(
                f"the plug-in env '{spec}' has no {name} (a gymnasium.spaces.Space); set "
                f"self.{name} in its __init__ or as a class attribute."
            )
    return env


def _plugin_dirs() -> list[str]:
    return [p for p in os.environ.get(PLUGIN_PATH_ENV, "").split(os.pathsep) if p]


def _find_top_level(top: str) -> Any:
    """Python's spec for the top-level module `top`, or None. A name Python finds (memrl's own
    packages, installed packages) wins; only then are the plug-in folders searched, and only for
    this one name."""
    try:
        found = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        found = None
    if found is not None:
        return None  # importable as is
    for folder in _plugin_dirs():
        found = importlib.machinery.PathFinder.find_spec(top, [folder])
        if found is not None:
            # the plug-in's own sibling imports resolve there too, after everything else
            if folder not in sys.path:
                sys.path.append(folder)
            return found
    return None


def _import(module_name: str, spec: str) -> Any:
    top = module_name.split(".")[0]
    if not all(part.isidentifier() for part in module_name.split(".")):
        raise EnvSpecError(
            f"'{module_name}' in env '{spec}' is not a Python module name (write "
            "package.module:EnvClass)."
        )
    try:
        local = None if top in sys.modules else _find_top_level(top)
        if local is not None:  # the plug-in's package from the working folder, by name
            module = importlib.util.module_from_spec(local)
            sys.modules[top] = module
            try:
                local.loader.exec_module(module)
            except BaseException:
                sys.modules.pop(top, None)
                raise
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module_name.startswith(exc.name):
            raise EnvSpecError(
                f"cannot import module '{module_name}' for env '{spec}': {exc}. Install the "
                "package that provides it, or run memrl from the folder that holds it."
            ) from None
        raise EnvSpecError(_plugin_failure(spec, f"importing '{module_name}'", exc)) from None
    except Exception as exc:  # SyntaxError, or whatever the module raises at import
        raise EnvSpecError(_plugin_failure(spec, f"importing '{module_name}'", exc)) from None


def _load_module_attr(spec: str) -> Any:
    module_name, _, attr = spec.partition(":")
    module = _import(module_name, spec)
    if not attr.isidentifier() or not hasattr(module, attr):
        names = [n for n in dir(module) if not n.startswith("_")]
        match = difflib.get_close_matches(attr, names, n=1)
        hint = f" Did you mean '{module_name}:{match[0]}'?" if match else ""
        raise EnvSpecError(f"module '{module_name}' has no attribute '{attr}'.{hint}")
    return getattr(module, attr)


_GYM_ID = re.compile(r"-v\d+$")


def make(spec: str, **kwargs: Any) -> gym.Env:
    """Build one environment from any spec memrl accepts (see the module docstring), with its
    observations adapted to memrl's agents by Gymnasium wrappers where needed (Dict/Tuple
    flattened, channels-last images moved channels-first: envs/observations.py;
    `adapter_notes(env)` says what was done).

    Registered ids (memrl's, Gymnasium's, ALE's) take precedence over plug-in entry points of the
    same name, so a plug-in cannot silently replace a built-in environment.
    """
    env = _make_unadapted(spec, **kwargs)
    try:
        return adapt_observations(env, spec)
    except ObservationSpaceError as exc:
        env.close()
        raise EnvSpecError(str(exc)) from None


def _make_unadapted(spec: str, **kwargs: Any) -> gym.Env:
    if not isinstance(spec, str) or not spec:
        raise EnvSpecError(f"an env spec must be a non-empty string, got {spec!r}.")
    env_id = spec
    if is_module_spec(spec):
        module_name, _, attr = spec.partition(":")
        if not _GYM_ID.search(attr):
            return _from_callable(_load_module_attr(spec), spec, kwargs)
        _import(module_name, spec)  # Gymnasium's "module:EnvId-v0": the import registers the id
        env_id = attr
    _register_memrl_envs()
    if env_id.startswith("ALE/") or env_id not in gym.registry:
        _register_ale()
    if atari.is_atari(spec):  # DQN preprocessing (envs/atari.py); the raw game is gymnasium:ALE/..
        return _construct(lambda: atari.make_atari(spec, **kwargs), spec, kwargs)
    if env_id in gym.registry:
        plugin = not _is_builtin(spec)
        return _construct(lambda: gym.make(env_id, **kwargs), spec, kwargs, plugin=plugin)
    eps = _entry_points()
    if env_id in eps:
        try:
            target = eps[env_id].load()
        except Exception as exc:  # a broken plug-in must not look like a memrl crash
            raise EnvSpecError(
                f"plug-in env '{env_id}' ({eps[env_id].value}) failed to load: {exc}"
            ) from None
        # an installed package's entry point is trusted like the package: a plain function works
        return _from_callable(target, spec, kwargs, require_maker=False)
    close = difflib.get_close_matches(env_id, known_ids(), n=3, cutoff=0.6)
    hint = f" Closest known ids: {', '.join(close)}." if close else ""
    raise EnvSpecError(
        f"unknown environment '{spec}'.{hint} Run `memrl envs` to list every id; a plug-in "
        "can also be given as package.module:EnvClass."
    )


def make_vector(
    spec: str,
    kwargs: dict[str, Any] | None,
    num_envs: int,
    evaluation: bool = False,
    pipelined: bool = False,
) -> Any:
    """`num_envs` copies of an env for a rollout worker, with same-step autoreset (the true final
    observation in info["final_obs"]). For training, Atari ids get ale-py's threaded C++ vector
    env with the training signals (reward clipping, life loss); for `evaluation`, and for every
    other env, a SyncVectorEnv of `make(spec)` (Atari: true scores, whole games). `pipelined`
    Atari training envs come as an `atari.AtariPipeline` (two halves stepped alternately)."""
    kwargs = dict(kwargs or {})
    if atari.is_atari(spec) and not evaluation and pipelined and num_envs >= 2:
        return _construct(lambda: atari.AtariPipeline(spec, num_envs, **kwargs), spec, kwargs)
    if atari.is_atari(spec) and not evaluation:
        return _construct(lambda: atari.AtariTrainingEnv(spec, num_envs, **kwargs), spec, kwargs)
    return gym.vector.SyncVectorEnv(
        [env_factory(spec, kwargs) for _ in range(num_envs)],
        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
    )


def frame_stack(spec: str, kwargs: dict[str, Any] | None) -> int:
    """How many frames an observation of this env stacks (so replay can store each frame once);
    0 for envs whose observations are not frame stacks."""
    if atari.is_atari(spec):
        return atari.atari_options(dict(kwargs or {})).frame_stack
    return 0


# (spec, kwargs) already through the checker in this process, so the CLI's probe and the
# Trainer's do not repeat it (rollout workers never run it).
_CHECKED: set[str] = set()
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


# Envs tested where they come from (Gymnasium's, ale-py's, memrl's own): the checker only nags
# about them (CartPole's infinite bounds), so it runs on plug-ins and third-party ids only.
_BUILTIN_ENTRY_POINTS = ("gymnasium.envs.", "ale_py", "envs.")


def _is_builtin(spec: str) -> bool:
    if spec in MEMRL_ENVS or atari.is_atari(spec):
        return True
    env_id = spec.split(":", 1)[1] if ":" in spec and _GYM_ID.search(spec) else spec
    entry = getattr(gym.registry.get(env_id), "entry_point", None)
    return isinstance(entry, str) and entry.startswith(_BUILTIN_ENTRY_POINTS)


def check(spec: str, kwargs: dict[str, Any] | None = None) -> list[str]:
    """Run Gymnasium's env checker (`gymnasium.utils.env_checker.check_env`) on a fresh instance
    of a plug-in env, once per spec and kwargs in this process. Envs that come with Gymnasium,
    ale-py or memrl are skipped.

    Returns the checker's warnings (to show, not fatal); [] when skipped or already checked.
    Raises EnvSpecError naming the spec and what the checker found wrong.
    """
    kwargs = dict(kwargs or {})
    key = f"{spec} {json.dumps(kwargs, sort_keys=True, default=repr)}"
    if _is_builtin(spec) or key in _CHECKED:
        return []
    from gymnasium.utils.env_checker import check_env

    env = make(spec, **kwargs)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            check_env(env.unwrapped, skip_render_check=True)
    except Exception as exc:  # the checker asserts; a broken env may raise anything
        detail = _ANSI.sub("", str(exc)).strip() or "(no message)"
        raise EnvSpecError(
            f"env '{spec}' (kwargs {kwargs}) fails Gymnasium's env checker "
            f"(gymnasium.utils.env_checker.check_env): {type(exc).__name__}: {detail} "
            "Fix the env, or set env.check=false to train without this check."
        ) from None
    finally:
        env.close()
    _CHECKED.add(key)
    found = (_ANSI.sub("", str(w.message)).strip() for w in caught)
    return list(dict.fromkeys(m.removeprefix("WARN: ") for m in found))


def env_factory(spec: str, kwargs: dict[str, Any] | None = None) -> Callable[[], gym.Env]:
    """A picklable thunk for vector envs and remote workers."""
    return functools.partial(make, spec, **dict(kwargs or {}))


__all__ = [
    "ENTRY_POINT_GROUP",
    "adapter_notes",
    "observation_adapters",
    "EnvSpecError",
    "MEMRL_ENVS",
    "check",
    "describe",
    "env_factory",
    "env_maker",
    "is_module_spec",
    "frame_stack",
    "known_ids",
    "make",
    "make_vector",
    "refuse_untrusted",
]
