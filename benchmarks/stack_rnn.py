"""Stack RNN, LSTM (and NTM) on Joulin & Mikolov's (2015) formal languages: the share of test
sequences whose deterministic part is entirely right, by n, after training on n <= 20.

Each run is `memrl train configs/<agent>_<task>.yaml run.seed=S` in its own process (embedded
Ray, one rollout worker), trained to the config's budget of sequences (or --max-time); the
figures are the run's end-of-run generalisation report (256 fresh sequences per n, the weights
of the best greedy evaluation during training). Without --select every seed is reported and
none is selected or restarted.

--select is the paper's seed selection, as its script states it ("cycle over the seed and
restart the ones which give entropy above average", Stack-RNN's script_tasks.sh): the --seeds
are trained for a short budget (--screen-sequences); each one's validation entropy (bits per
scored symbol on fixed sequences of n in 2..--select-max-n, the latest weights) is measured;
those above the pool's mean are replaced by fresh seeds (the next unused numbers), screened the
same way, --rounds times; the seeds at or below the final pool's mean continue (`--resume`) to
the config's full budget. The entry keeps every screened seed's entropy and verdict, every kept
seed's full results, and names the kept seed with the lowest final validation entropy (the
selected one, what the paper would report).

    python benchmarks/stack_rnn.py --tasks anbn anbncn --agents stack_rnn lstm --seeds 0 1 2
    python benchmarks/stack_rnn.py --tasks anbncndn --seeds 0 1 2 3 --select --keep DIR
    python benchmarks/stack_rnn.py --table     # print the stored table only

Writes benchmarks/results/stack_rnn.json, merging with what is there (one entry per agent and
task, runs by seed), and prints a markdown table.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import re
import statistics
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.machine import machine_info  # noqa: E402
from benchmarks.memrl_run import train_cli, train_subprocess  # noqa: E402
from benchmarks.results_store import read_json, update_json  # noqa: E402
from rollout.config import build_config, read_yaml  # noqa: E402
from rollout.evaluation import load_agent, open_run, resolve_checkpoint  # noqa: E402
from rollout.run_dir import read_metrics  # noqa: E402
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


def run_result(
    agent: str, seed: int, run_dir: Path, rows: list[dict], report: dict, wall: float
) -> dict:
    """One run's entry: the end-of-run report's share of sequences right by n, the argmax
    re-score (stack RNN) and the training curve."""
    evals = [r for r in rows if "eval_return_mean" in r]
    by_n = {
        str(row["length"]): round(row["sequence_accuracy"], 4)
        for row in report["rows"][1:]
        if "sequence_accuracy" in row
    }
    upto60 = [v for n, v in by_n.items() if int(n) <= 60]
    hard = hard_action_scores(run_dir) if agent == "stack_rnn" else {}
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


def read_report(run_dir: Path) -> dict:
    return json.loads((run_dir / "evaluation/final/generalisation.json").read_text())


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
        ROOT / "configs" / f"{agent}_{task}.yaml", overrides, read=read_report, keep=keep
    )
    return run_result(agent, seed, keep, rows, report, wall)


# ---------------------------------------------------------------- the paper's seed selection


@torch.no_grad()
def validation_entropy(
    run_dir: Path, max_n: int, sequences: int = 512, seed: int = 2015, checkpoint: str = "latest"
) -> float:
    """Cross-entropy in bits per scored symbol of a run's weights (`checkpoint`: "latest", the
    model as it stands, as the paper's per-epoch validation; or "best") on `sequences` fixed
    sequences (the same for every run: `seed`) of n uniform in 2..max_n, with the soft
    actions the loss uses. The paper's validation entropy is over every symbol in log10; here
    only the scored symbols, the only ones the model is trained to predict."""
    import envs

    torch.set_num_threads(1)
    run = open_run(run_dir)
    cfg = build_config(read_yaml(run.config), source=str(run.config))
    kwargs = {**cfg.env.kwargs, **cfg.env.eval_kwargs}
    agent, _ = load_agent(cfg, resolve_checkpoint(run, checkpoint), kwargs)
    if hasattr(agent.cfg, "hard_actions"):
        agent.cfg.hard_actions = False
    task = envs.make(cfg.env.id, **{**kwargs, "min_n": 2, "max_n": max_n}).unwrapped
    rng = np.random.default_rng(seed)
    bits = scored = 0.0
    for start in range(0, sequences, 64):
        inputs, targets, mask = task.sample_batch(min(64, sequences - start), rng)
        logits, _ = agent.core(torch.as_tensor(inputs, dtype=torch.float32))
        nll = torch.nn.functional.cross_entropy(
            logits.flatten(0, 1), torch.as_tensor(targets).flatten(), reduction="none"
        )
        m = torch.as_tensor(mask).flatten()
        bits += float((nll * m).sum()) / math.log(2)
        scored += float(m.sum())
    return bits / scored


def above_mean(entropies: dict[int, float]) -> tuple[list[int], float]:
    """The seeds whose entropy is above the mean of the pool (a non-finite entropy, a run that
    diverged, counts as above and stays out of the mean), and that mean."""
    finite = [e for e in entropies.values() if math.isfinite(e)]
    mean = statistics.fmean(finite) if finite else math.inf
    return [s for s, e in entropies.items() if not math.isfinite(e) or e > mean], mean


def entropy_selection(
    screen: Callable[[int], float], seeds: list[int], rounds: int, fresh: Iterator[int]
) -> tuple[list[int], list[dict]]:
    """The paper's restarts: screen every seed of the pool (`screen(seed)` -> validation
    entropy after the short budget), then `rounds` times replace the seeds above the pool's
    mean by fresh ones and screen those. Returns the seeds at or below the final pool's mean
    (in pool order) and one record per screened seed: its round, entropy, the pool mean it was
    judged against and its verdict ("restarted", "kept" or "dropped")."""
    pool = list(seeds)
    entropy = {s: screen(s) for s in pool}
    records = {s: {"seed": s, "round": 0, "val_entropy_bits": entropy[s]} for s in pool}
    for r in range(1, rounds + 1):
        above, mean = above_mean({s: entropy[s] for s in pool})
        for s in above:
            records[s] |= {"pool_mean": mean, "verdict": "restarted"}
        for i, s in enumerate(pool):
            if s in above:
                new = next(fresh)
                entropy[new] = screen(new)
                records[new] = {"seed": new, "round": r, "val_entropy_bits": entropy[new]}
                pool[i] = new
    above, mean = above_mean({s: entropy[s] for s in pool})
    kept = [s for s in pool if s not in above]
    for s in pool:
        records[s] |= {"pool_mean": mean, "verdict": "dropped" if s in above else "kept"}
    return kept, list(records.values())


def config_budget(config: Path, overrides: list[str]) -> int:
    """The run's full budget in sequences (an override wins over the config)."""
    for o in overrides:
        if o.startswith("run.total_sequences="):
            return int(o.split("=", 1)[1])
    return int(read_yaml(config)["run"]["total_sequences"])


