"""The `memrl evaluate` and `memrl replay` subcommands (parsers and handlers; rollout.cli
dispatches to them). User errors exit 2 through `rollout.cli._fail`; a replay mismatch exits 1."""

from __future__ import annotations

import argparse
import signal
from typing import Any

import yaml
from rich.console import Console

TRUST_HELP = (
    "allow the {what}'s env spec to name a module:Class plug-in (code it imports); without it "
    "only registered ids and installed plug-ins are made"
)


def add_evaluation_parsers(sub: Any) -> None:
    evaluate = sub.add_parser(
        "evaluate",
        help="evaluate a run's checkpoint in recorded, replayable episodes",
        description=(
            "Load RUN_DIR/config.yaml and a checkpoint (best, else latest), run the agent "
            "greedily (or with --epsilon / --temperature, drawn from seeded generators) for "
            "--episodes episodes "
            "seeded SEED, SEED+1, ..., and write RUN_DIR/evaluation/<time>/: episodes.jsonl, "
            "episodes/*.npz, summary.json, recordings/ (the first 3 episodes) and report.html."
        ),
        epilog="examples:\n  memrl evaluate runs/dqn_cartpole-20261123-101500\n"
        "  memrl evaluate RUN_DIR --checkpoint best --episodes 50 --record none\n"
        "  memrl evaluate RUN_DIR --epsilon 0.05 --env-override max_episode_steps=200",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    evaluate.add_argument("run_dir", metavar="RUN_DIR")
    evaluate.add_argument(
        "--checkpoint",
        default=None,
        help="'best' (the default when the run has one: the weights of its best evaluation), "
        "'latest' (the default otherwise), N (the env step of a checkpoint) or a checkpoint "
        "folder's path",
    )
    evaluate.add_argument("--episodes", type=int, default=10, help="episodes (default 10)")
    evaluate.add_argument("--seed", type=int, default=0, help="seed of the first episode")
    evaluate.add_argument(
        "--record",
        choices=("video", "frames", "none"),
        default="video",
        help="recordings of the first 3 episodes: video = MP4, frames = animated GIF (pixel "
        "envs); memory tasks get PNG pictures of their grids and weightings with either",
    )
    how = evaluate.add_mutually_exclusive_group()
    how.add_argument("--epsilon", type=float, help="epsilon-greedy: random action with prob. E")
    how.add_argument("--temperature", type=float, help="sample softmax(scores / T)")
    evaluate.add_argument(
        "--env-override",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="change an env kwarg for this evaluation (repeatable), e.g. max_episode_steps=200",
    )
    evaluate.add_argument("--trust", action="store_true", help=TRUST_HELP.format(what="run folder"))

    replay = sub.add_parser(
        "replay",
        help="re-execute a recorded episode and check it matches exactly",
        description=(
            "Re-run a recorded episode from its seed and actions and check every reward, "
            "termination flag and observation. EPISODE is EVAL_DIR/episodes.jsonl#N or "
            "EVAL_DIR/episodes/episode_NNNN.npz. Exit status 0: exact match; 1: mismatch (the "
            "first difference is printed)."
        ),
        epilog="examples:\n  memrl replay runs/RUN/evaluation/20261123-120000/episodes.jsonl#3\n"
        "  memrl replay runs/RUN/evaluation/20261123-120000/episodes/episode_0003.npz --render",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    replay.add_argument("episode", metavar="EPISODE")
    replay.add_argument(
        "--render",
        nargs="?",
        const="",
        default=None,
        metavar="PATH",
        help="also write the replay as a video (.mp4 or .gif; default: beside the episode file)",
    )
    replay.add_argument("--trust", action="store_true", help=TRUST_HELP.format(what="episode"))


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def parse_env_overrides(items: list[str]) -> dict[str, Any]:
    from rollout.config import load_yaml_text
    from rollout.evaluation import EvaluationError

    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise EvaluationError(
                f"bad --env-override '{item}': write KEY=VALUE, e.g. max_episode_steps=200."
            )
        try:
            out[key] = load_yaml_text(raw) if raw else ""
        except yaml.YAMLError:
            out[key] = raw
    return out


def cmd_evaluate(args: argparse.Namespace, err: Console) -> int:
    import envs
    from agents import AgentError
    from rollout.checkpoints import CheckpointError
    from rollout.cli import _fail
    from rollout.episode_record import Sampling
    from rollout.evaluation import EvaluationError, EvaluationOptions, evaluate_run

    sampling = Sampling()
    if args.epsilon is not None:
        if not 0.0 <= args.epsilon <= 1.0:
            return _fail(err, f"--epsilon must be in [0, 1], got {args.epsilon}.")
        sampling = Sampling("epsilon", args.epsilon)
    if args.temperature is not None:
        if not args.temperature > 0:
            return _fail(err, f"--temperature must be > 0, got {args.temperature}.")
        sampling = Sampling("temperature", args.temperature)
    try:
        options = EvaluationOptions(
            checkpoint=args.checkpoint,
            episodes=args.episodes,
            seed=args.seed,
            record=args.record,
            sampling=sampling,
            env_overrides=parse_env_overrides(args.env_override),
            trust=args.trust,
        )
        # `kill PID` stops an evaluation like Ctrl-C: its folder is removed, nothing is left
        previous = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
        try:
            out, _ = evaluate_run(args.run_dir, options, console=err)
        finally:
            signal.signal(signal.SIGTERM, previous)
    except (EvaluationError, CheckpointError, envs.EnvSpecError, AgentError) as exc:
        return _fail(err, str(exc))
    except ValueError as exc:  # e.g. --temperature with an agent that exposes no scores
        return _fail(err, str(exc))
    except KeyboardInterrupt:
        err.print("memrl: evaluation interrupted; nothing was written", highlight=False)
        return 130
    except OSError as exc:
        where = f" '{exc.filename}'" if exc.filename else ""
        return _fail(err, f"evaluation stopped: cannot write{where} ({exc.strerror or exc}).", 1)
    err.print(f"wrote {out} (report: {out / 'report.html'})", highlight=False)
    return 0


def cmd_replay(args: argparse.Namespace, out: Console, err: Console) -> int:
    from rollout.cli import _fail
    from rollout.episode_replay import ReplayError, replay_episode

    try:
        result = replay_episode(args.episode, args.render, trust=args.trust)
    except ReplayError as exc:
        return _fail(err, str(exc))
    meta = result.meta
    what = f"{meta['env_id']} seed {meta['seed']} ({result.episode_file})"
    if result.video is not None:
        out.print(f"rendered {result.video}", highlight=False)
    elif args.render is not None:
        out.print(f"{meta['env_id']} does not render rgb frames: no video", highlight=False)
    if result.matches:
        out.print(
            f"exact match: {result.steps} steps of {what}, return {meta['return']:.6g}",
            highlight=False,
        )
        return 0
    out.print(f"MISMATCH replaying {what}: {result.mismatch}", highlight=False)
    return 1
