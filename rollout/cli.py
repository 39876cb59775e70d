"""The `memrl` command line: `memrl train`, `memrl submit`, `memrl plot`, `memrl envs`.

Errors a user can fix (a config key, a file, an env id) print one paragraph and exit with 2;
a run stopped on purpose (NaN loss) exits with 1; Ctrl-C saves a checkpoint and exits with 130.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from rollout.progress import stderr_console

EXIT_USAGE = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="memrl",
        description="Train and evaluate agents with memory on Gymnasium environments, over Ray.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = sub.add_parser(
        "train",
        help="train an agent from a YAML config",
        description=(
            "Train from CONFIG (a YAML file with sections env, agent, learner, rollout, run), "
            "with dotted overrides such as learner.lr=3e-4 rollout.num_workers=2. Without "
            "--address an embedded local Ray starts and stops with the command."
        ),
        epilog="examples:\n  memrl train configs/dqn_cartpole.yaml learner.lr=3e-4\n"
        "  memrl train --resume runs/dqn_cartpole-20261123-101500 run.total_env_steps=200000\n"
        "  memrl train configs/dqn_cartpole.yaml --address auto",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    train.add_argument(
        "args", nargs="*", metavar="CONFIG|KEY=VALUE", help="config file, then overrides"
    )
    train.add_argument(
        "--address",
        help="join an existing Ray cluster: 'auto', 'host:port' or 'ray://host:10001' "
        "(token authentication as configured on the cluster; see README)",
    )
    train.add_argument(
        "--resume", metavar="RUN_DIR", help="continue a run from its newest complete checkpoint"
    )
    train.add_argument(
        "--trust",
        action="store_true",
        help="with --resume: allow the run folder's env.id to name a module:Class plug-in "
        "(code it imports); without it only registered ids and installed plug-ins are made",
    )

    submit = sub.add_parser(
        "submit",
        help="run `memrl train` as a job on a Ray cluster",
        description=(
            "Submit `memrl train CONFIG [overrides]` as a Ray job: the current folder ships as "
            "the job's working_dir (CONFIG must be inside it), the job id is printed, and the "
            "logs stream until the job ends; the exit status is the job's. The learner runs in "
            "the job's driver: --gpus 1 places it on a node with a GPU."
        ),
        epilog="examples:\n  memrl submit configs/dqn_cartpole.yaml rollout.num_workers=8 "
        "--address http://head:8265\n"
        "  memrl submit configs/ntm_copy.yaml --address http://127.0.0.1:8265 --gpus 1 --no-wait",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    submit.add_argument(
        "args", nargs="+", metavar="CONFIG|KEY=VALUE", help="config file, then overrides"
    )
    submit.add_argument(
        "--address",
        required=True,
        help="the cluster's job server (dashboard) address, e.g. http://head:8265",
    )
    submit.add_argument(
        "--gpus",
        type=float,
        default=None,
        help="GPUs for the driver (default: 1 if learner.device is cuda, else 0)",
    )
    submit.add_argument("--cpus", type=float, default=0.0, help="CPUs reserved for the driver")
    submit.add_argument(
        "--no-wait", action="store_true", help="print the job id and return without following"
    )

    plot = sub.add_parser(
        "plot",
        help="plot learning curves of runs into one PNG",
        description=(
            "Plot a metric from each RUN_DIR's metrics.jsonl against env steps and wall-clock "
            "time. Runs with the same config except run.seed are one curve: the median over "
            "seeds with a min/max band."
        ),
        epilog="examples:\n  memrl plot runs/dqn_cartpole-20261123-101500\n"
        "  memrl plot runs/ntm_copy-* --metric bit_errors --x env_steps -o copy.png",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    plot.add_argument(
        "runs", nargs="+", metavar="RUN_DIR", help="run directories, or `memrl sweep` folders"
    )
    plot.add_argument(
        "--metric",
        help="return (return_mean), eval (eval_return_mean) or any key of metrics.jsonl, e.g. "
        "bit_errors, loss (default: return, else eval)",
    )
    plot.add_argument(
        "--x",
        choices=["env_steps", "time", "both"],
        default="both",
        help="x axis: env steps, wall-clock time, or both side by side (default)",
    )
    plot.add_argument("-o", "--out", help="PNG to write (default: plot_<metric>.png here)")

    envs_cmd = sub.add_parser(
        "envs",
        help="list known environment ids",
        description="List environment ids memrl can make.",
    )
    envs_cmd.add_argument(
        "filter", nargs="?", default="", help="only ids containing this text (e.g. memrl, ALE/Pong)"
    )
    from rollout.evaluate_cli import add_evaluation_parsers

    add_evaluation_parsers(sub)  # memrl evaluate, memrl replay
    from rollout.sweep_cli import add_sweep_parser

    add_sweep_parser(sub)  # memrl sweep
    from rollout.data_cli import add_data_parser

    add_data_parser(sub)  # memrl data
    return parser


def _fail(console: Console, message: str, code: int = EXIT_USAGE) -> int:
    # escaped: a message may hold brackets (`pip install "gymnasium[box2d]"`) that rich would
    # take for markup and drop
    console.print(f"[bold red]memrl: error:[/] {escape(message)}", highlight=False)
    return code


def cmd_plot(args: argparse.Namespace, out: Console, err: Console) -> int:
    from rollout.plot import PlotError, plot_runs

    x_axes = ("env_steps", "time") if args.x == "both" else (args.x,)
    try:
        path, key, notes = plot_runs(args.runs, args.metric, x_axes, args.out)
    except PlotError as exc:
        return _fail(err, str(exc))
    except OSError as exc:
        where = f" '{exc.filename}'" if exc.filename else ""
        return _fail(err, f"cannot write the plot{where}: {exc.strerror or exc}.", code=1)
    for note in notes:
        err.print(f"memrl: note: {note}", highlight=False, markup=False)
    out.print(f"wrote {path} ({key})", highlight=False, markup=False)
    return 0


def cmd_envs(args: argparse.Namespace, out: Console) -> int:
    import envs

    ids = [i for i in envs.known_ids() if args.filter.lower() in i.lower()]
    width = max((len(i) for i in ids), default=0)
    for env_id in ids:
        out.print(f"{env_id:<{width}}  {envs.describe(env_id)}", highlight=False, soft_wrap=True)
    return 0 if ids else 1


def cmd_train(args: argparse.Namespace, err: Console) -> int:
    import envs
    from agents import AgentError
    from rollout.checkpoints import CheckpointError
    from rollout.config import (
        ConfigError,
        apply_overrides,
        build_config,
        load_config,
        read_yaml,
    )
    from rollout.run_dir import RunDir, RunDirError
    from rollout.warm_start import WarmStartError

    positional = list(args.args)
    try:
        if args.resume:
            run = RunDir(Path(args.resume))
            if not run.exists():
                raise ConfigError(
                    f"'{args.resume}' is not a memrl run directory (no config.yaml in it)."
                )
            if positional and "=" not in positional[0]:
                raise ConfigError(
                    "with --resume, give only overrides (the run's own config.yaml is used)."
                )
            cfg = build_config(
                apply_overrides(read_yaml(run.config), positional), source=str(run.config)
            )
            _check_replay_layout(run, cfg, read_yaml(run.config))
            given = any(o.split("=", 1)[0].strip() == "env.id" for o in positional)
            if not (args.trust or given):
                envs.refuse_untrusted(
                    cfg.env.id,
                    f"the run folder's config '{run.config}' (key env.id)",
                    "resume with --trust, or give the spec yourself: env.id=SPEC",
                )
        else:
            if not positional or "=" in positional[0]:
                raise ConfigError(
                    "give a config file first, e.g. `memrl train configs/dqn_cartpole.yaml`."
                )
            cfg = load_config(positional[0], positional[1:])
            run = None
            from rollout.submit import job_run_root

            cfg.run.dir, note = job_run_root(cfg.run.dir)  # a job's folder is a temporary copy
            if note:
                err.print(note, highlight=False, markup=False)
        from rollout.launch import check_before_start

        # a bad env id, an agent that cannot learn the task or a broken plug-in env fails here,
        # before Ray starts, not deep inside a worker
        check_before_start(cfg, err, resume=bool(args.resume))
    except (ConfigError, envs.EnvSpecError, AgentError, RunDirError, WarmStartError) as exc:
        return _fail(err, str(exc))
    if args.trust and not args.resume:
        err.print("memrl: note: --trust only matters with --resume", highlight=False)

    from rollout.launch import train_run
    from rollout.trainer import TrainingError
    from rollout.worker_group import WorkerError

    # `kill PID` (SIGTERM, also what job schedulers send) stops a run like Ctrl-C: a checkpoint is
    # saved first. (A shell starts background jobs with SIGINT ignored, so `kill -INT` may not.)
    previous = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        train_run(cfg, err, run, resume=bool(args.resume), address=args.address)
    except (CheckpointError, RunDirError) as exc:
        if isinstance(exc, OSError):  # CheckpointWriteError: a runtime failure (disk full)
            return _fail(err, str(exc), code=1)
        return _fail(err, str(exc))
    except (TrainingError, WorkerError) as exc:
        return _fail(err, str(exc), code=1)
    except KeyboardInterrupt:
        return 130
    except OSError as exc:  # a full disk or a vanished folder under the metrics/TensorBoard writer
        where = f" '{exc.filename}'" if exc.filename else ""
        return _fail(
            err,
            f"training stopped: cannot write{where} ({exc.strerror or exc}). The last complete "
            "checkpoint is kept; free space and continue with `memrl train --resume RUN_DIR`.",
            code=1,
        )
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0


def cmd_submit(args: argparse.Namespace, err: Console) -> int:
    import envs
    from rollout.config import ConfigError, load_config
    from rollout.submit import SubmitError, job_request, submit

    config, overrides = args.args[0], args.args[1:]
    try:
        if "=" in config:
            raise ConfigError(
                "give a config file first, e.g. `memrl submit configs/dqn_cartpole.yaml`."
            )
        cfg = load_config(config, overrides)  # fail here, not minutes later on the cluster
        envs.make(cfg.env.id, **cfg.env.kwargs).close()
        if not Path(cfg.run.dir).expanduser().is_absolute():
            err.print(
                f"memrl: note: the job writes its run folder to ~/{cfg.run.dir} on the node "
                "that runs its driver (not into the job's temporary copy of this folder); give "
                "run.dir=/shared/path for storage every node sees.",
                highlight=False,
                markup=False,
            )
        gpus = args.gpus if args.gpus is not None else float(cfg.learner.device == "cuda")
        request = job_request(config, overrides, Path.cwd(), gpus, args.cpus, cfg.env.id)
        return submit(args.address, request, wait=not args.no_wait)
    except (ConfigError, envs.EnvSpecError, SubmitError) as exc:
        return _fail(err, str(exc))


def _check_replay_layout(run: object, cfg: object, saved: dict) -> None:
    """A checkpoint's replay buffer is laid out by rollout.num_workers x envs_per_worker (one
    stream per env): a resume that changes them is refused here, before Ray starts."""
    from rollout.checkpoints import complete_checkpoints
    from rollout.config import ConfigError

    if not any((p / "replay.npz").is_file() for p in complete_checkpoints(run.checkpoints)):
        return
    section = saved.get("rollout") if isinstance(saved.get("rollout"), dict) else {}
    try:
        before = max(1, int(section["num_workers"])) * int(section["envs_per_worker"])
    except (KeyError, TypeError, ValueError):
        return  # an older config.yaml: the trainer's own check reports a mismatch
    now = max(1, cfg.rollout.num_workers) * cfg.rollout.envs_per_worker
    if now != before:
        raise ConfigError(
            f"the run's checkpoints hold a replay buffer of {before} env streams "
            f"(rollout.num_workers={section['num_workers']} x rollout.envs_per_worker="
            f"{section['envs_per_worker']} in '{run.config}'); this resume would have {now}. "
            "Resume with the run's rollout.num_workers and rollout.envs_per_worker."
        )


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _plugins_from_cwd() -> None:
    """Let `package.module:EnvClass` specs name a module in the working folder without letting
    that folder shadow memrl's modules or installed packages: `python -m`/`-c` put the working
    folder first on sys.path, so it moves to the end, and the folder goes into
    envs.PLUGIN_PATH_ENV, where `envs.make` looks for the one module a spec names (embedded Ray
    workers inherit it). Run from memrl's own checkout, the folder is memrl's and stays."""
    from rollout.ray_runtime import PLUGIN_PATH_ENV, memrl_root

    cwd = os.getcwd()
    real = os.path.realpath(cwd)
    if real != os.path.realpath(memrl_root()):
        kept = [p for p in sys.path if os.path.realpath(p or ".") != real]
        sys.path[:] = [*kept, cwd]
    paths = [p for p in os.environ.get(PLUGIN_PATH_ENV, "").split(os.pathsep) if p]
    if cwd not in paths:
        os.environ[PLUGIN_PATH_ENV] = os.pathsep.join([*paths, cwd])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse a command line. Overrides (`key=value`) may stand anywhere, also after an option
    (`memrl train CONFIG --address HEAD:6379 rollout.num_workers=16`): argparse gives a
    subcommand's positionals one run of words, so later ones come back as extras and join the
    `args` list of the subcommands that take overrides, in command-line order."""
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    takes_overrides = isinstance(getattr(args, "args", None), list)
    if extra and (not takes_overrides or any(word.startswith("-") for word in extra)):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if extra:
        args.args = [*args.args, *extra]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    _plugins_from_cwd()
    out, err = Console(soft_wrap=True), stderr_console()
    if args.command == "envs":
        return cmd_envs(args, out)
    if args.command == "plot":
        return cmd_plot(args, out, err)
    if args.command in ("evaluate", "replay"):
        from rollout.evaluate_cli import cmd_evaluate, cmd_replay

        return cmd_evaluate(args, err) if args.command == "evaluate" else cmd_replay(args, out, err)
    if args.command == "submit":
        return cmd_submit(args, err)
    if args.command == "sweep":
        from rollout.sweep_cli import cmd_sweep

        return cmd_sweep(args, out, err)
    if args.command == "data":
        from rollout.data_cli import cmd_data

        return cmd_data(args, out, err)
    return cmd_train(args, err)


if __name__ == "__main__":
    sys.exit(main())