def run_selection(
    agent: str,
    task: str,
    seeds: list[int],
    extra: list[str],
    folder: Path,
    screen_sequences: int,
    rounds: int,
    max_n: int,
) -> dict:
    """--select: screen, restart, continue the kept seeds to the full budget (module doc)."""
    config = ROOT / "configs" / f"{agent}_{task}.yaml"
    full = config_budget(config, extra)
    if screen_sequences >= full:
        raise SystemExit(f"--screen-sequences {screen_sequences} must be below the budget {full}")
    runs: dict[int, tuple[Path, float]] = {}

    def screen(seed: int) -> float:
        out = folder / f"{agent}_{task}_seed{seed}"
        if out.exists():
            raise SystemExit(f"{out} exists: give an empty --keep folder for --select")
        overrides = [*extra, f"run.seed={seed}", f"run.total_sequences={screen_sequences}"]
        wall = train_cli([str(config), *overrides, f"run.dir={out}"])
        (run_dir,) = out.iterdir()
        runs[seed] = (run_dir, wall)
        e = validation_entropy(run_dir, max_n)
        print(f"  screen seed {seed}: {e:.4f} bits/symbol ({wall:.0f} s)", file=sys.stderr)
        return e

    used = set(seeds)
    fresh = (s for s in itertools.count(max(seeds) + 1) if s not in used)
    kept, records = entropy_selection(screen, seeds, rounds, fresh)
    screen_wall = sum(wall for _, wall in runs.values())
    results = []
    for seed in kept:
        run_dir, wall = runs[seed]
        wall += train_cli(["--resume", str(run_dir), f"run.total_sequences={full}"])
        rows = read_metrics(run_dir / "metrics.jsonl")
        result = run_result(agent, seed, run_dir, rows, read_report(run_dir), wall)
        result["val_entropy_bits_final"] = round(validation_entropy(run_dir, max_n), 5)
        results.append(result)
        print(f"  kept seed {seed}: {result['sequences_correct_by_n']}", file=sys.stderr)
    selected = min(results, key=lambda r: r["val_entropy_bits_final"])["seed"]
    for r in records:
        r["val_entropy_bits"] = round(r["val_entropy_bits"], 5)
        r["pool_mean"] = round(r["pool_mean"], 5)
    return {
        "screen": records,
        "runs": results,
        "selected_seed": selected,
        "screen_wall_s": round(screen_wall, 1),
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
        if "selected_seed" in entry:  # the one seed the paper's procedure would report
            chosen = [r for r in entry["runs"] if r["seed"] == entry["selected_seed"]]
            tag = f"{label[:-1]}, selected seed {entry['selected_seed']})"
            rows.append((entry, summarise(chosen), tag))
            if entry.get("summary_hard_actions"):
                rows.append((entry, summarise(chosen, "hard_actions_"), tag + " argmax at test"))
    for entry, s, label in rows:
        seeds = str(s["seeds"])
        if "screen" in entry and s["seeds"] > 1:
            seeds += f" kept of {len(entry['screen'])} screened"
        cells = []
        for n in TABLE_NS:
            v = s.get(f"n={n}")
            cells.append(
                "-"
                if v is None
                else f"{100 * v['median']:.0f}% ({100 * v['min']:.0f}-{100 * v['max']:.0f})"
            )
        lines.append(
            f"| {entry['agent']}{label} | {entry['task']} | {seeds} | {s['goal_met']} | "
            + " | ".join(cells)
            + f" | {s['median_wall_s']:.0f} s |"
        )
    return "\n".join(lines)


def store_entry(key: str, entry: dict, machine: dict) -> dict:
    """Store one entry (another process may be storing its own: see results_store)."""

    def change(stored: dict) -> None:
        stored["machine"] = machine
        stored.setdefault("entries", {})[key] = entry

    return update_json(RESULTS, change)


def backfill_hard(result: dict, keep: Path) -> None:
    """Re-score stored stack RNN runs that lack the argmax-action scores, from their --keep
    folders under `keep` (runs stored before that re-score existed)."""
    for entry in result.setdefault("entries", {}).values():
        for run in entry["runs"]:
            folder = keep / f"{entry['agent']}_{entry['task']}_seed{run['seed']}"
            missing = not run.get("hard_actions_sequences_correct_by_n")
            if entry["agent"] == "stack_rnn" and missing and folder.is_dir():
                hard = hard_action_scores(folder)
                run["hard_actions_sequences_correct_by_n"] = hard
                upto60 = [v for n, v in hard.items() if int(n) <= 60]
                run["hard_actions_goal_met"] = bool(upto60) and min(upto60) >= GOAL
        entry["summary_hard_actions"] = summarise(entry["runs"], "hard_actions_")


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
        "--select",
        action="store_true",
        help="the paper's seed selection (module doc): restart the seeds whose validation "
        "entropy is above the pool's mean, continue the rest; needs --keep",
    )
    parser.add_argument("--screen-sequences", type=int, default=24000, help="--select's budget")
    parser.add_argument("--rounds", type=int, default=1, help="--select's restart rounds")
    parser.add_argument(
        "--select-max-n", type=int, default=20, help="--select's validation n: 2..this"
    )
    parser.add_argument(
        "--backfill-hard",
        type=Path,
        metavar="KEEP",
        help="re-score stored stack RNN runs kept under KEEP with argmax actions, then exit",
    )
    args = parser.parse_args(argv)
    result = read_json(RESULTS)
    result.setdefault("entries", {})
    if args.table:
        print(format_table(result))
        return 0
    if args.backfill_hard:  # runs stored before the argmax re-score existed, from --keep folders
        result = update_json(RESULTS, lambda stored: backfill_hard(stored, args.backfill_hard))
        print(format_table(result))
        return 0
    result["machine"] = machine_info()
    if args.select:
        if not args.keep:
            raise SystemExit("--select continues the kept seeds' runs: give --keep DIR")
        for task in args.tasks:
            for agent in args.agents:
                name = f"entropy selection{', ' + args.label if args.label else ''}"
                key = f"{agent}/{task} ({name})"
                print(f"{key}: screening seeds {args.seeds} ...", file=sys.stderr, flush=True)
                folder = args.keep / re.sub(r"[^\w.-]+", "_", key).strip("_")
                folder.mkdir(parents=True, exist_ok=True)
                out = run_selection(
                    agent,
                    task,
                    args.seeds,
                    args.overrides,
                    folder,
                    args.screen_sequences,
                    args.rounds,
                    args.select_max_n,
                )
                entry = {
                    "agent": agent,
                    "task": task,
                    "setup": {
                        "overrides": args.overrides,
                        "screen_sequences": args.screen_sequences,
                        "rounds": args.rounds,
                        "validation_n": [2, args.select_max_n],
                    },
                    "selection": (
                        f"seeds {args.seeds} trained {args.screen_sequences} sequences; the ones "
                        "whose validation entropy (bits per scored symbol, latest weights, n in "
                        f"2..{args.select_max_n}) was above the pool's mean restarted with fresh "
                        f"seeds, {args.rounds} round(s); the seeds at or below the final mean "
                        "continued to the full budget (`runs`, wall clock including their "
                        "screen); `selected_seed`: the kept seed with the lowest final "
                        "validation entropy; `screen`: every screened seed"
                    ),
                    **out,
                }
                entry["summary"] = summarise(entry["runs"])
                entry["summary_hard_actions"] = summarise(entry["runs"], "hard_actions_")
                result = store_entry(key, entry, result["machine"])
        print(format_table(result))
        return 0
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
                result = store_entry(key, entry, result["machine"])
                print(
                    f"  {run['wall_s']:.0f} s, by n: {run['sequences_correct_by_n']}",
                    file=sys.stderr,
                    flush=True,
                )
    print(format_table(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
