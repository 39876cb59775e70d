"""MemN2N on the 20 bAbI tasks, joint training on 1k or 10k, beside the paper's figures.

Trains configs/memn2n_babi_1k.yaml (`--size 10k`: configs/memn2n_babi_10k.yaml) with
`memrl train` (its own process, torch at one thread), once per seed, reads the per-task test
table each run writes (evaluation/final/test.json: the best validation checkpoint on the test
split) and the training error of the same weights (a full pass over the train split, done
here), and writes benchmarks/results/babi.json: every run's figures, and the run with the
lowest training error as the result, as the paper does (Sukhbaatar et al. 2015 keep the best
of 10 runs by training error; the entry says how many runs it has). Beside MemN2N PE LS RN
joint (Table 1, 3 hops). Runs of the same recipe (the run's config fields away from their
defaults, its seed aside) accumulate across invocations in `joint_1k` / `joint_10k`; a
different recipe moves the stored entry to `joint_1k_superseded` (no measured figure is
dropped).

    python benchmarks/babi.py --seeds 1 2 3         # three 1k joint runs (needs the bAbI files)
    python benchmarks/babi.py --size 10k --seeds 1  # one 10k joint run (entry joint_10k)
    python benchmarks/babi.py --add-run RUN_DIR     # a finished `memrl train` run of the config
    python benchmarks/babi.py --unseen --skip-joint # the new-words comparison (generated data)
    python benchmarks/babi.py --seeds 1 run.total_epochs=2   # overrides go to the config

`--unseen` trains configs/memn2n_babi_generated.yaml with and without the unknown-word
mechanism and reports test accuracy on stories with only new names, places and objects
against a test set with the training words ('seen'), the same model weights for both.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.machine import machine_info  # noqa: E402
from benchmarks.memrl_run import train_subprocess  # noqa: E402
from benchmarks.results_store import read_json, update_json  # noqa: E402
from rollout.run_dir import read_metrics  # noqa: E402

CONFIGS = {size: f"configs/memn2n_babi_{size}.yaml" for size in ("1k", "10k")}
# Sukhbaatar et al. 2015, Table 1: MemN2N, PE LS RN, joint training, 3 hops (test error %)
PAPER_ERRORS = {
    "1k": [0.0, 11.4, 21.9, 13.4, 14.4, 2.8, 18.3, 9.3, 1.9, 6.5]
    + [0.3, 0.1, 0.2, 6.9, 0.0, 2.7, 40.4, 9.4, 88.0, 0.0],
    "10k": [0.0, 1.0, 6.8, 0.0, 6.1, 0.1, 6.6, 2.7, 0.0, 0.5]
    + [0.0, 0.1, 0.0, 0.0, 0.2, 0.2, 41.8, 8.0, 75.7, 0.0],
}


def paper(size: str) -> dict:
    """The paper's joint figures on `size`, with their mean and failed tasks."""
    errors = PAPER_ERRORS[size]
    return {
        "name": f"MemN2N PE LS RN, joint, {size}, 3 hops (Sukhbaatar et al. 2015, Table 1; "
        "best of 10)",
        "test_error_pct": {f"qa{t}": e for t, e in zip(range(1, 21), errors)},
        **_summary(errors),
    }


def _final_test(run_dir: Path) -> dict:
    return json.loads((run_dir / "evaluation" / "final" / "test.json").read_text())


def _summary(errors: list[float]) -> dict:
    return {
        "mean_error_pct": round(sum(errors) / len(errors), 2),
        "failed_tasks": sum(e > 5.0 for e in errors),
    }


def _train_error(run_dir: Path) -> dict:
    """The best checkpoint's error on the train split (the questions it trained on, without
    random noise): a full pass, overall and per task."""
    import torch

    import envs
    from rollout.dataset_evaluation import full_pass
    from rollout.evaluation import load_agent, open_run, resolve_checkpoint, run_config

    torch.set_num_threads(1)
    run = open_run(run_dir)
    cfg = run_config(run, trust=False)
    agent, _ = load_agent(cfg, resolve_checkpoint(run, "best"), dict(cfg.env.kwargs))
    env = envs.make(cfg.env.id, **cfg.env.kwargs)
    try:
        report = full_pass(agent, env.unwrapped.dataset("train"))
    finally:
        env.close()
    return {
        "train_error_pct": round(report["error_pct"], 2),
        "train_error_pct_per_task": {
            k: round(v["error_pct"], 1) for k, v in report["groups"].items()
        },
    }


