"""Observation spaces memrl's agents do not take as they come, adapted with Gymnasium's own
wrappers when `envs.make` builds an env, so every env a run touches (the probe, the rollout
workers, evaluation, replay, `memrl.make_env`) sees the same observations:

- Dict and Tuple observations (MiniGrid, Blackjack) -> one flat Box
  (`gymnasium.wrappers.FlattenObservation`: Discrete parts one-hot, Box parts raveled, in the
  space's key order); parts that cannot be flattened (Sequence, Graph) are dropped first with
  `gymnasium.wrappers.FilterObservation`, and that is said.
- uint8 images stored channels-last [H, W, C] (C of 1, 3 or 4) -> channels-first [C, H, W] for
  the CNN torso (`gymnasium.wrappers.TransformObservation` with the transposed Box).

Each wrapper added here carries a sentence saying what it did (`adapter_notes`), which the
trainer prints once per run.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.wrappers import FilterObservation, FlattenObservation, TransformObservation

NOTE_ATTR = "memrl_observation_note"
CHANNELS = (1, 3, 4)  # gray, RGB, RGBA: what a channels-last image's last axis holds


class ObservationSpaceError(ValueError):
    """An observation space no adapter can make into one memrl's agents take."""


def is_channels_last_image(space: gym.Space) -> bool:
    if not isinstance(space, gym.spaces.Box) or space.dtype != np.uint8 or len(space.shape) != 3:
        return False
    height, width, channels = space.shape
    return channels in CHANNELS and min(height, width) > max(CHANNELS)


def _channels_first(obs: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.transpose(obs, (2, 0, 1)))


def _mark(env: gym.Wrapper, note: str) -> gym.Wrapper:
    setattr(env, NOTE_ATTR, note)
    return env


def _parts(space: gym.spaces.Dict | gym.spaces.Tuple) -> list[tuple[Any, gym.Space]]:
    if isinstance(space, gym.spaces.Dict):
        return list(space.spaces.items())
    return list(enumerate(space.spaces))


def adapt_observations(env: gym.Env, spec: str) -> gym.Env:
    """`env` wrapped so its observations fit memrl's encoders, or `env` itself when they do."""
    space = env.observation_space
    if isinstance(space, gym.spaces.Dict | gym.spaces.Tuple):
        kind = type(space).__name__
        parts = _parts(space)
        kept = [key for key, sub in parts if sub.is_np_flattenable]
        dropped = [key for key, sub in parts if not sub.is_np_flattenable]
        if not kept:
            raise ObservationSpaceError(
                f"env '{spec}' has {kind} observations with no part that can be flattened "
                f"({space}); memrl's agents take Box, Discrete, MultiBinary, MultiDiscrete, or "
                "Dict/Tuple of those. Wrap the env to give one of these."
            )
        how = ""
        if dropped:
            env = FilterObservation(env, kept)
            how = (
                f"; dropped {', '.join(repr(k) for k in dropped)} (not flattenable: "
                f"{', '.join(type(dict(parts)[k]).__name__ for k in dropped)}, "
                "gymnasium.wrappers.FilterObservation)"
            )
        env = FlattenObservation(env)
        names = (
            ", ".join(f"{k!r}" for k in kept)
            if isinstance(space, gym.spaces.Dict)
            else f"{len(kept)} parts"
        )
        return _mark(
            env,
            f"{kind} observations ({names}) flattened to {env.observation_space.shape[0]} "
            f"numbers (gymnasium.wrappers.FlattenObservation; discrete parts one-hot){how}",
        )
    if is_channels_last_image(space):
        height, width, channels = space.shape
        moved = gym.spaces.Box(
            low=np.transpose(space.low, (2, 0, 1)),
            high=np.transpose(space.high, (2, 0, 1)),
            dtype=space.dtype,
        )
        env = TransformObservation(env, _channels_first, moved)
        return _mark(
            env,
            f"channels-last images {space.shape} moved channels-first to "
            f"{(channels, height, width)} (gymnasium.wrappers.TransformObservation)",
        )
    return env


def observation_adapters(env: gym.Env) -> list[gym.ObservationWrapper]:
    """The wrappers `adapt_observations` added to this env, innermost first: applying their
    `observation` methods in this order turns a raw observation into the adapted one."""
    found = []
    while isinstance(env, gym.Wrapper):
        if isinstance(env, gym.ObservationWrapper) and getattr(env, NOTE_ATTR, None):
            found.append(env)
        env = env.env
    return found[::-1]


def adapter_notes(env: gym.Env) -> list[str]:
    """What `adapt_observations` did to this env, innermost wrapper first."""
    return [getattr(w, NOTE_ATTR) for w in observation_adapters(env)]
