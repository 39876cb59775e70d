"""The `memrl` command line: `memrl train`, `memrl envs`.

Errors a user can fix (a config key, a file, an env id) print one paragraph and exit with 2;
a run stopped on purpose (NaN loss) exits with 1; Ctrl-C saves a checkpoint and exits with 130.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from rich.console import Console

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

    envs_cmd = sub.add_parser(
        "envs",
        help="list known environment ids",
        description="List environment ids memrl can make.",
    )
    envs_cmd.add_argument(
        "filter", nargs="?", default="", help="only ids containing this text (e.g. memrl, ALE/Pong)"
    )
    return parser


def _fail(console: Console, message: str, code: int = EXIT_USAGE) -> int:
    console.print(f"[bold red]memrl: error:[/] {message}", highlight=False)
    return code


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
    from rollout.config import (
        ConfigError,
        apply_overrides,
        build_config,
        dump_config,
        load_config,
        read_yaml,
    )
    from rollout.run_dir import RunDir

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
        else:
            if not positional or "=" in positional[0]:
                raise ConfigError(
                    "give a config file first, e.g. `memrl train configs/dqn_cartpole.yaml`."
                )
            cfg = load_config(positional[0], positional[1:])
            run = None
        probe = envs.make(
            cfg.env.id, **cfg.env.kwargs
        )  # a bad env id fails here, before Ray starts
        from agents import make_agent
        from agents.learner import resolve_device
        from rollout.trainer import check_compatible

        check_compatible(
            cfg, probe, make_agent(cfg.agent, probe.observation_space, probe.action_space)
        )
        resolve_device(cfg.learner.device)
        probe.close()
    except (ConfigError, envs.EnvSpecError, AgentError) as exc:
        return _fail(err, str(exc))

    from rollout.ray_runtime import start_ray, stop_ray
    from rollout.trainer import Trainer, TrainingError

    started = False
    try:
        if cfg.rollout.num_workers > 0:
            started = start_ray(args.address, cfg.rollout.num_workers)
        if run is None:
            run = RunDir.create(cfg.run.dir, cfg.run.name, dump_config(cfg))
            err.print(f"run dir {run.path}", highlight=False)
        trainer = Trainer(cfg, run, resume=bool(args.resume), console=err)
        trainer.train()
    except TrainingError as exc:
        return _fail(err, str(exc), code=1)
    except KeyboardInterrupt:
        return 130
    finally:
        if started:
            stop_ray()
    return 0


def _import_from_cwd() -> None:
    """Let `package.module:EnvClass` specs name modules in the current folder, as `python -m`
    does; embedded Ray workers get the same path through PYTHONPATH."""
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    paths = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    if cwd not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in [cwd, *paths] if p)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _import_from_cwd()
    out, err = Console(), Console(stderr=True)
    if args.command == "envs":
        return cmd_envs(args, out)
    return cmd_train(args, err)


if __name__ == "__main__":
    sys.exit(main())
