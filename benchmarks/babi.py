"""MemN2N on the 20 bAbI tasks, joint training on 1k, beside the paper's figures.

Trains configs/memn2n_babi_1k.yaml once with `memrl train` (its own process, torch at one
thread), reads the per-task test table the run writes (evaluation/final/test.json: the best
validation checkpoint on the test split) and writes benchmarks/results/babi.json with the
per-task test error, the mean, the failed tasks (error > 5%), the wall clock and the machine,
beside MemN2N PE LS RN joint (Sukhbaatar et al. 2015, Table 1, 3 hops; the paper keeps the
best of 10 runs by training error, this is one run).

    python benchmarks/babi.py                      # the 1k joint run (needs the bAbI files)
    python benchmarks/babi.py --unseen             # + the new-words comparison (generated data)
    python benchmarks/babi.py run.total_epochs=2   # overrides go to the training config

`--unseen` trains configs/memn2n_babi_generated.yaml with and without the unknown-word
mechanism and reports test accuracy on stories with only new names, places and objects
against a test set with the training words ('seen'), the same model weights for both.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.machine import machine_info  # noqa: E402
from benchmarks.memrl_run import train_subprocess  # noqa: E402

# Sukhbaatar et al. 2015, Table 1: MemN2N, PE LS RN, joint training on 1k, 3 hops (test error %)
PAPER_1K = [0.0, 11.4, 21.9, 13.4, 14.4, 2.8, 18.3, 9.3, 1.9, 6.5]
PAPER_1K += [0.3, 0.1, 0.2, 6.9, 0.0, 2.7, 40.4, 9.4, 88.0, 0.0]


def _final_test(run_dir: Path) -> dict:
    return json.loads((run_dir / "evaluation" / "final" / "test.json").read_text())


def _summary(errors: list[float]) -> dict:
    return {
        "mean_error_pct": round(sum(errors) / len(errors), 2),
        "failed_tasks": sum(e > 5.0 for e in errors),
    }


def joint_1k(overrides: list[str], keep: Path | None) -> dict:
    config = ROOT / "configs" / "memn2n_babi_1k.yaml"
    rows, report, wall = train_subprocess(config, overrides, _final_test, keep=keep)
    errors = [round(report["groups"][f"qa{t}"]["error_pct"], 1) for t in range(1, 21)]
    evals = [r for r in rows if "eval_accuracy" in r]
    return {
        "config": "configs/memn2n_babi_1k.yaml",
        "overrides": overrides,
        "runs": 1,
        "wall_clock_s": round(wall, 1),
        "epochs": rows[-1].get("epochs") if rows else None,
        "best_valid_accuracy": max((r["eval_accuracy"] for r in evals), default=None),
        "test_error_pct": {f"qa{t}": e for t, e in zip(range(1, 21), errors)},
        **_summary(errors),
        "failed": [f"qa{t}" for t, e in zip(range(1, 21), errors) if e > 5.0],
        "paper": {
            "name": "MemN2N PE LS RN, joint, 1k, 3 hops (Sukhbaatar et al. 2015, Table 1)",
            "test_error_pct": {f"qa{t}": e for t, e in zip(range(1, 21), PAPER_1K)},
            **_summary(PAPER_1K),
        },
    }


def unseen_words(overrides: list[str]) -> dict:
    """Accuracy on test stories whose names, places and objects never occur in training
    ('novel') and on held-out questions with the training words ('seen': the validation split,
    on which the same best weights were chosen), with and without the unknown-word mechanism."""
    config = ROOT / "configs" / "memn2n_babi_generated.yaml"
    results = {}
    for mechanism in (True, False):
        extra = [f"agent.unknown_words={str(mechanism).lower()}", "env.kwargs.test_words=novel"]
        rows, report, wall = train_subprocess(config, [*extra, *overrides], _final_test)
        seen = max(r["eval_accuracy"] for r in rows if "eval_accuracy" in r)
        results["with_mechanism" if mechanism else "without_mechanism"] = {
            "seen_words_accuracy": round(seen, 4),
            "novel_words_accuracy": round(report["accuracy"], 4),
            "novel_per_task_error_pct": {
                k: round(v["error_pct"], 1) for k, v in report["groups"].items()
            },
            "wall_clock_s": round(wall, 1),
        }
    return {"config": "configs/memn2n_babi_generated.yaml", "overrides": overrides, **results}


def _markdown(result: dict) -> str:
    lines = ["| task | memrl MemN2N (1 run) | paper PE LS RN joint |", "|---|---:|---:|"]
    ours, paper = result["test_error_pct"], result["paper"]["test_error_pct"]
    for t in range(1, 21):
        lines.append(f"| qa{t} | {ours[f'qa{t}']:.1f} | {paper[f'qa{t}']:.1f} |")
    mean, paper_mean = result["mean_error_pct"], result["paper"]["mean_error_pct"]
    lines.append(f"| **mean** | **{mean:.1f}** | **{paper_mean:.1f}** |")
    lines.append(
        f"| failed (> 5%) | {result['failed_tasks']} | {result['paper']['failed_tasks']} |"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("overrides", nargs="*", help="dotted config overrides")
    parser.add_argument("--unseen", action="store_true", help="also the new-words comparison")
    parser.add_argument("--skip-joint", action="store_true", help="only the new-words comparison")
    parser.add_argument("--keep", default="", help="copy the 1k run's folder here")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "babi.json"))
    args = parser.parse_args()
    out = Path(args.out)
    result = json.loads(out.read_text()) if out.is_file() else {}
    result["machine"] = machine_info()
    result["torch_threads"] = 1
    if not args.skip_joint:
        result["joint_1k"] = joint_1k(args.overrides, Path(args.keep) if args.keep else None)
        print(_markdown(result["joint_1k"]))
        print(f"wall clock {result['joint_1k']['wall_clock_s']:.0f} s")
    if args.unseen:
        result["unseen_words"] = unseen_words(args.overrides)
        print(json.dumps(result["unseen_words"], indent=2))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(json.dumps(result, indent=2) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, out)


if __name__ == "__main__":
    main()