def read_run(run_dir: Path, wall: float | None = None) -> dict:
    """One finished run's figures: its seed, per-task test error, mean, failed tasks, the best
    validation accuracy and the training error of the reported (best validation) weights."""
    rows = read_metrics(run_dir / "metrics.jsonl")
    report = _final_test(run_dir)
    errors = [round(report["groups"][f"qa{t}"]["error_pct"], 1) for t in range(1, 21)]
    evals = [r for r in rows if "eval_accuracy" in r]
    seed = int(_run_config(run_dir)["run"]["seed"])
    return {
        "seed": seed,
        "recipe": recipe(run_dir),
        "wall_clock_s": round(wall if wall is not None else rows[-1]["time_s"], 1),
        "wall_clock_of": "the whole process" if wall is not None else "training (metrics time_s)",
        "epochs": rows[-1].get("epochs") if rows else None,
        "updates": rows[-1].get("updates") if rows else None,
        "best_valid_accuracy": max((r["eval_accuracy"] for r in evals), default=None),
        **_train_error(run_dir),
        "test_error_pct": {f"qa{t}": e for t, e in zip(range(1, 21), errors)},
        **_summary(errors),
        "failed": [f"qa{t}" for t, e in zip(range(1, 21), errors) if e > 5.0],
    }


def _run_config(run_dir: Path) -> dict:
    import yaml

    return yaml.safe_load((run_dir / "config.yaml").read_text())


def config_changes(cfg: dict) -> dict:
    """The fields of a resolved run config that differ from their defaults (env kwargs, which
    have none here, all kept): a field added later at its default leaves this unchanged."""
    from agents import agent_config_class
    from rollout.config import SECTIONS, config_to_dict

    defaults = {name: config_to_dict(cls()) for name, cls in SECTIONS.items()}
    defaults["agent"] = config_to_dict(agent_config_class(cfg["agent"]["name"])())
    defaults["env"].pop("kwargs", None)
    return {
        section: {k: v for k, v in values.items() if defaults[section].get(k, ...) != v}
        for section, values in cfg.items()
    }


def recipe(run_dir: Path) -> str:
    """What makes runs comparable: the run's config fields away from their defaults, its seed,
    folder and name aside."""
    cfg = _run_config(run_dir)
    for key in ("seed", "dir", "name"):
        cfg["run"].pop(key, None)
    return hashlib.sha256(json.dumps(config_changes(cfg), sort_keys=True).encode()).hexdigest()[:16]


def joint_entry(runs: list[dict], overrides: list[str], size: str = "1k") -> dict:
    """The joint entry of `size`: all runs of this recipe, the lowest training error reported."""
    best = min(runs, key=lambda r: r["train_error_pct"])
    mean_of_runs = [r["mean_error_pct"] for r in runs]
    return {
        "config": CONFIGS[size],
        "overrides": overrides,
        "recipe": runs[0]["recipe"],
        "runs": len(runs),
        "selection": "the run with the lowest training error (full pass over the train split "
        "with the reported weights), as the paper picks the best of 10 runs",
        "selected_seed": best["seed"],
        "wall_clock_s": best["wall_clock_s"],
        "epochs": best["epochs"],
        "best_valid_accuracy": best["best_valid_accuracy"],
        "train_error_pct": best["train_error_pct"],
        "test_error_pct": best["test_error_pct"],
        "mean_error_pct": best["mean_error_pct"],
        "failed_tasks": best["failed_tasks"],
        "failed": best["failed"],
        "mean_error_pct_over_runs": round(sum(mean_of_runs) / len(mean_of_runs), 2),
        "failed_tasks_over_runs": [r["failed_tasks"] for r in runs],
        "per_run": runs,
        "paper": paper(size),
    }


def store_runs(
    result: dict,
    runs: list[dict],
    overrides: list[str],
    size: str = "1k",
    name: str | None = None,
) -> dict:
    """Add `runs` to the stored entry `name` (default `joint_{size}`) of the same recipe (a
    different recipe's entry moves to NAME_superseded, or NAME_superseded_N when that is
    taken). A named entry holds a variant beside the main one (e.g. another learning rate)."""
    if len({r["recipe"] for r in runs}) != 1:
        raise ValueError("runs of different recipes cannot form one entry")
    name = name or f"joint_{size}"
    stored = result.get(name)
    previous: list[dict] = []
    if stored is not None:
        if stored.get("recipe") == runs[0]["recipe"]:
            previous = list(stored.get("per_run", []))
        else:
            key, n = f"{name}_superseded", 2
            while key in result:
                key, n = f"{name}_superseded_{n}", n + 1
            result[key] = stored
    entry = joint_entry(previous + runs, overrides, size)
    result[name] = entry
    return entry


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


