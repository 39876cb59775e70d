"""Recorded evaluation episodes: run one episode in a plain Gymnasium env, keep what replays it.

An episode is fully determined by (env id, env kwargs, reset seed, actions): it runs in a single
(non-vector) env made by `envs.make(env_id, **kwargs)` and reset with `env.reset(seed=seed)`.
Each episode is stored as one compressed `.npz` (loaded back with `allow_pickle=False`):

- `actions` [T, ...], `rewards` [T] float64, `terminated` / `truncated` [T] bool;
- `obs_hash` [T+1] uint64: a BLAKE2b hash of each observation (the reset one first), so a
  replay can check every observation exactly without storing Atari frames;
- `observations` [T+1, ...] as well when they are small (vector envs such as CartPole);
- `agent_outputs` [T, K] float32: the logits / Q-values the actions were chosen from;
- `targets` / `output_step` for the memory tasks (from `info`), and `meta`: a JSON string with
  env id, kwargs, seed and policy.

Policies that sample (epsilon-greedy, softmax temperature, random) draw from a numpy Generator
seeded per episode, never from torch's global RNG, so an evaluation is reproducible.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

import envs
from envs.files import atomic_write

# Observations are stored whole when the episode's observations take at most this many bytes.
MAX_STORED_OBS_BYTES = 4 * 1024 * 1024
RECORD_FORMAT = 1


def observation_hash(obs: Any) -> int:
    """A 64-bit hash of an observation's dtype, shape and bytes (dicts/tuples: of their parts)."""
    h = hashlib.blake2b(digest_size=8)

    def feed(x: Any) -> None:
        if isinstance(x, dict):
            for key in sorted(x):
                h.update(str(key).encode())
                feed(x[key])
        elif isinstance(x, tuple | list):
            for item in x:
                feed(item)
        else:
            a = np.ascontiguousarray(np.asarray(x))
            h.update(f"{a.dtype.str}{a.shape}".encode())
            h.update(a.tobytes())

    feed(obs)
    return int.from_bytes(h.digest(), "little")


# ----------------------------------------------------------------------------- policies
@dataclass(frozen=True)
class Sampling:
    """How actions are chosen: greedy, epsilon-greedy, softmax with a temperature, or random."""

    kind: str = "greedy"  # greedy | epsilon | temperature | random
    value: float = 0.0

    def describe(self) -> str:
        if self.kind in ("greedy", "random"):
            return self.kind
        return f"{self.kind} {self.value:g}"


def random_action(space: Any, rng: np.random.Generator) -> Any:
    """A uniform random action drawn from `rng` (not from the space's own generator)."""
    if isinstance(space, gym.spaces.Discrete):
        return np.int64(rng.integers(space.n) + space.start)
    if isinstance(space, gym.spaces.MultiBinary):
        return rng.integers(0, 2, space.shape).astype(space.dtype)
    if isinstance(space, gym.spaces.MultiDiscrete):
        return (rng.integers(space.nvec) + space.start).astype(space.dtype)
    raise TypeError(f"cannot draw a random action from {space}")


class AgentPolicy:
    """Acts with an agent's scores; samples (if at all) from a Generator seeded per episode."""

    def __init__(self, agent: Any, sampling: Sampling):
        self.agent = agent.cpu().eval()
        self.sampling = sampling
        self.space = agent.action_space
        self.rng = np.random.default_rng(0)
        self.state: Any = None

    def reset(self, seed: int) -> None:
        self.rng = np.random.default_rng([seed, 0x5EED])
        self.state = self.agent.initial_state(1)

    @torch.no_grad()
    def act(self, obs: Any) -> tuple[Any, np.ndarray]:
        kind, value = self.sampling.kind, self.sampling.value
        x = torch.as_tensor(np.asarray(obs)[None])
        # the agent's own scores (Agent.action_scores); None: it acts through `act`
        scored = self.agent.action_scores(x, self.state)
        if scored is None:  # an agent without known scores: its own greedy action
            if kind == "temperature":
                raise ValueError(
                    f"--temperature needs action scores, which {type(self.agent).__name__} "
                    "does not expose here; use --epsilon instead."
                )
            actions, self.state, _ = self.agent.act(x.numpy(), self.state, False)
            action = actions[0]
            if kind == "random" or (kind == "epsilon" and self.rng.random() < value):
                action = random_action(self.space, self.rng)
            return action, np.zeros(0, np.float32)
        scores, self.state, score_kind = scored
        s = scores[0].double().numpy()
        if score_kind == "categorical":
            choice = int(np.argmax(s))
            if kind == "random" or (kind == "epsilon" and self.rng.random() < value):
                choice = int(self.rng.integers(len(s)))
            elif kind == "temperature":
                p = np.exp((s - s.max()) / value)
                choice = int(self.rng.choice(len(s), p=p / p.sum()))
            action: Any = np.int64(choice + int(self.space.start))
        else:
            bits = (s > 0).astype(np.int8)
            if kind == "epsilon":
                flip = self.rng.random(len(s)) < value
                bits = np.where(flip, self.rng.integers(0, 2, len(s)), bits).astype(np.int8)
            elif kind == "temperature":
                p = 1.0 / (1.0 + np.exp(-s / value))
                bits = (self.rng.random(len(s)) < p).astype(np.int8)
            elif kind == "random":
                bits = self.rng.integers(0, 2, len(s)).astype(np.int8)
            action = bits.reshape(self.space.shape)
        return action, scores[0].float().numpy()


