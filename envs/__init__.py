"""memrl environments and the one place env specs are resolved (`make`).

A spec is one of: a `memrl/*` id, any registered Gymnasium id (`CartPole-v1`, `ALE/Pong-v5`),
`package.module:EnvClass` / `package.module:make_fn`, or a name an installed package registers
in the entry-point group `memrl.envs`. An unknown spec is an `EnvSpecError` naming the closest
known ids.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import importlib.metadata
import re
from collections.abc import Callable
from typing import Any

import gymnasium as gym

ENTRY_POINT_GROUP = "memrl.envs"

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
    "memrl/PrioritySort-v0": (
        "envs.algorithmic:PrioritySort",
        "NTM priority sort (4.5): output the highest-priority vectors, sorted",
    ),
}


class EnvSpecError(ValueError):
    """An env spec that cannot be resolved or built (the message says why and what is valid)."""


def _register_memrl_envs() -> None:
    for env_id, (entry_point, _) in MEMRL_ENVS.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=entry_point)


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


def _construct(build: Callable[[], Any], spec: str, kwargs: dict[str, Any]) -> Any:
    """Call `build`, turning the errors a user can fix (bad kwargs, bad values) into EnvSpecError.
    A TypeError that is not about the arguments is a bug inside the env and propagates as is."""
    try:
        return build()
    except EnvSpecError:
        raise
    except TypeError as exc:
        if "argument" not in str(exc):
            raise
        raise EnvSpecError(f"could not build '{spec}' with kwargs {kwargs}: {exc}") from None
    except ValueError as exc:
        raise EnvSpecError(f"could not build '{spec}': {exc}") from None


def _from_callable(target: Any, spec: str, kwargs: dict[str, Any]) -> gym.Env:
    if isinstance(target, type) and not issubclass(target, gym.Env):
        raise EnvSpecError(f"'{spec}' is a class but not a gymnasium.Env subclass.")
    if not callable(target):
        raise EnvSpecError(
            f"'{spec}' is neither a gymnasium.Env class nor a function that makes one."
        )
    env = _construct(lambda: target(**kwargs), spec, kwargs)
    if not isinstance(env, gym.Env):
        raise EnvSpecError(f"'{spec}' returned {type(env).__name__}, not a gymnasium.Env.")
    return env


def _import(module_name: str, spec: str) -> Any:
    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        raise EnvSpecError(
            f"cannot import module '{module_name}' for env '{spec}': {exc}"
        ) from None


def _load_module_attr(spec: str) -> Any:
    module_name, _, attr = spec.partition(":")
    module = _import(module_name, spec)
    if not hasattr(module, attr):
        names = [n for n in dir(module) if not n.startswith("_")]
        match = difflib.get_close_matches(attr, names, n=1)
        hint = f" Did you mean '{module_name}:{match[0]}'?" if match else ""
        raise EnvSpecError(f"module '{module_name}' has no attribute '{attr}'.{hint}")
    return getattr(module, attr)


_GYM_ID = re.compile(r"-v\d+$")


def make(spec: str, **kwargs: Any) -> gym.Env:
    """Build one environment from any spec memrl accepts (see the module docstring).

    Registered ids (memrl's, Gymnasium's, ALE's) take precedence over plug-in entry points of the
    same name, so a plug-in cannot silently replace a built-in environment.
    """
    if not isinstance(spec, str) or not spec:
        raise EnvSpecError(f"an env spec must be a non-empty string, got {spec!r}.")
    env_id = spec
    if ":" in spec and "/" not in spec.split(":", 1)[0]:
        module_name, _, attr = spec.partition(":")
        if not _GYM_ID.search(attr):
            return _from_callable(_load_module_attr(spec), spec, kwargs)
        _import(module_name, spec)  # Gymnasium's "module:EnvId-v0": the import registers the id
        env_id = attr
    _register_memrl_envs()
    if env_id.startswith("ALE/") or env_id not in gym.registry:
        _register_ale()
    if env_id in gym.registry:
        return _construct(lambda: gym.make(env_id, **kwargs), spec, kwargs)
    eps = _entry_points()
    if env_id in eps:
        try:
            target = eps[env_id].load()
        except Exception as exc:  # a broken plug-in must not look like a memrl crash
            raise EnvSpecError(
                f"plug-in env '{env_id}' ({eps[env_id].value}) failed to load: {exc}"
            ) from None
        return _from_callable(target, spec, kwargs)
    close = difflib.get_close_matches(env_id, known_ids(), n=3, cutoff=0.6)
    hint = f" Closest known ids: {', '.join(close)}." if close else ""
    raise EnvSpecError(
        f"unknown environment '{spec}'.{hint} Run `memrl envs` to list every id; a plug-in "
        "can also be given as package.module:EnvClass."
    )


def env_factory(spec: str, kwargs: dict[str, Any] | None = None) -> Callable[[], gym.Env]:
    """A picklable thunk for vector envs and remote workers."""
    return functools.partial(make, spec, **dict(kwargs or {}))


__all__ = [
    "ENTRY_POINT_GROUP",
    "EnvSpecError",
    "MEMRL_ENVS",
    "describe",
    "env_factory",
    "known_ids",
    "make",
]
