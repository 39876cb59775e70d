"""Atari 2600 games (any `ALE/<Game>-v5` id) with the standard DQN preprocessing.

Preprocessing as in Mnih et al. 2015 and Machado et al. 2018: 84x84 grayscale frames, frame skip 4
with a max over the last two frames, a stack of the last 4 frames (zeros before an episode's first
frame), up to 30 no-op actions at reset, FIRE at reset in games that need it, and episodes capped
at 27,000 agent steps (108,000 frames). Observations are uint8 [4, 84, 84].

Two paths build the same observations:
- `AtariTrainingEnv`: ale-py's C++ vector env (`ale_py.vector_env.AtariVectorEnv`), which steps
  many games on threads with no Python per env. Rollout workers use it. It adds the training-only
  signals: rewards clipped to their sign, and a lost life marked `terminated` for the learner while
  the game goes on (no reset); `info["episode"]` reports whole games with their true scores.
- `make_atari`: a plain Gymnasium env with Gymnasium's own wrappers, for evaluation, recording and
  replaying episodes. It always reports true scores and ends episodes at game over only.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode

ATARI_ID = re.compile(r"^ALE/([A-Za-z0-9]+)-v5$")


@dataclass(frozen=True)
class AtariOptions:
    """`env.kwargs` for an ALE id. episodic_life and clip_rewards apply to training only."""

    noop_max: int = 30
    frame_skip: int = 4
    frame_stack: int = 4
    screen_size: int = 84
    # ALE v5's sticky actions (Machado et al. 2018); 0.0 gives the deterministic Nature setting.
    repeat_action_probability: float = 0.25
    max_episode_steps: int = 27_000  # agent steps (x frame_skip = 108,000 frames)
    episodic_life: bool = True
    clip_rewards: bool = True
    fire_reset: bool = True
    full_action_space: bool = False
    num_threads: int = 0  # threads stepping the games in a worker (0 = ale-py's choice)

    def validate(self) -> None:
        if self.frame_skip < 1 or self.frame_stack < 1 or self.screen_size < 8:
            raise ValueError("frame_skip and frame_stack must be >= 1 and screen_size >= 8")
        if self.noop_max < 0 or self.max_episode_steps < 1 or self.num_threads < 0:
            raise ValueError("noop_max and num_threads must be >= 0, max_episode_steps >= 1")
        if not 0.0 <= self.repeat_action_probability < 1.0:
            raise ValueError(
                f"repeat_action_probability must be in [0, 1), got {self.repeat_action_probability}"
            )


def is_atari(env_id: str) -> bool:
    return isinstance(env_id, str) and env_id.startswith("ALE/")


def game_name(env_id: str) -> str:
    """'ALE/MsPacman-v5' -> 'ms_pacman', checked against the ROMs ale-py ships."""
    from ale_py import roms

    match = ATARI_ID.match(env_id)
    games = roms.get_all_rom_ids()
    if match is None:
        raise ValueError(
            f"'{env_id}' is not an Atari id memrl preprocesses; use the form ALE/<Game>-v5, "
            "e.g. ALE/Pong-v5 or ALE/Breakout-v5."
        )
    name = re.sub(r"(?<!^)(?=[A-Z])", "_", match.group(1)).lower()
    if name not in games:
        camel = ["ALE/" + "".join(p.title() for p in g.split("_")) + "-v5" for g in games]
        close = difflib.get_close_matches(env_id, camel, n=3, cutoff=0.6)
        hint = f" Closest: {', '.join(close)}." if close else ""
        raise ValueError(f"ale-py has no game '{name}' (from '{env_id}').{hint}")
    return name


def atari_options(kwargs: dict[str, Any]) -> AtariOptions:
    valid = [f.name for f in dataclasses.fields(AtariOptions)]
    for key in kwargs:
        if key not in valid:
            close = difflib.get_close_matches(key, valid, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise ValueError(
                f"unknown Atari option '{key}'.{hint} Valid env.kwargs: {', '.join(valid)}."
            )
    options = AtariOptions(**kwargs)
    options.validate()
    return options


class FireReset(gym.Wrapper):
    """Press FIRE after reset in games that wait for it (Breakout), as ale-py's vector env does."""

    def reset(self, **kwargs: Any) -> tuple[Any, dict]:
        self.env.reset(**kwargs)
        obs, _, terminated, truncated, info = self.env.step(1)
        if terminated or truncated:
            obs, info = self.env.reset()
        return obs, info


