"""`memrl sweep`: the command line of rollout/sweep.py (grid and random search on Ray Tune)."""

from __future__ import annotations

import argparse

from rich.console import Console

EPILOG = """examples:
  memrl sweep configs/dqn_cartpole.yaml learner.lr=[1e-3,2e-3] run.seed=[0,1,2,3,4]
  memrl sweep configs/dqn_cartpole.yaml 'learner.lr=loguniform(1e-4,1e-2)' --samples 8
  memrl sweep configs/ntm_copy.yaml run.seed=[0,1,2] --address auto

values: KEY=VALUE is the same in every trial; KEY=[a,b,c] is a grid (every combination of the
grid keys runs); 'KEY=choice(a,b)', 'KEY=uniform(lo,hi)', 'KEY=loguniform(lo,hi)' and
'KEY=randint(lo,hi)' draw one value per trial, --samples trials (quote them: the shell reads
parentheses). A key that holds a list takes a list of lists: agent.hidden=[[64],[128,128]].
"""


def add_sweep_parser(sub: argparse._SubParsersAction) -> None:
    sweep = sub.add_parser(
        "sweep",
        help="run a grid or random search (or several seeds) on Ray Tune",
        description=(
            "Run one `memrl train` per trial through Ray Tune, each a normal run folder inside "
            "a sweep folder (<run.dir>/<run.name>-sweep-<time>), then print and write a "
            "summary (summary.md, summary.json): per setting, the median, min and max over "
            "its seeds of the final and the best evaluation score. `memrl plot SWEEP_DIR` "
            "draws every setting's curves."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sweep.add_argument(
        "args", nargs="+", metavar="CONFIG|KEY=VALUE", help="config file, then values"
    )
    sweep.add_argument(
        "--samples",
        type=int,
        default=1,
        help="trials drawn for random values; a grid runs this many times (default 1)",
    )
    sweep.add_argument(
        "--address",
        help="join an existing Ray cluster ('auto', 'host:port', 'ray://host:10001'); the sweep "
        "folder must then be on storage every node writes to",
    )
    sweep.add_argument(
        "--trial-cpus",
        type=float,
        default=1.0,
        help="CPUs a trial reserves for its learner, besides 1 per rollout worker (default 1)",
    )
    sweep.add_argument("--dir", help="folder to put the sweep folder in (default: run.dir)")
    sweep.add_argument(
        "--search-seed", type=int, default=0, help="seed of the random draws (default 0)"
    )


def cmd_sweep(args: argparse.Namespace, out: Console, err: Console) -> int:
    import envs
    from agents import AgentError
    from rollout.config import ConfigError
    from rollout.run_dir import RunDirError
    from rollout.sweep import SweepError, run_sweep
    from rollout.warm_start import WarmStartError

    config, values = args.args[0], args.args[1:]

    def fail(message: str, code: int = 2) -> int:
        err.print(f"[bold red]memrl: error:[/] {message}", highlight=False)
        return code

    if "=" in config:
        return fail("give a config file first, e.g. `memrl sweep configs/dqn_cartpole.yaml`.")

    def note(text: str) -> None:
        err.print(text, highlight=False, markup=False)

    try:
        sweep_dir, summary = run_sweep(
            config,
            values,
            samples=args.samples,
            address=args.address,
            trial_cpus=args.trial_cpus,
            folder=args.dir,
            search_seed=args.search_seed,
            note=note,
            console=err,
        )
    except (ConfigError, envs.EnvSpecError, AgentError, RunDirError, WarmStartError) as exc:
        return fail(str(exc))
    except SweepError as exc:
        return fail(str(exc), code=1)
    except KeyboardInterrupt:
        return 130
    out.print((sweep_dir / "summary.md").read_text(), highlight=False, markup=False, end="")
    failed = sum(s["failed"] for s in summary["settings"])
    out.print(
        f"sweep done: {len(summary['trials'])} trials ({failed} failed); summary in "
        f"{sweep_dir / 'summary.md'}; plot with: memrl plot {sweep_dir}",
        highlight=False,
        markup=False,
    )
    return 1 if failed else 0
