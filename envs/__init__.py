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
import json
import re
import warnings
from collections.abc import Callable
from typing import Any

import gymnasium as gym

from envs import atari

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
    if atari.is_atari(spec):  # DQN preprocessing (envs/atari.py); the raw game is gymnasium:ALE/..
        return _construct(lambda: atari.make_atari(spec, **kwargs), spec, kwargs)
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
    "EnvSpecError",
    "MEMRL_ENVS",
    "check",
    "describe",
    "env_factory",
    "frame_stack",
    "known_ids",
    "make",
    "make_vector",
]
