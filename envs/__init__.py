"""memrl environments and the one place env specs are resolved (`make`).

A spec is one of: a `memrl/*` id, any registered Gymnasium id (`CartPole-v1`, `ALE/Pong-v5`),
`package.module:EnvClass` / `package.module:make_fn`, or a name an installed package registers
in the entry-point group `memrl.envs`. An unknown spec is an `EnvSpecError` naming the closest
known ids.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
from collections.abc import Callable
from typing import Any

import gymnasium as gym

ENTRY_POINT_GROUP = "memrl.envs"

# memrl's own ids: id -> (entry point, one-line description). Tasks register here as they land.
MEMRL_ENVS: dict[str, tuple[str, str]] = {}


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


def _from_callable(target: Any, spec: str, kwargs: dict[str, Any]) -> gym.Env:
    if isinstance(target, type) and not issubclass(target, gym.Env):
        raise EnvSpecError(f"'{spec}' is a class but not a gymnasium.Env subclass.")
    if not callable(target):
        raise EnvSpecError(
            f"'{spec}' is neither a gymnasium.Env class nor a function that makes one."
        )
    try:
        env = target(**kwargs)
    except TypeError as exc:
        raise EnvSpecError(f"could not build '{spec}' with kwargs {kwargs}: {exc}") from None
    if not isinstance(env, gym.Env):
        raise EnvSpecError(f"'{spec}' returned {type(env).__name__}, not a gymnasium.Env.")
    return env


def _load_module_attr(spec: str) -> Any:
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise EnvSpecError(
            f"cannot import module '{module_name}' for env '{spec}': {exc}"
        ) from None
    if not hasattr(module, attr):
        names = [n for n in dir(module) if not n.startswith("_")]
        match = difflib.get_close_matches(attr, names, n=1)
        hint = f" Did you mean '{module_name}:{match[0]}'?" if match else ""
        raise EnvSpecError(f"module '{module_name}' has no attribute '{attr}'.{hint}")
    return getattr(module, attr)


def make(spec: str, **kwargs: Any) -> gym.Env:
    """Build one environment from any spec memrl accepts (see the module docstring)."""
    if not isinstance(spec, str) or not spec:
        raise EnvSpecError(f"an env spec must be a non-empty string, got {spec!r}.")
    if ":" in spec and "/" not in spec.split(":", 1)[0]:
        return _from_callable(_load_module_attr(spec), spec, kwargs)
    eps = _entry_points()
    if spec in eps:
        try:
            target = eps[spec].load()
        except Exception as exc:  # a broken plug-in must not look like a memrl crash
            raise EnvSpecError(
                f"plug-in env '{spec}' ({eps[spec].value}) failed to load: {exc}"
            ) from None
        return _from_callable(target, spec, kwargs)
    _register_memrl_envs()
    if spec.startswith("ALE/") or spec not in gym.registry:
        _register_ale()
    if spec not in gym.registry:
        ids = known_ids()
        close = difflib.get_close_matches(spec, ids, n=3, cutoff=0.6)
        hint = f" Closest known ids: {', '.join(close)}." if close else ""
        raise EnvSpecError(
            f"unknown environment '{spec}'.{hint} Run `memrl envs` to list every id; a plug-in "
            "can also be given as package.module:EnvClass."
        )
    try:
        return gym.make(spec, **kwargs)
    except TypeError as exc:
        raise EnvSpecError(f"could not build '{spec}' with kwargs {kwargs}: {exc}") from None


def env_factory(spec: str, kwargs: dict[str, Any] | None = None) -> Callable[[], gym.Env]:
    """A picklable thunk for vector envs and remote workers."""
    kwargs = dict(kwargs or {})
    return lambda: make(spec, **kwargs)


__all__ = [
    "ENTRY_POINT_GROUP",
    "EnvSpecError",
    "MEMRL_ENVS",
    "describe",
    "env_factory",
    "known_ids",
    "make",
]
