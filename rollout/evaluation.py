"""`memrl evaluate`: a run's agent in recorded, replayable episodes.

Loads RUN_DIR/config.yaml and one checkpoint (a numbered one, the newest, or `best`), runs
`episodes` episodes in plain single envs seeded `seed, seed+1, ...` (rollout.episode_record),
and writes RUN_DIR/evaluation/<time>/:

    episodes.jsonl      one line per episode: env, kwargs, seed, return, length, wall time,
                        checkpoint step, and the path of its episodes/episode_NNNN.npz
    episodes/           the .npz per episode (actions, rewards, observation hashes, outputs)
    summary.json        mean, std, median, min, max and a 95% bootstrap CI of the returns
    recordings/         the first RECORDED_EPISODES episodes: MP4 (--record video) or GIF
                        (--record frames) for envs that render rgb frames; for the memory tasks a
                        PNG of inputs, targets, outputs and the NTM's read/write weightings
    return_histogram.png, report.html (one self-contained page: rollout.report_html)
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

import envs
from agents import AgentError, make_agent
from envs.files import atomic_write, atomic_write_text, fsync_dir
from rollout.checkpoints import MARKER, complete_checkpoints, latest_checkpoint, load_checkpoint
from rollout.config import ConfigError, build_config, read_yaml
from rollout.episode_record import AgentPolicy, Episode, Sampling, run_episode, save_episode
from rollout.progress import stderr_console
from rollout.run_dir import RunDir

RECORDED_EPISODES = 3  # episodes rendered to video / pictures (every episode is replayable)
BEST = "best"  # checkpoints/best/: the weights of the best evaluation during training
BOOTSTRAP_SAMPLES = 10_000


class EvaluationError(ValueError):
    """A user error in `memrl evaluate` (run dir, checkpoint, options); the message says which."""


@dataclass
class EvaluationOptions:
    # N (env steps) | latest | best | a checkpoint folder; None: best if the run has one, else
    # latest (resolve_checkpoint)
    checkpoint: str | None = None
    episodes: int = 10
    seed: int = 0
    record: str = "video"  # video | frames | none
    sampling: Sampling = field(default_factory=Sampling)
    env_overrides: dict[str, Any] = field(default_factory=dict)
    # allow the run folder's env.id to be a module:Class plug-in (envs.refuse_untrusted)
    trust: bool = False


PROGRESS_EVERY_S = 10.0  # a progress line this often when stderr is not a terminal
MAX_EPISODES = 100_000  # episodes.jsonl and one .npz per episode: more is a typo


# ----------------------------------------------------------------------------- checkpoints
def open_run(path: str | Path) -> RunDir:
    run = RunDir(Path(path))
    if not run.path.is_dir():
        raise EvaluationError(f"run directory '{path}' does not exist.")
    if not run.exists():
        raise EvaluationError(f"'{path}' is not a memrl run directory (no config.yaml in it).")
    return run


def resolve_checkpoint(run: RunDir, which: str | None) -> Path:
    """The checkpoint folder that `--checkpoint which` names: N (a checkpoint's env step),
    'latest', 'best', or the path of a complete checkpoint folder. None picks 'best' when the run
    has one (the weights of its best evaluation; training can end in a late dip), else 'latest'."""
    steps = [int(p.name) for p in complete_checkpoints(run.checkpoints)]
    has_best = (run.checkpoints / BEST / MARKER).is_file()
    available = ", ".join([*(str(s) for s in steps), *(["best"] if has_best else [])]) or "none"
    if which is None:
        which = BEST if has_best else "latest"
    if which == "latest":
        path = latest_checkpoint(run.checkpoints)
        if path is None:
            raise EvaluationError(
                f"run '{run.path}' has no complete checkpoint in {run.checkpoints}; "
                "train it first (memrl train) or resume it until a checkpoint is written."
            )
        return path
    if which == BEST:
        if not has_best:
            raise EvaluationError(
                f"run '{run.path}' has no 'best' checkpoint (it is written by the periodic "
                f"evaluation during training). Available checkpoints: {available}."
            )
        return run.checkpoints / BEST
    if not which.isdigit():
        folder = Path(which)
        if folder.is_dir() and (folder / MARKER).is_file():  # a checkpoint folder by its path
            return folder
        raise EvaluationError(
            f"--checkpoint must be N (a checkpoint's env step), 'latest' or 'best', or the path "
            f"of a complete checkpoint folder (RUN/checkpoints/N), got '{which}'. Available "
            f"checkpoints: {available}."
        )
    if int(which) not in steps:
        raise EvaluationError(
            f"run '{run.path}' has no complete checkpoint at env step {int(which)}. "
            f"Available checkpoints: {available}."
        )
    return run.checkpoints / f"{int(which):012d}"


def run_config(run: RunDir, trust: bool, consent: str = "pass --trust") -> Any:
    """The run folder's config.yaml, validated; its env spec is data, so a `module:Class` spec
    is refused unless `trust` (envs.refuse_untrusted; `consent` says how to give it)."""
    try:
        cfg = build_config(read_yaml(run.config), source=str(run.config))
    except ConfigError as exc:
        raise EvaluationError(str(exc)) from None
    if not trust:
        envs.refuse_untrusted(
            cfg.env.id, f"the run folder's config '{run.config}' (key env.id)", consent
        )
    return cfg


def load_agent(cfg: Any, checkpoint: Path, env_kwargs: dict[str, Any]) -> tuple[Any, int]:
    """The config's agent with the checkpoint's weights, and the env step they were saved at."""
    probe = envs.make(cfg.env.id, **env_kwargs)
    agent = make_agent(cfg.agent, probe.observation_space, probe.action_space)
    probe.close()
    state = load_checkpoint(checkpoint)  # torch.load(weights_only=True)
    try:
        if "best" in state:  # written by rollout.periodic_evaluation: acting weights only
            agent.load_acting_state_dict(state["best"]["agent"])
            step = int(state["best"]["env_steps"])
        else:
            agent.load_state_dict(state["learner"]["agent"])
            step = int(state["counters"]["env_steps"])
    except (RuntimeError, AgentError, KeyError) as exc:
        raise EvaluationError(
            f"the weights in checkpoint '{checkpoint}' do not fit agent '{cfg.agent.name}' on "
            f"'{cfg.env.id}' with kwargs {env_kwargs} (an --env-override that changes the "
            f"observation or action space cannot be evaluated): {str(exc).splitlines()[0]}"
        ) from None
    return agent.eval(), step


# ----------------------------------------------------------------------------- statistics
def describe_returns(values: list[float], seed: int = 0) -> dict[str, Any]:
    """Mean, std (ddof 1), median, min, max and a 95% percentile-bootstrap CI of the mean."""
    x = np.asarray(values, np.float64)
    if len(x) == 0:
        raise ValueError("no values to describe")
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, len(x), (BOOTSTRAP_SAMPLES, len(x)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return {
        "mean": float(x.mean()),
        "std": float(x.std(ddof=1)) if len(x) > 1 else 0.0,
        "median": float(np.median(x)),
        "min": float(x.min()),
        "max": float(x.max()),
        "ci95": [float(low), float(high)],
        "n": len(x),
    }


def summary_table(summary: dict[str, Any]) -> Table:
    table = Table(
        title=f"{summary['agent']} on {summary['env_id']}: {summary['episodes']} episodes, "
        f"checkpoint {summary['checkpoint']} (env step {summary['checkpoint_step']:,}), "
        f"{summary['policy']}"
    )
    for col in ("", "mean", "std", "median", "min", "max", "95% CI (bootstrap)"):
        table.add_column(col, justify="right")
    for name in ("return", "length"):
        s = summary[name]
        table.add_row(
            name,
            *(f"{s[k]:.4g}" for k in ("mean", "std", "median", "min", "max")),
            f"[{s['ci95'][0]:.4g}, {s['ci95'][1]:.4g}]",
        )
    return table


# ----------------------------------------------------------------------------- recordings
def write_video(frames: list[np.ndarray], path: Path, fps: float) -> Path:
    """MP4 (H.264 through imageio-ffmpeg) for .mp4 paths, an animated GIF otherwise."""
    import imageio.v2 as imageio

    if path.suffix == ".mp4":
        # ffmpeg writes to a named .mp4 file: a temp one beside the target, then renamed
        tmp = path.with_name(f".{path.stem}.tmp.mp4")
        try:
            writer = imageio.get_writer(
                tmp, format="FFMPEG", fps=fps, codec="libx264", macro_block_size=2, quality=7
            )
            try:
                for frame in frames:
                    writer.append_data(frame)
            finally:
                writer.close()
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        fsync_dir(path.parent)
        return path
    step = max(1, int(np.ceil(len(frames) / 300)))  # at most ~300 GIF frames
    shown = frames[::step]

    def gif(f: Any) -> None:
        imageio.mimwrite(f, shown, format="GIF", duration=1000.0 * step / fps, loop=0)

    atomic_write(path, gif)
    return path


def memory_task_picture(agent: Any, episode: Episode, path: Path) -> Path | None:
    """Inputs, targets, outputs and (NTM) weightings of a recorded memory-task episode."""
    from rollout.sequence_report import plot_sequence_trace

    a = episode.arrays
    if "targets" not in a or "observations" not in a or not hasattr(agent, "core"):
        return None
    inputs = a["observations"][:-1].astype(np.float32)  # the observation before each step
    outputs = 1.0 / (1.0 + np.exp(-a["agent_outputs"].astype(np.float64)))
    targets = a["targets"]
    if getattr(agent, "symbols", False):  # symbol tasks: softmax outputs, one-hot targets
        logits = a["agent_outputs"].astype(np.float64)
        outputs = np.exp(logits - logits.max(-1, keepdims=True))
        outputs /= outputs.sum(-1, keepdims=True)
        targets = np.eye(outputs.shape[-1])[targets.reshape(len(targets)).astype(np.int64)]
    weights, extra = [], []
    if hasattr(agent, "trace_panels"):  # the agent draws its own memory (the stack RNN)
        extra = agent.trace_panels(agent.trace(torch.as_tensor(inputs[:, None])))
    elif hasattr(agent, "trace"):  # the env's inputs do not depend on actions: one pass
        traced = agent.trace(torch.as_tensor(inputs[:, None]))
        weights = [
            ("write weighting", traced["write_weights"][:, 0, 0].numpy()),
            ("read weighting", traced["read_weights"][:, 0, 0].numpy()),
        ]
    mask = a["output_step"].astype(np.float32)
    title = (
        f"{episode.env_id} seed {episode.seed}: return {episode.episode_return:.4g}, "
        f"{episode.length} steps"
    )
    plot_sequence_trace(
        inputs, targets * mask[:, None], mask, outputs, weights, title, path, panels_after=extra
    )
    return path


def record(agent: Any, episode: Episode, mode: str, folder: Path, index: int) -> Path | None:
    folder.mkdir(parents=True, exist_ok=True)
    name = f"episode_{index:04d}"
    if episode.frames:
        fps = float(envs.make(episode.env_id, **episode.env_kwargs).metadata.get("render_fps", 30))
        suffix = ".mp4" if mode == "video" else ".gif"
        return write_video(episode.frames, folder / f"{name}{suffix}", fps or 30)
    return memory_task_picture(agent, episode, folder / f"{name}.png")


def _plot_returns(returns: list[float], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    bins = min(20, max(1, len(set(returns))))
    ax.hist(returns, bins=bins, color="#4477aa", edgecolor="white")
    ax.axvline(float(np.mean(returns)), color="#cc3311", label=f"mean {np.mean(returns):.4g}")
    ax.set_xlabel("episode return")
    ax.set_ylabel("episodes")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100))
    plt.close(fig)


def _output_dir(run: RunDir) -> Path:
    """A hidden folder to evaluate into; `_publish` gives it its time-stamped name once it is
    complete, so an evaluation killed outright (SIGKILL) leaves no folder that looks finished."""
    root = run.path / "evaluation"
    root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=".partial-", dir=root))


def _publish(partial: Path) -> Path:
    root = partial.parent
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path, n = root / stamp, 1
    while True:
        try:
            path.mkdir()  # claims the name; the rename below replaces the empty folder
        except FileExistsError:
            n += 1
            path = root / f"{stamp}-{n}"
            continue
        os.replace(partial, path)
        fsync_dir(root)
        return path


# ----------------------------------------------------------------------------- the command
def evaluate_run(
    run_path: str | Path, options: EvaluationOptions, console: Console | None = None
) -> tuple[Path, dict[str, Any]]:
    """Evaluate a run's checkpoint; returns the output folder and the summary."""
    console = console or stderr_console()
    if not 1 <= options.episodes <= MAX_EPISODES:
        raise EvaluationError(
            f"--episodes must be in 1..{MAX_EPISODES:,} (each episode is written as a file), "
            f"got {options.episodes:,}."
        )
    run = open_run(run_path)
    cfg = run_config(run, options.trust)
    checkpoint = resolve_checkpoint(run, options.checkpoint)
    env_kwargs = {**cfg.env.kwargs, **options.env_overrides}
    agent, step = load_agent(cfg, checkpoint, env_kwargs)
    how = "" if options.checkpoint is not None else " (the default: best if the run has one)"
    console.print(f"checkpoint {checkpoint} (env step {step:,}){how}", highlight=False)
    out = _output_dir(run)
    try:
        _, summary = _evaluate_into(
            out, run, cfg, checkpoint, step, agent, env_kwargs, options, console
        )
        return _publish(out), summary
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)  # no half-written evaluation folder
        raise


