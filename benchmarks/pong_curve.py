"""A Pong learning curve from a memrl run directory: JSON + PNG (return vs env steps and vs
wall clock; training games' true scores and greedy evaluations).

    memrl train configs/dqn_pong_fast.yaml run.dir=runs          # as long as you can
    python benchmarks/pong_curve.py runs/dqn_pong_fast-2026...    # -> results/pong_learning.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.machine import machine_info  # noqa: E402
from rollout.run_dir import read_metrics  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "pong_learning.json"
PLOT = ROOT / "docs" / "pong_curve.png"


def curve(run_dir: Path, pause: tuple[float, float] | None = None) -> dict:
    """`pause` = (run time at which the process was stopped, seconds it stayed stopped): taken
    out of the wall-clock axis, since the run's clock kept counting."""
    rows = read_metrics(run_dir / "metrics.jsonl")
    if pause is not None:
        at, length = pause
        rows = [{**r, "time_s": r["time_s"] - (length if r["time_s"] > at else 0.0)} for r in rows]
    train = [
        [r["env_steps"], round(r["time_s"], 1), round(r["return_mean"], 2), r["updates"]]
        for r in rows
        if "return_mean" in r and "eval_return_mean" not in r
    ]
    evals = [
        [r.get("eval_env_steps", r["env_steps"]), round(r["time_s"], 1), r["eval_return_mean"]]
        for r in rows
        if "eval_return_mean" in r
    ]
    last = rows[-1]
    return {
        "benchmark": "pong_learning",
        "run_dir": str(run_dir),
        "config": (run_dir / "config.yaml").read_text(),
        "machine": machine_info(),
        "env_steps": last["env_steps"],
        "updates": last["updates"],
        "time_s": last["time_s"],
        "train_fields": ["env_steps", "time_s", "return_mean (last 100 games)", "updates"],
        "train": train,
        "eval_fields": ["env_steps of the weights", "time_s", "greedy mean return"],
        "eval": evals,
    }


def plot(data: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, x, label in ((axes[0], 0, "agent steps"), (axes[1], 1, "wall clock (s)")):
        if data["train"]:
            ax.plot([r[x] for r in data["train"]], [r[2] for r in data["train"]], label="training")
        if data["eval"]:
            ax.plot(
                [r[x] for r in data["eval"]],
                [r[2] for r in data["eval"]],
                "o-",
                label="greedy eval",
            )
        ax.axhline(18, color="grey", ls="--", lw=0.8, label="goal +18")
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("Pong return (true score)")
    axes[0].legend(loc="lower right")
    gpu = data["machine"]["gpu"] or f"{data['machine']['cores']}-core CPU, no GPU"
    fig.suptitle(f"memrl DQN (dqn_pong_fast.yaml) on Pong, {gpu}")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--note", default="", help="what limited the run (recorded in the JSON)")
    parser.add_argument(
        "--pause",
        nargs=2,
        type=float,
        metavar=("AT_S", "LENGTH_S"),
        help="the run was stopped (SIGSTOP) at run time AT_S for LENGTH_S seconds",
    )
    args = parser.parse_args()
    data = curve(args.run_dir, tuple(args.pause) if args.pause else None)
    data["pause"] = args.pause
    data["note"] = args.note
    RESULTS.write_text(json.dumps(data, indent=1) + "\n")
    plot(data, PLOT)
    print(f"{data['env_steps']:,} steps in {data['time_s']:.0f} s -> {RESULTS}, {PLOT}")


if __name__ == "__main__":
    main()