def make_atari(env_id: str, render_mode: str | None = None, **kwargs: Any) -> gym.Env:
    """One preprocessed game for evaluation and recording: true scores, whole games."""
    import ale_py
    from gymnasium.wrappers import AtariPreprocessing, FrameStackObservation, TimeLimit

    gym.register_envs(ale_py)
    o = atari_options(kwargs)
    game_name(env_id)
    env = gym.make(
        env_id,
        frameskip=1,
        repeat_action_probability=o.repeat_action_probability,
        full_action_space=o.full_action_space,
        max_num_frames_per_episode=o.max_episode_steps * o.frame_skip,
        max_episode_steps=None,
        render_mode=render_mode,
    )
    env = AtariPreprocessing(
        env,
        noop_max=o.noop_max,
        frame_skip=o.frame_skip,
        screen_size=o.screen_size,
        terminal_on_life_loss=False,
        grayscale_obs=True,
        scale_obs=False,
    )
    if o.fire_reset and "FIRE" in env.unwrapped.get_action_meanings():
        env = FireReset(env)
    env = TimeLimit(env, o.max_episode_steps)
    return FrameStackObservation(env, o.frame_stack, padding_type="zero")


class AtariTrainingEnv(gym.vector.VectorEnv):
    """ale-py's vector env with DQN's training signals, same-step autoreset.

    `step` returns clipped rewards (if clip_rewards) and `terminated` also on a lost life (if
    episodic_life) without resetting the game. `info["final_obs"]` / `info["_final_obs"]` hold the
    last observation of the envs that were really reset (game over or time limit);
    `info["episode"]` = {"r": true score, "l": agent steps, "_r": mask} for finished games.
    """

    reports_episodes = True  # info["episode"] holds whole games; rewards are clipped

    def __init__(self, env_id: str, num_envs: int, **kwargs: Any):
        from ale_py.vector_env import AtariVectorEnv

        o = self.options = atari_options(kwargs)
        self.env = AtariVectorEnv(
            game_name(env_id),
            num_envs,
            num_threads=o.num_threads,
            max_num_frames_per_episode=o.max_episode_steps * o.frame_skip,
            repeat_action_probability=o.repeat_action_probability,
            full_action_space=o.full_action_space,
            autoreset_mode=AutoresetMode.SAME_STEP,
            img_height=o.screen_size,
            img_width=o.screen_size,
            stack_num=o.frame_stack,
            frameskip=o.frame_skip,
            noop_max=o.noop_max,
            episodic_life=False,
            reward_clipping=False,
            use_fire_reset=o.fire_reset,
        )
        self.num_envs = num_envs
        self.single_observation_space = self.env.single_observation_space
        self.single_action_space = self.env.single_action_space
        self.observation_space = self.env.observation_space
        self.action_space = self.env.action_space
        self.metadata = {"autoreset_mode": AutoresetMode.SAME_STEP}
        self.lives = np.zeros(num_envs, np.int64)
        self.score = np.zeros(num_envs, np.float64)
        self.length = np.zeros(num_envs, np.int64)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[Any, dict]:
        obs, info = self.env.reset(seed=seed, options=options)
        self.lives = np.asarray(info["lives"]).copy()
        self.score[:] = 0.0
        self.length[:] = 0
        return obs, info

    def step(self, actions: np.ndarray) -> tuple[Any, ...]:
        self.step_async(actions)
        return self.step_wait()

    def step_async(self, actions: np.ndarray) -> None:
        """Start a step on ale-py's threads and return at once."""
        self.env.send(np.asarray(actions, np.int64))

    def step_wait(self) -> tuple[Any, ...]:
        obs, rewards, terminated, truncated, info = self.env.recv()
        rewards = np.asarray(rewards, np.float64)
        game_over = terminated | truncated
        self.score += rewards
        self.length += 1
        lives = np.asarray(info["lives"])
        signal_terminated = terminated.copy()
        if self.options.episodic_life:
            signal_terminated |= ~game_over & (lives < self.lives)
        self.lives = lives.copy()
        if self.options.clip_rewards:
            rewards = np.sign(rewards)
        if game_over.any():
            info["_final_obs"] = game_over  # ale-py's final_obs is filled for these envs
            info["episode"] = {
                "r": np.where(game_over, self.score, 0.0),
                "l": np.where(game_over, self.length, 0),
                "_r": game_over,
            }
            self.score[game_over] = 0.0
            self.length[game_over] = 0
        else:
            info.pop("final_obs", None)
        return obs, rewards.astype(np.float32), signal_terminated, truncated, info

    def close(self, **kwargs: Any) -> None:
        self.env.close()