def _evaluate_into(
    out: Path,
    run: RunDir,
    cfg: Any,
    checkpoint: Path,
    step: int,
    agent: Any,
    env_kwargs: dict[str, Any],
    options: EvaluationOptions,
    console: Console,
) -> tuple[Path, dict[str, Any]]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    policy = AgentPolicy(agent, options.sampling)
    lines, episodes = [], []
    last_note = time.monotonic()
    with Progress(
        TextColumn("[bold]evaluate"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("episodes  {task.fields[info]}"),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("evaluate", total=options.episodes, info="")
        for i in range(options.episodes):
            rendered = options.record != "none" and i < RECORDED_EPISODES
            episode = run_episode(
                policy,
                cfg.env.id,
                env_kwargs,
                options.seed + i,
                render=rendered,
                policy_name=options.sampling.describe(),
            )
            data = Path("episodes") / f"episode_{i:04d}.npz"
            (out / "episodes").mkdir(exist_ok=True)
            save_episode(
                out / data, episode, {"checkpoint": checkpoint.name, "checkpoint_step": step}
            )
            line = {
                "episode": i,
                **{k: v for k, v in episode.meta().items() if k != "format"},
                "terminated": episode.terminated,
                "truncated": episode.truncated,
                "wall_time_s": round(episode.wall_time_s, 4),
                "checkpoint": checkpoint.name,
                "checkpoint_step": step,
                "data": str(data),
            }
            if episode.render_error and i == 0:
                console.print(
                    f"[yellow]no video: {cfg.env.id} failed to render ({episode.render_error})",
                    highlight=False,
                )
            if rendered:
                recording = record(agent, episode, options.record, out / "recordings", i)
                if recording is not None:
                    line["recording"] = str(recording.relative_to(out))
            lines.append(line)
            episodes.append(episode)
            bar.update(task, advance=1, info=f"last return {episode.episode_return:.4g}")
            if not console.is_terminal and time.monotonic() - last_note >= PROGRESS_EVERY_S:
                last_note = time.monotonic()  # the bar is invisible in a log: a line instead
                console.print(
                    f"evaluate: {i + 1:,}/{options.episodes:,} episodes, last return "
                    f"{episode.episode_return:.4g}",
                    highlight=False,
                )
    atomic_write_text(out / "episodes.jsonl", "".join(json.dumps(x) + "\n" for x in lines))
    returns = [e.episode_return for e in episodes]
    summary = {
        "run_dir": str(run.path),
        "env_id": cfg.env.id,
        "env_kwargs": env_kwargs,
        "agent": cfg.agent.name,
        "checkpoint": checkpoint.name,
        "checkpoint_step": step,
        "policy": options.sampling.describe(),
        "episodes": options.episodes,
        "seeds": [options.seed, options.seed + options.episodes - 1],
        "return": describe_returns(returns, options.seed),
        "length": describe_returns([e.length for e in episodes], options.seed),
        "wall_time_s": round(sum(e.wall_time_s for e in episodes), 3),
    }
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=1) + "\n")
    _plot_returns(returns, out / "return_histogram.png", f"{cfg.agent.name} on {cfg.env.id}")
    from rollout.report_html import write_report_html

    write_report_html(out, summary, lines)
    console.print(summary_table(summary))
    _split_report(agent, cfg.env.id, env_kwargs, out, console)
    return out, summary


def _split_report(
    agent: Any, env_id: str, env_kwargs: dict[str, Any], out: Path, console: Console
) -> None:
    """Dataset tasks are evaluated by their own protocol too: a full pass over the test split,
    grouped, written beside the episodes as test.json and test.md."""
    env = envs.make(env_id, **env_kwargs)
    try:
        task = env.unwrapped
        if hasattr(task, "dataset"):
            from rollout.dataset_evaluation import format_split_table, write_split_report

            report = write_split_report(agent, task, "test", out)
            console.print(format_split_table(report, "test"), highlight=False, markup=False)
    finally:
        env.close()