class RandomPolicy:
    """Uniform random actions, seeded per episode: a baseline, and how an env is recorded for
    replay without a trained agent (e.g. Atari in tests)."""

    def __init__(self, action_space: gym.Space):
        self.space = action_space
        self.rng = np.random.default_rng(0)

    def reset(self, seed: int) -> None:
        self.rng = np.random.default_rng([seed, 0x5EED])

    def act(self, obs: Any) -> tuple[Any, np.ndarray]:
        return random_action(self.space, self.rng), np.zeros(0, np.float32)


# ----------------------------------------------------------------------------- episodes
@dataclass
class Episode:
    """One finished episode: the figures for episodes.jsonl and the arrays for its .npz."""

    env_id: str
    env_kwargs: dict[str, Any]
    seed: int
    policy: str
    episode_return: float
    length: int
    terminated: bool
    truncated: bool
    wall_time_s: float
    arrays: dict[str, np.ndarray] = field(repr=False)
    frames: list[np.ndarray] = field(default_factory=list, repr=False)
    render_error: str | None = None

    def meta(self) -> dict[str, Any]:
        return {
            "format": RECORD_FORMAT,
            "env_id": self.env_id,
            "env_kwargs": self.env_kwargs,
            "seed": self.seed,
            "policy": self.policy,
            "return": self.episode_return,
            "length": self.length,
        }


def supports_rgb(env: gym.Env) -> bool:
    return "rgb_array" in (env.metadata or {}).get("render_modes", [])


def make_env(env_id: str, env_kwargs: dict[str, Any], render: bool) -> gym.Env:
    """The plain single env an episode runs in; with render=True, made to render rgb frames."""
    if render:
        # pygame (CartPole's renderer) needs neither a display nor a sound card for rgb frames
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
        os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
        probe = envs.make(env_id, **env_kwargs)
        rgb = supports_rgb(probe)
        probe.close()
        if rgb:
            return envs.make(env_id, **{**env_kwargs, "render_mode": "rgb_array"})
    return envs.make(env_id, **env_kwargs)


def run_episode(
    policy: Any,
    env_id: str,
    env_kwargs: dict[str, Any],
    seed: int,
    render: bool = False,
    max_steps: int = 1_000_000,
    policy_name: str = "",
) -> Episode:
    """Run one episode from `env.reset(seed=seed)` and record it (frames too when render)."""
    env = make_env(env_id, env_kwargs, render)
    start = time.perf_counter()
    try:
        policy.reset(seed)
        obs, _ = env.reset(seed=seed)
        frames = []
        rendering = render and env.render_mode == "rgb_array"
        render_error = None
        if rendering:
            try:
                frames.append(np.asarray(env.render()))
            except Exception as exc:  # e.g. pygame missing: keep the episode, skip the video
                rendering, render_error = False, f"{type(exc).__name__}: {exc}"
        hashes = [observation_hash(obs)]
        # copies: an env may hand out the same buffer at every step
        observations: list[Any] | None = [obs.copy()] if isinstance(obs, np.ndarray) else None
        obs_bytes = np.asarray(obs).nbytes
        actions, rewards, terms, truncs, outputs = [], [], [], [], []
        targets, output_steps = [], []
        terminated = truncated = False
        while not (terminated or truncated) and len(actions) < max_steps:
            action, scores = policy.act(obs)
            obs, reward, terminated, truncated, info = env.step(action)
            actions.append(np.asarray(action))
            rewards.append(float(reward))
            terms.append(bool(terminated))
            truncs.append(bool(truncated))
            outputs.append(np.asarray(scores, np.float32))
            hashes.append(observation_hash(obs))
            if observations is not None:
                observations.append(np.array(obs))
                obs_bytes += np.asarray(obs).nbytes
                if obs_bytes > MAX_STORED_OBS_BYTES or not isinstance(obs, np.ndarray):
                    observations = None  # too big (Atari) or structured: keep hashes only
            if "target" in info:
                targets.append(np.asarray(info["target"]))
                output_steps.append(bool(info.get("output_step", True)))
            if rendering:
                frames.append(np.asarray(env.render()))
    finally:
        env.close()
    arrays: dict[str, np.ndarray] = {
        "actions": np.stack(actions) if actions else np.zeros(0, np.int64),
        "rewards": np.asarray(rewards, np.float64),
        "terminated": np.asarray(terms, bool),
        "truncated": np.asarray(truncs, bool),
        "obs_hash": np.asarray(hashes, np.uint64),
        "agent_outputs": np.stack(outputs) if outputs else np.zeros((0, 0), np.float32),
    }
    if observations is not None:
        arrays["observations"] = np.stack([np.asarray(o) for o in observations])
    if targets and len(targets) == len(actions):
        arrays["targets"] = np.stack(targets)
        arrays["output_step"] = np.asarray(output_steps, bool)
    return Episode(
        env_id=env_id,
        env_kwargs=dict(env_kwargs),
        seed=int(seed),
        policy=policy_name,
        episode_return=float(np.sum(rewards)),
        length=len(actions),
        terminated=bool(terminated),
        truncated=bool(truncated),
        wall_time_s=time.perf_counter() - start,
        arrays=arrays,
        frames=frames,
        render_error=render_error,
    )


