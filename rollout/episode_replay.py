"""`memrl replay EPISODE`: re-execute a recorded episode and check it step by step.

EPISODE is either `EVAL_DIR/episodes.jsonl#N` (the line whose "episode" is N, 0-based, as
`memrl evaluate` writes it) or the path of one episode file, `EVAL_DIR/episodes/episode_NNNN.npz`.

The episode's env is made again with `envs.make(env_id, **kwargs)`, reset with its seed, and
stepped with its recorded actions. Every reward, terminated/truncated flag and observation (its
hash, and the observation itself where it was stored) must be identical; the first difference
is reported with its step. With --render the replay is written as a video (MP4 or GIF).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rollout.episode_record import EpisodeFileError, load_episode, make_env, observation_hash


class ReplayError(ValueError):
    """A bad episode reference or file (a user error; the message says what is valid)."""


@dataclass
class ReplayResult:
    episode_file: Path
    meta: dict[str, Any]
    steps: int  # steps replayed (up to and including a mismatch)
    mismatch: str | None  # the first difference, or None for an exact match
    video: Path | None = None

    @property
    def matches(self) -> bool:
        return self.mismatch is None


SYNTAX = (
    "give EVAL_DIR/episodes.jsonl#N (N = the episode number in that file) or the path of an "
    "episode file EVAL_DIR/episodes/episode_NNNN.npz"
)


def resolve_episode(reference: str) -> Path:
    """The .npz file an EPISODE reference names (see the module docstring)."""
    if "#" in reference:
        listing, _, number = reference.rpartition("#")
        path = Path(listing)
        if not number.isdigit():
            raise ReplayError(
                f"bad episode reference '{reference}': '{number}' is not a number; {SYNTAX}."
            )
        if not path.is_file():
            raise ReplayError(f"episode list '{path}' does not exist; {SYNTAX}.")
        index = int(number)
        seen = []
        not_ours = ReplayError(f"'{path}' is not an episodes.jsonl file written by memrl evaluate.")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise not_ours from None
        for raw in text.splitlines():
            try:
                line = json.loads(raw)
            except (json.JSONDecodeError, RecursionError):
                raise not_ours from None
            if (
                not isinstance(line, dict)
                or not isinstance(line.get("data"), str)
                or not isinstance(line.get("episode"), int)
                or isinstance(line.get("episode"), bool)
            ):
                raise not_ours
            seen.append(line["episode"])
            if line["episode"] == index:
                return path.parent / line["data"]
        span = f"{min(seen)}-{max(seen)}" if seen else "none"
        raise ReplayError(f"'{path}' has no episode {index} (episodes in it: {span}).")
    path = Path(reference)
    if path.suffix != ".npz":
        raise ReplayError(f"bad episode reference '{reference}'; {SYNTAX}.")
    if not path.is_file():
        raise ReplayError(f"episode file '{path}' does not exist; {SYNTAX}.")
    return path


def _check_actions(path: Path, actions: np.ndarray, space: Any) -> None:
    """Every recorded action must lie in the env's action space (a damaged or hand-made file
    would otherwise fail inside the env, or step it with an action it never took)."""
    for t, action in enumerate(actions):
        try:
            cast = np.asarray(action).astype(space.dtype) if space.dtype else action
            ok = bool(space.contains(cast)) and np.array_equal(cast, np.asarray(action))
        except (TypeError, ValueError, OverflowError):
            ok = False
        if not ok:
            raise ReplayError(
                f"'{path}': recorded action {t} ({np.asarray(action).tolist()!r}) is not in the "
                f"env's action space {space}; the file is damaged or was not recorded in this env."
            )


def _describe_obs(step: int, recorded: dict[str, np.ndarray], obs: Any) -> str:
    where = "the reset observation" if step == 0 else f"the observation after step {step - 1}"
    stored = recorded.get("observations")
    if stored is not None and step < len(stored):
        got = np.asarray(obs)
        if got.shape != stored[step].shape:
            return f"{where} has shape {got.shape}, recorded {stored[step].shape}"
        diff = np.abs(got.astype(np.float64) - stored[step].astype(np.float64))
        i = np.unravel_index(int(np.argmax(diff)), diff.shape)
        return (
            f"{where} differs in {int(np.count_nonzero(diff))} elements (e.g. index "
            f"{tuple(int(k) for k in i)}: replayed {got[i]!r}, recorded {stored[step][i]!r})"
        )
    return f"{where} differs (observation hash {observation_hash(obs):#x}, recorded {int(recorded['obs_hash'][step]):#x})"


def replay_episode(reference: str, render: str | None = None, trust: bool = False) -> ReplayResult:
    """Replay the episode `reference` names. `render`: a video path ('' = beside the episode
    file, as <name>_replay.mp4), or None for no video. The episode's env spec is data: unless
    `trust`, a `module:Class` spec is refused before anything is imported (envs.refuse_untrusted)."""
    path = resolve_episode(reference)
    if render:
        video_path = Path(render)
        if video_path.suffix not in (".mp4", ".gif"):
            raise ReplayError(f"--render writes .mp4 or .gif, not '{video_path.name}'.")
    try:
        meta, rec = load_episode(path)
    except EpisodeFileError as exc:
        raise ReplayError(str(exc)) from None
    import envs

    try:
        if not trust:
            envs.refuse_untrusted(
                meta["env_id"], f"the episode file '{path}' (meta env_id)", "pass --trust"
            )
        env = make_env(meta["env_id"], meta["env_kwargs"], render is not None)
    except envs.EnvSpecError as exc:
        raise ReplayError(f"cannot make the episode's env again: {exc}") from None
    try:
        _check_actions(path, rec["actions"], env.action_space)
    except ReplayError:
        env.close()
        raise
    frames: list[np.ndarray] = []
    rendering = render is not None and env.render_mode == "rgb_array"
    actions, count = rec["actions"], len(rec["rewards"])
    mismatch: str | None = None
    steps = 0
    try:
        obs, _ = env.reset(seed=int(meta["seed"]))
        if rendering:
            frames.append(np.asarray(env.render()))
        if observation_hash(obs) != int(rec["obs_hash"][0]):
            mismatch = "step 0: " + _describe_obs(0, rec, obs)
        for t in range(count):
            if mismatch:
                break
            obs, reward, terminated, truncated, _ = env.step(actions[t])
            steps = t + 1
            if rendering:
                frames.append(np.asarray(env.render()))
            if float(reward) != float(rec["rewards"][t]):
                mismatch = f"step {t}: reward {float(reward)!r} replayed, {float(rec['rewards'][t])!r} recorded"
            elif bool(terminated) != bool(rec["terminated"][t]) or bool(truncated) != bool(
                rec["truncated"][t]
            ):
                mismatch = (
                    f"step {t}: terminated={bool(terminated)}, truncated={bool(truncated)} replayed, "
                    f"terminated={bool(rec['terminated'][t])}, truncated={bool(rec['truncated'][t])} recorded"
                )
            elif observation_hash(obs) != int(rec["obs_hash"][t + 1]):
                mismatch = f"step {t}: " + _describe_obs(t + 1, rec, obs)
    finally:
        env.close()
    video = None
    if rendering and frames:
        from rollout.evaluation import write_video

        video = Path(render) if render else path.with_name(f"{path.stem}_replay.mp4")
        if video.suffix not in (".mp4", ".gif"):
            raise ReplayError(f"--render writes .mp4 or .gif, not '{video.name}'.")
        fps = float(env.metadata.get("render_fps") or 30)
        write_video(frames, video, fps)
    return ReplayResult(path, meta, steps, mismatch, video)
