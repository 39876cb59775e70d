"""Stack RNN, LSTM (and NTM) on Joulin & Mikolov's (2015) formal languages: the share of test
sequences whose deterministic part is entirely right, by n, after training on n <= 20.

Each run is `memrl train configs/<agent>_<task>.yaml run.seed=S` in its own process (embedded
Ray, one rollout worker), trained to the config's budget of sequences (or --max-time); the
figures are the run's end-of-run generalisation report (256 fresh sequences per n, the weights
of the best greedy evaluation during training). Every seed is reported; no seed is selected or
restarted (the paper restarted the seeds whose entropy was above average).

    python benchmarks/stack_rnn.py --tasks anbn anbncn --agents stack_rnn lstm --seeds 0 1 2
    python benchmarks/stack_rnn.py --table     # print the stored table only

Writes benchmarks/results/stack_rnn.json, merging with what is there (one entry per agent and
task, runs by seed), and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.machine import machine_info  # noqa: E402
from benchmarks.memrl_run import train_subprocess  # noqa: E402
from envs.files import atomic_write_text  # noqa: E402
from rollout.config import build_config, read_yaml  # noqa: E402
from rollout.evaluation import load_agent, open_run, resolve_checkpoint  # noqa: E402
from rollout.sequence_report import score  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "stack_rnn.json"
TASKS = (
    "anbn",
    "anbncn",
    "anbncndn",
    "anb2n",
    "anbmcnm",
    "anbmcndm",
    "anbmcnxm",
    "memorisation",
    "binary_addition",
)
AGENTS = ("stack_rnn", "lstm", "ntm")
TABLE_NS = (20, 40, 60, 100)
GOAL = 0.99  # the goal: >= 99% of sequences right up to n = 60


def hard_action_scores(run_dir: Path, sequences: int = 256) -> dict[str, float]:
    """The stack RNN's best weights re-scored with argmax stack actions (the paper's `-hard`),
    on the report's own lengths and sequences (the same seeds as `sequence_report`)."""
    import envs

    torch.set_num_threads(1)  # one core, as the training runs
    run = open_run(run_dir)
    cfg = build_config(read_yaml(run.config), source=str(run.config))
    kwargs = {**cfg.env.kwargs, **cfg.env.eval_kwargs}
    agent, _ = load_agent(cfg, resolve_checkpoint(run, "best"), kwargs)
    agent.cfg.hard_actions = True
    base = envs.make(cfg.env.id, **kwargs).unwrapped
    out = {}
    with torch.no_grad():
        for _, length, variant in base.report_variants:
            task = envs.make(cfg.env.id, **{**kwargs, **variant}).unwrapped
            rng = np.random.default_rng(cfg.run.seed + length)
            out[str(length)] = round(score(agent, task, sequences, rng)["sequence_accuracy"], 4)
    return out


def run_once(
    agent: str, task: str, seed: int, extra: list[str], max_time: float, keep: Path | None = None
) -> dict:
    if keep is None:
        with tempfile.TemporaryDirectory() as tmp:
            return run_once(agent, task, seed, extra, max_time, Path(tmp) / "run")
    overrides = [*extra, f"run.seed={seed}"]
    if max_time:
        overrides.append(f"run.max_time_s={max_time}")
    rows, report, wall = train_subprocess(
        ROOT / "configs" / f"{agent}_{task}.yaml",
        overrides,
        read=lambda run_dir: json.loads(
            (run_dir / "evaluation/final/generalisation.json").read_text()
        ),
        keep=keep,
    )
    evals = [r for r in rows if "eval_return_mean" in r]
    by_n = {
        str(row["length"]): round(row["sequence_accuracy"], 4)
        for row in report["rows"][1:]
        if "sequence_accuracy" in row
    }
    upto60 = [v for n, v in by_n.items() if int(n) <= 60]
    hard = hard_action_scores(keep) if agent == "stack_rnn" else {}
    return {
        "seed": seed,
        "wall_s": round(wall, 1),
        "sequences": rows[-1].get("sequences") if rows else None,
        "training_distribution": round(report["rows"][0]["sequence_accuracy"], 4),
        "sequences_correct_by_n": by_n,
        "goal_met": bool(upto60) and min(upto60) >= GOAL,
        # the same weights with argmax stack actions at test time (stack RNN only)
        "hard_actions_sequences_correct_by_n": hard,
        "hard_actions_goal_met": bool(hard)
        and min(v for n, v in hard.items() if int(n) <= 60) >= GOAL,
        # greedy evaluations during training: (sequences, minus wrong symbols per sequence)
        "curve": [[r["sequences"], r["eval_return_mean"]] for r in evals],
    }