def save_episode(path: Path, episode: Episode, extra_meta: dict[str, Any] | None = None) -> None:
    meta = {**episode.meta(), **(extra_meta or {})}
    arrays = {**episode.arrays, "meta": np.asarray(json.dumps(meta))}
    atomic_write(path, lambda f: np.savez_compressed(f, **arrays))


class EpisodeFileError(ValueError):
    """An episode file that cannot be read (the message names the file and what is wrong)."""


def load_episode(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(meta, arrays) of a saved episode; never unpickles anything. The meta and the arrays are
    checked against each other (types, lengths), so a replay of a damaged or hand-made file stops
    here with a message instead of failing somewhere inside the env."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except Exception as exc:  # OSError, ValueError, BadZipFile, EOFError: any unreadable file
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise EpisodeFileError(
            f"cannot read episode file '{path}' ({detail}); it is not an intact .npz written "
            "by memrl evaluate."
        ) from None
    needed = {"meta", "actions", "rewards", "terminated", "truncated", "obs_hash"}
    if not needed <= set(arrays):
        raise EpisodeFileError(
            f"'{path}' is not a memrl episode file: it lacks {sorted(needed - set(arrays))}."
        )
    meta = _read_meta(path, arrays.pop("meta"))
    _check_arrays(path, arrays)
    return meta, arrays


def _read_meta(path: Path, raw: np.ndarray) -> dict[str, Any]:
    if raw.dtype.kind != "U" or raw.ndim != 0:
        raise EpisodeFileError(f"'{path}': 'meta' must be a JSON string, got a {raw.dtype} array.")
    try:
        meta = json.loads(str(raw))
    except json.JSONDecodeError as exc:
        raise EpisodeFileError(f"'{path}': 'meta' is not valid JSON ({exc}).") from None
    if not isinstance(meta, dict):
        raise EpisodeFileError(
            f"'{path}': 'meta' must be a JSON object, got {type(meta).__name__}."
        )
    rules = {
        "env_id": (lambda v: isinstance(v, str) and bool(v), "a non-empty string"),
        "env_kwargs": (lambda v: isinstance(v, dict), "an object (the env's kwargs)"),
        "seed": (
            lambda v: isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**63,
            "an integer in [0, 2**63)",
        ),
        "return": (
            lambda v: isinstance(v, int | float) and not isinstance(v, bool),
            "a number",
        ),
    }
    for key, (ok, what) in rules.items():
        if key not in meta:
            raise EpisodeFileError(f"'{path}': 'meta' has no '{key}' ({what}).")
        if not ok(meta[key]):
            shown = repr(meta[key])[:80]
            raise EpisodeFileError(f"'{path}': meta '{key}' must be {what}, got {shown}.")
    return meta


def _check_arrays(path: Path, arrays: dict[str, np.ndarray]) -> None:
    steps = len(arrays["rewards"]) if arrays["rewards"].ndim == 1 else -1
    if steps < 0:
        raise EpisodeFileError(f"'{path}': 'rewards' must be one-dimensional.")
    for key in ("actions", "terminated", "truncated"):
        if arrays[key].ndim == 0 or len(arrays[key]) != steps:
            raise EpisodeFileError(
                f"'{path}': '{key}' holds {len(arrays[key]) if arrays[key].ndim else 0} entries, "
                f"but 'rewards' holds {steps} steps; the file is damaged."
            )
    if arrays["obs_hash"].ndim != 1 or len(arrays["obs_hash"]) != steps + 1:
        raise EpisodeFileError(
            f"'{path}': 'obs_hash' must hold {steps + 1} hashes (one per observation), got "
            f"{arrays['obs_hash'].shape}; the file is damaged."
        )
    for key in ("actions", "rewards"):
        if arrays[key].dtype.kind not in "biuf":
            raise EpisodeFileError(f"'{path}': '{key}' must be numeric, got {arrays[key].dtype}.")