def markdown_table(entry: dict, size: str) -> str:
    """The `joint_{size}` entry as the docs' table: the selected run, every run, the paper."""
    runs = entry["per_run"]
    columns = [
        (
            f"memrl MemN2N {size}, best of {entry['runs']} by training error "
            f"(seed {entry['selected_seed']})",
            entry,
            True,
        ),
        *((f"seed {r['seed']}", r, False) for r in runs),
    ]
    paper = entry["paper"]
    lines = [
        "| task | " + " | ".join(c[0] for c in columns) + f" | paper {size} (best of 10) |",
        "|---|" + "---:|" * (len(columns) + 1),
    ]

    def row(name: str, cell, bold: bool = False) -> str:
        def mark(text: str, strong: bool) -> str:
            return f"**{text}**" if strong and bold else text

        cells = [mark(cell(figures), strong) for _, figures, strong in columns]
        return f"| {name} | " + " | ".join(cells) + f" | {mark(cell(paper), True)} |"

    for t in range(1, 21):
        lines.append(row(f"qa{t}", lambda f, k=f"qa{t}": f"{f['test_error_pct'][k]:.1f}"))
    lines.append(row("**mean error %**", lambda f: f"{f['mean_error_pct']:.1f}", bold=True))
    lines.append(row("failed tasks (> 5%)", lambda f: str(f["failed_tasks"]), bold=True))
    lines.append(row("training error % (all tasks)", lambda f: _figure(f, "train_error_pct", 2)))
    lines.append(row("wall clock (s)", lambda f: _figure(f, "wall_clock_s", 0)))
    return "\n".join(lines)


def _figure(figures: dict, key: str, digits: int) -> str:
    value = figures.get(key)
    return "" if value is None else f"{value:.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("overrides", nargs="*", help="dotted config overrides")
    parser.add_argument("--seeds", type=int, nargs="*", default=[], help="run.seed of each run")
    parser.add_argument(
        "--add-run", action="append", default=[], help="a finished run folder of the config"
    )
    parser.add_argument("--size", choices=sorted(CONFIGS), default="1k", help="bAbI 1k or 10k")
    parser.add_argument(
        "--table", action="store_true", help="print the stored joint entries' tables, train nothing"
    )
    parser.add_argument("--unseen", action="store_true", help="also the new-words comparison")
    parser.add_argument("--skip-joint", action="store_true", help="only the new-words comparison")
    parser.add_argument("--keep", default="", help="copy each run's folder to KEEP/seed-N")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "babi.json"))
    parser.add_argument(
        "--entry",
        help="store the runs under this entry beside joint_SIZE (a variant of the recipe, "
        "e.g. joint_1k_reference_lr), leaving joint_SIZE as it is",
    )
    args = parser.parse_args()
    if args.entry is not None and not args.entry.startswith(f"joint_{args.size}_"):
        parser.error(f"--entry must start with joint_{args.size}_ (got {args.entry!r})")
    out = Path(args.out)
    if args.table:
        stored = read_json(out)
        for size in sorted(CONFIGS):
            if (entry := stored.get(f"joint_{size}")) is not None:
                print(f"joint_{size}:\n{markdown_table(entry, size)}\n")
        return

    def add(run: dict) -> dict:
        """Store one run now (a stopped benchmark keeps what it measured; see results_store)."""

        def change(result: dict) -> None:
            result["machine"] = machine_info()
            result["torch_threads"] = 1
            store_runs(result, [run], args.overrides, args.size, args.entry)

        return update_json(out, change, indent=2)

    if not args.skip_joint:
        seeds = args.seeds if (args.seeds or args.add_run) else [0]
        result = read_json(out)
        for folder in args.add_run:
            run = read_run(Path(folder))
            result = add(run)
            print(f"added {folder}: seed {run['seed']}, mean {run['mean_error_pct']}")
        for seed in seeds:
            overrides = [*args.overrides, f"run.seed={seed}"]
            keep = Path(args.keep) / f"seed-{seed}" if args.keep else None
            config = ROOT / CONFIGS[args.size]
            _, run, wall = train_subprocess(config, overrides, lambda d: read_run(d), keep=keep)
            run["wall_clock_s"], run["wall_clock_of"] = round(wall, 1), "the whole process"
            result = add(run)
            print(f"seed {seed}: mean {run['mean_error_pct']}, failed {run['failed_tasks']}")
        if (name := args.entry or f"joint_{args.size}") in result:
            print(markdown_table(result[name], args.size))
    if args.unseen:
        figures = unseen_words(args.overrides)
        update_json(out, lambda result: result.update(unseen_words=figures), indent=2)
        print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
