"""CartPole-v1: time and env steps to a return of 475, memrl against RLlib, in one run.

memrl's DQN and REINFORCE train from configs/ through `memrl train` (embedded Ray, 1 rollout
worker); their stop criterion is the mean of 20 greedy evaluation episodes >= 475. RLlib 2.60's
DQN and PPO (new API stack, tuned-example settings, 1 env runner) run through
benchmarks/rllib_cartpole.py; their criterion is RLlib's own smoothed training return >= 475.
Each run is a separate process, timed from its start (Ray start-up included) to the end.

    python benchmarks/cartpole.py [--seeds 3] [--rllib-seeds 1] [--max-time 600] [--skip-rllib]

Writes benchmarks/results/cartpole.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.machine import machine_info  # noqa: E402
from benchmarks.memrl_run import ENV, train_subprocess  # noqa: E402
from envs.files import atomic_write_text  # noqa: E402

MEMRL = {
    "memrl_dqn": "configs/dqn_cartpole.yaml",
    "memrl_reinforce": "configs/reinforce_cartpole.yaml",
}


def run_memrl(config: str, seed: int, max_time: float) -> dict:
    overrides = [f"run.seed={seed}", f"run.max_time_s={max_time}"]
    rows, _, wall = train_subprocess(config, overrides)
    last = rows[-1]
    return {
        "seed": seed,
        "reached": last.get("eval_return_mean", 0) >= 475,
        "final_return": last.get("eval_return_mean"),
        "env_steps": last["env_steps"],
        "updates": last["updates"],
        "train_time_s": last["time_s"],
        "total_time_s": round(wall, 2),
        "curve": [
            [r["env_steps"], r["time_s"], r["eval_return_mean"]]
            for r in rows
            if "eval_return_mean" in r
        ],
    }


def run_rllib(algo: str, seed: int, max_time: float) -> dict:
    cmd = [
        sys.executable,
        "benchmarks/rllib_cartpole.py",
        algo,
        "--max-time",
        str(max_time),
        "--seed",
        str(seed),
    ]
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True)
    wall = time.monotonic() - start
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    result = json.loads(lines[-1])
    result.update(seed=seed, process_time_s=round(wall, 2))
    return result


def summarise(runs: list[dict], key: str) -> dict:
    values = [r[key] for r in runs if r.get("reached")]
    if not values:
        return {"median": None, "worst": None, "reached": f"0/{len(runs)}"}
    return {
        "median": statistics.median(values),
        "worst": max(values),
        "reached": f"{len(values)}/{len(runs)}",
    }


def plot(result: dict, path: Path) -> None:
    """Return vs wall-clock and vs env steps, every run of every system on one figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    colours = {"memrl_dqn": "C0", "memrl_reinforce": "C1", "rllib_dqn": "C2", "rllib_ppo": "C3"}
    for name, runs in result["runs"].items():
        for i, run in enumerate(runs):
            curve = [c for c in run["curve"] if c[2] is not None]
            steps, secs, ret = zip(*curve) if curve else ((), (), ())
            label = name.replace("_", " ") if i == 0 else None
            axes[0].plot(secs, ret, color=colours[name], alpha=0.8, label=label)
            axes[1].plot(steps, ret, color=colours[name], alpha=0.8, label=label)
    for ax, xlabel in zip(axes, ("training wall-clock (s)", "env steps")):
        ax.axhline(475, color="grey", linestyle=":", linewidth=1)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("return (memrl: greedy eval; RLlib: training)")
        ax.grid(alpha=0.3)
    axes[1].set_xscale("log")
    axes[0].legend(loc="lower right", fontsize=8)
    fig.suptitle(f"CartPole-v1 on {result['machine']['cores']} CPU cores", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=3, help="seeds per memrl agent")
    parser.add_argument("--rllib-seeds", type=int, default=1, help="seeds per RLlib algorithm")
    parser.add_argument("--max-time", type=float, default=600.0, help="time limit per run, seconds")
    parser.add_argument("--skip-rllib", action="store_true")
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/cartpole.json"))
    parser.add_argument("--plot-only", action="store_true", help="redraw the plot from --out")
    args = parser.parse_args()
    figure = ROOT / "docs/cartpole.png"
    if args.plot_only:
        plot(json.loads(Path(args.out).read_text()), figure)
        return

    results: dict[str, list[dict]] = {}
    for name, config in MEMRL.items():
        results[name] = []
        for seed in range(args.seeds):
            print(f"{name} seed {seed} ...", file=sys.stderr, flush=True)
            results[name].append(run_memrl(config, seed, args.max_time))
    if not args.skip_rllib:
        for algo in ("dqn", "ppo"):
            results[f"rllib_{algo}"] = []
            for seed in range(args.rllib_seeds):
                print(f"rllib {algo} seed {seed} ...", file=sys.stderr, flush=True)
                results[f"rllib_{algo}"].append(run_rllib(algo, seed, args.max_time))

    summary = {
        name: {key: summarise(runs, key) for key in ("total_time_s", "train_time_s", "env_steps")}
        for name, runs in results.items()
    }
    ratios = {}
    for ours, theirs, goal in (
        ("memrl_dqn", "rllib_dqn", 1 / 3),
        ("memrl_reinforce", "rllib_ppo", 1.0),
    ):
        a = summary[ours]["total_time_s"]["median"]
        b = summary.get(theirs, {}).get("total_time_s", {}).get("median")
        if a is not None and b:
            ratios[f"{ours}/{theirs}"] = {
                "total_time_ratio": round(a / b, 3),
                "goal_at_most": round(goal, 3),
            }
    out = {
        "benchmark": "cartpole",
        "machine": machine_info(),
        "date": time.strftime("%Y-%m-%d"),
        "criteria": {
            "memrl": "mean of 20 greedy evaluation episodes >= 475 (evaluated every run.eval_every_steps)",
            "rllib": "RLlib env_runners/episode_return_mean (training episodes, smoothed) >= 475",
        },
        "summary": summary,
        "ratios": ratios,
        "runs": results,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(Path(args.out), json.dumps(out, indent=1) + "\n")
    plot(out, figure)

    print(f"{'run':<18}{'reached':>9}{'total s':>10}{'train s':>10}{'env steps':>11}")
    for name, s in summary.items():
        t, tr, st = s["total_time_s"], s["train_time_s"], s["env_steps"]
        fmt = lambda v: "-" if v is None else f"{v:,.0f}" if v > 100 else f"{v:.1f}"  # noqa: E731
        print(
            f"{name:<18}{t['reached']:>9}{fmt(t['median']):>10}{fmt(tr['median']):>10}{fmt(st['median']):>11}"
        )
    for key, value in ratios.items():
        print(f"{key}: {value['total_time_ratio']} x (goal <= {value['goal_at_most']})")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