def summarise(runs: list[dict], prefix: str = "") -> dict:
    """Per n: median, min and max over seeds of the share of sequences right; `prefix`
    "hard_actions_" summarises the argmax-action scores instead."""
    runs = [r for r in runs if r.get(f"{prefix}sequences_correct_by_n")]
    if not runs:
        return {}
    by_n = f"{prefix}sequences_correct_by_n"
    ns = sorted({int(n) for r in runs for n in r[by_n]})
    out: dict = {
        "seeds": len(runs),
        "goal_met": f"{sum(r[f'{prefix}goal_met'] for r in runs)}/{len(runs)}",
        "median_wall_s": statistics.median(r["wall_s"] for r in runs),
    }
    for n in ns:
        values = [r[by_n].get(str(n)) for r in runs]
        values = [v for v in values if v is not None]
        out[f"n={n}"] = {
            "median": statistics.median(values),
            "min": min(values),
            "max": max(values),
        }
    return out


def format_table(result: dict) -> str:
    head = "| agent | task | seeds | >= 99% to n=60 | " + " | ".join(
        f"n={n}: median (min-max)" for n in TABLE_NS
    )
    lines = [head + " | wall clock (median) |", "|" + "---|" * (len(TABLE_NS) + 5)]
    rows = []
    for key in sorted(result.get("entries", {})):
        entry = result["entries"][key]
        label = f" ({key.split(' (', 1)[1]}" if " (" in key else ""
        rows.append((entry, entry["summary"], label))
        if entry.get("summary_hard_actions"):
            rows.append((entry, entry["summary_hard_actions"], label + " argmax actions at test"))
    for entry, s, label in rows:
        cells = []
        for n in TABLE_NS:
            v = s.get(f"n={n}")
            cells.append(
                "-"
                if v is None
                else f"{100 * v['median']:.0f}% ({100 * v['min']:.0f}-{100 * v['max']:.0f})"
            )
        lines.append(
            f"| {entry['agent']}{label} | {entry['task']} | {s['seeds']} | {s['goal_met']} | "
            + " | ".join(cells)
            + f" | {s['median_wall_s']:.0f} s |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", nargs="+", default=["anbn"], choices=TASKS)
    parser.add_argument("--agents", nargs="+", default=["stack_rnn"], choices=AGENTS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--max-time", type=float, default=0.0, help="seconds per run (0: none)")
    parser.add_argument("--label", default="", help="entry name suffix for a variant setup")
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. learner.lr=0.003")
    parser.add_argument("--table", action="store_true", help="print the stored table and exit")
    parser.add_argument(
        "--keep", type=Path, help="keep each run's folder (report, pictures) under this folder"
    )
    parser.add_argument(
        "--backfill-hard",
        type=Path,
        metavar="KEEP",
        help="re-score stored stack RNN runs kept under KEEP with argmax actions, then exit",
    )
    args = parser.parse_args(argv)
    result = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    result.setdefault("entries", {})
    if args.table:
        print(format_table(result))
        return 0
    if args.backfill_hard:  # runs stored before the argmax re-score existed, from --keep folders
        for entry in result["entries"].values():
            for run in entry["runs"]:
                folder = args.backfill_hard / f"{entry['agent']}_{entry['task']}_seed{run['seed']}"
                missing = not run.get("hard_actions_sequences_correct_by_n")
                if entry["agent"] == "stack_rnn" and missing and folder.is_dir():
                    hard = hard_action_scores(folder)
                    run["hard_actions_sequences_correct_by_n"] = hard
                    upto60 = [v for n, v in hard.items() if int(n) <= 60]
                    run["hard_actions_goal_met"] = bool(upto60) and min(upto60) >= GOAL
            entry["summary_hard_actions"] = summarise(entry["runs"], "hard_actions_")
        atomic_write_text(RESULTS, json.dumps(result, indent=1) + "\n")
        print(format_table(result))
        return 0
    result["machine"] = machine_info()
    for task in args.tasks:
        for agent in args.agents:
            key = f"{agent}/{task}" + (f" ({args.label})" if args.label else "")
            entry = result["entries"].get(key) or {"agent": agent, "task": task, "runs": []}
            setup = {"overrides": args.overrides, "max_time_s": args.max_time}
            stored = {k: v for k, v in entry.get("setup", {}).items() if k != "note"}
            if entry["runs"] and stored != setup:
                raise SystemExit(
                    f"{key}: stored runs used {stored}, this run {setup}; "
                    "use --label for a new entry"
                )
            entry["setup"] = {**entry.get("setup", {}), **setup}  # keeps a stored note
            entry["selection"] = "none: every seed run is reported"
            for seed in args.seeds:
                print(f"{key} seed {seed} ...", file=sys.stderr, flush=True)
                keep = args.keep / f"{agent}_{task}_seed{seed}" if args.keep else None
                run = run_once(agent, task, seed, args.overrides, args.max_time, keep)
                entry["runs"] = [r for r in entry["runs"] if r["seed"] != seed] + [run]
                entry["runs"].sort(key=lambda r: r["seed"])
                entry["summary"] = summarise(entry["runs"])
                entry["summary_hard_actions"] = summarise(entry["runs"], "hard_actions_")
                result["entries"][key] = entry
                atomic_write_text(RESULTS, json.dumps(result, indent=1) + "\n")
                print(
                    f"  {run['wall_s']:.0f} s, by n: {run['sequences_correct_by_n']}",
                    file=sys.stderr,
                    flush=True,
                )
    print(format_table(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