def _merge_infos(first: dict, second: dict, sizes: tuple[int, int]) -> dict:
    """One info dict for two halves' step results (arrays joined along the env axis)."""
    merged: dict[str, Any] = {}
    for key in first.keys() | second.keys():
        parts = []
        for info, n in ((first, sizes[0]), (second, sizes[1])):
            value = info.get(key)
            if key == "episode":
                value = value or {
                    "r": np.zeros(n),
                    "l": np.zeros(n, np.int64),
                    "_r": np.zeros(n, bool),
                }
            elif value is None:  # a key only the other half reported this step
                like = (first if info is second else second)[key]
                value = np.zeros((n, *np.shape(like)[1:]), np.asarray(like).dtype)
            parts.append(value)
        if key == "episode":
            merged[key] = {k: np.concatenate([parts[0][k], parts[1][k]]) for k in parts[0]}
        else:
            merged[key] = np.concatenate(parts)
    return merged


class AtariPipeline:
    """A worker's games in two halves stepped alternately, so the policy's inference for one
    half runs while ale-py's threads step the other (a plain loop waits for one, then the
    other). `step(policy, obs)` steps every env once and returns what AtariTrainingEnv.step
    returns, plus the actions taken. Half A's actions for the next step are chosen while half B
    steps, before the caller sees this step's results: only for policies without memory state.
    """

    reports_episodes = True

    def __init__(self, env_id: str, num_envs: int, **kwargs: Any):
        if num_envs < 2:
            raise ValueError("a pipelined Atari worker needs at least 2 envs")
        self.split = num_envs // 2
        self.halves = (
            AtariTrainingEnv(env_id, self.split, **kwargs),
            AtariTrainingEnv(env_id, num_envs - self.split, **kwargs),
        )
        self.num_envs = num_envs
        self.single_observation_space = self.halves[0].single_observation_space
        self.single_action_space = self.halves[0].single_action_space
        self.pending: np.ndarray | None = None  # half A's actions in flight

    def reset(self, *, seed: int | None = None) -> tuple[np.ndarray, dict]:
        self._drain()
        first, second = self.halves
        obs_a, info_a = first.reset(seed=seed)
        obs_b, info_b = second.reset(seed=None if seed is None else seed + self.split)
        sizes = (self.split, self.num_envs - self.split)
        return np.concatenate([obs_a, obs_b]), _merge_infos(info_a, info_b, sizes)

    def step(self, policy: Any, obs: np.ndarray) -> tuple[np.ndarray, tuple[Any, ...]]:
        first, second = self.halves
        s = self.split
        if self.pending is None:
            self.pending = np.asarray(policy(obs[:s]))
            first.step_async(self.pending)
        actions_b = np.asarray(policy(obs[s:]))  # while half A steps
        second.step_async(actions_b)
        result_a = first.step_wait()
        actions = np.concatenate([self.pending, actions_b])
        self.pending = np.asarray(policy(result_a[0]))  # half A's next step, while B steps
        first.step_async(self.pending)
        result_b = second.step_wait()
        merged = tuple(np.concatenate([a, b]) for a, b in zip(result_a[:4], result_b[:4]))
        info = _merge_infos(result_a[4], result_b[4], (s, self.num_envs - s))
        return actions, (*merged, info)

    def _drain(self) -> None:
        if self.pending is not None:
            self.halves[0].step_wait()
            self.pending = None

    def close(self) -> None:
        self._drain()
        for half in self.halves:
            half.close()
