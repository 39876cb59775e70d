"""Learning to Execute (Zaremba & Sutskever 2014): the curricula compared on one budget.

Trains `configs/lstm_learn_to_execute.yaml` once per curriculum strategy with `memrl train`
(its own process, torch at one thread) and reads the end-of-run table the run writes
(`evaluation/final/generalisation.json`: the best checkpoint, chosen at the target difficulty,
scored with teacher forcing on 256 fresh programs per difficulty). Writes
benchmarks/results/l2e.json: per strategy, the per-character accuracy at every difficulty up to
the target, whole-output accuracy, the curriculum level reached, sequences and wall clock,
beside the paper's figure (9-digit addition: 99% per character with the combined curriculum).

    python benchmarks/l2e.py                                  # addition, all four strategies
    python benchmarks/l2e.py --strategies combined baseline   # some of them
    python benchmarks/l2e.py --task programs --target-length 4 --target-nesting 2
    python benchmarks/l2e.py agent.hidden_size=400 run.max_time_s=7200 --strategies combined
                                             # config overrides go before the options

Each finished strategy is stored at once (the file is locked while it is updated), so two
processes may run different strategies side by side and a killed benchmark keeps what it
measured. `--table` prints the stored rows as markdown.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.machine import machine_info  # noqa: E402
from benchmarks.memrl_run import train_subprocess  # noqa: E402
from benchmarks.results_store import update_json  # noqa: E402

CONFIG = ROOT / "configs" / "lstm_learn_to_execute.yaml"
OUT = ROOT / "benchmarks" / "results" / "l2e.json"
STRATEGIES = ("baseline", "naive", "mix", "combined")
PAPER = {
    "source": "Zaremba & Sutskever 2014, section 5 (addition): per-character accuracy, teacher "
    "forcing, 2 x 400 LSTM",
    "addition_9_digits_combined": 0.99,
}


def _curriculum(task: str, target_length: int, target_nesting: int) -> list[str]:
    """The naive curriculum's levels: length grows to the target, then nesting (the paper's)."""
    if task == "addition":
        levels = [f"{{length: {k}}}" for k in range(1, target_length + 1)]
    else:
        levels = [f"{{length: {k}, nesting: 1}}" for k in range(1, target_length + 1)]
        levels += [
            f"{{length: {target_length}, nesting: {m}}}" for m in range(2, target_nesting + 1)
        ]
    return [f"env.curriculum=[{', '.join(levels)}]"]


def strategy_overrides(
    task: str, strategy: str, target_length: int, target_nesting: int
) -> list[str]:
    nesting = 0 if task == "addition" else 1
    kwargs = (
        f"env.kwargs={{task: {task}, length: 1, nesting: {nesting}, "
        f"target_length: {target_length}, target_nesting: {target_nesting}, "
        f"strategy: {strategy}}}"
    )
    target = f"env.eval_kwargs={{length: {target_length}, nesting: {max(target_nesting, nesting)}, strategy: baseline}}"
    overrides = [kwargs, target]
    if strategy in ("naive", "combined"):
        overrides += _curriculum(task, target_length, target_nesting)
    else:  # baseline and mix draw from fixed distributions: no levels
        overrides += ["env.curriculum=[]", "env.curriculum_eval_kwargs={}"]
    return overrides


def _report(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "evaluation" / "final" / "generalisation.json").read_text())


def level_changes(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Where the curriculum moved: the updates and sequences at which each level began."""
    changes, level = [], None
    for r in rows:
        if "curriculum_level" in r and r["curriculum_level"] != level:
            level = r["curriculum_level"]
            changes.append(
                {"level": level, "updates": r.get("updates"), "sequences": r.get("sequences")}
            )
    return changes


def run_strategy(
    task: str, strategy: str, target_length: int, target_nesting: int, extra: list[str]
) -> dict[str, Any]:
    overrides = [
        *strategy_overrides(task, strategy, target_length, target_nesting),
        f"run.name=l2e_{task}_{strategy}",
        "learner.torch_threads=1",
        *extra,
    ]
    rows, report, wall = train_subprocess(CONFIG, overrides, _report)
    last = rows[-1] if rows else {}
    evals = [r for r in rows if "eval_return_mean" in r]
    grid = [
        {
            "variant": r["variant"],
            "token_accuracy": round(r["token_accuracy"], 4),
            "sequence_accuracy": round(r["sequence_accuracy"], 4),
        }
        for r in report["rows"][1:]
    ]
    return {
        "task": task,
        "strategy": strategy,
        "target_length": target_length,
        "target_nesting": target_nesting,
        "config": "configs/lstm_learn_to_execute.yaml",
        "overrides": overrides,
        "target_token_accuracy": round(report["rows"][0]["token_accuracy"], 4),
        "target_sequence_accuracy": round(report["rows"][0]["sequence_accuracy"], 4),
        "best_eval_accuracy": round(1.0 + max(r["eval_return_mean"] for r in evals), 4)
        if evals
        else None,
        "curriculum_level_reached": max((r.get("curriculum_level", 0) for r in rows), default=0),
        "level_changes": level_changes(rows),
        "target_curve": [
            {"updates": r.get("updates"), "accuracy": round(1.0 + r["eval_return_mean"], 4)}
            for r in evals
        ],
        "sequences": last.get("sequences"),
        "updates": last.get("updates"),
        "wall_clock_s": round(wall, 1),
        "grid": grid,
    }


def store(out: Path, key: str, row: dict[str, Any]) -> None:
    """Add one row (another process may be storing its own: see results_store)."""

    def change(result: dict) -> None:
        result.setdefault("paper", PAPER)
        result["machine"] = machine_info()
        result.setdefault("rows", {})[key] = row

    update_json(out, change)


def table(result: dict[str, Any]) -> str:
    lines = [
        "| task | strategy | per-character accuracy at the target | whole outputs right | "
        "curriculum level | sequences | wall clock (s) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for row in result.get("rows", {}).values():
        target = f"{row['task']} {row['target_length']}"
        if row["task"] == "programs":
            target += f"x{row['target_nesting']}"
        lines.append(
            f"| {target} | {row['strategy']} | {100 * row['target_token_accuracy']:.1f}% | "
            f"{100 * row['target_sequence_accuracy']:.1f}% | {row['curriculum_level_reached']} | "
            f"{row['sequences']:,} | {row['wall_clock_s']:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("overrides", nargs="*", help="dotted config overrides for every run")
    parser.add_argument("--task", choices=("addition", "programs"), default="addition")
    parser.add_argument("--strategies", nargs="+", choices=STRATEGIES, default=list(STRATEGIES))
    parser.add_argument("--target-length", type=int, default=9)
    parser.add_argument("--target-nesting", type=int, default=0)
    parser.add_argument("--label", default="", help="a suffix for the stored rows' keys")
    parser.add_argument("--out", default=str(OUT))
    parser.add_argument("--table", action="store_true", help="print the stored rows and exit")
    args = parser.parse_args()
    out = Path(args.out)
    if args.table:
        print(table(json.loads(out.read_text())))
        return
    nesting = args.target_nesting if args.task == "programs" else 0
    if args.task == "programs" and nesting < 1:
        parser.error("--task programs needs --target-nesting >= 1")
    for strategy in args.strategies:
        row = run_strategy(args.task, strategy, args.target_length, nesting, args.overrides)
        key = f"{args.task}_{args.target_length}x{nesting}_{strategy}{args.label}"
        store(out, key, {**row, "label": args.label})
        print(table({"rows": {key: row}}), flush=True)


if __name__ == "__main__":
    main()
