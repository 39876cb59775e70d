"""Figures for benchmarks/results/ntm.json: learning curves and generalisation on copy.

python benchmarks/ntm_plot.py           # writes docs/ntm_copy.png
python benchmarks/ntm_plot.py --table   # prints the README's summary and generalisation tables
python benchmarks/ntm_plot.py --sort    # writes docs/ntm_priority_sort.png (cost curves)
python benchmarks/ntm_plot.py --curves copy "ntm (constant lr, eval every 10k steps)"
                                        # per seed: reached, collapses after it, generalisation
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.ntm_summary import after_reaching, headline, summarise  # noqa: E402

# the rows the figure shows: the default NTM (lr 2e-3, grad_clip 1), the earlier default (lr 1e-3)
# on the same budget, and the LSTM baseline
PLOTTED = ("ntm", "ntm (lr 1e-3)", "lstm")


def plot(result: dict, path: Path, task: str = "copy") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["tasks"].get(task, {})
    agents = {name: rows[name] for name in PLOTTED if name in rows}
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for colour, (agent, entry) in zip(("C0", "C1", "C2"), agents.items()):
        for i, run in enumerate(entry["runs"]):
            seqs, _, errors = zip(*run["curve"])
            n = len(entry["runs"])
            model, _, variant = agent.partition(" ")  # 'ntm (grad_clip 10)' -> 'NTM (grad_clip 10)'
            name = " ".join([model.upper(), variant or "(default config)"])
            label = f"{name}, {n} seed{'s' if n > 1 else ''}" if i == 0 else None
            axes[0].plot(seqs, [max(e, 0.01) for e in errors], color=colour, alpha=0.7, label=label)
            lengths = [
                (int(m.group(1)), v)
                for k, v in run["generalisation"].items()
                if (m := re.match(r"length (\d+)$", k)) and isinstance(v, float)
            ]
            if lengths:
                x, y = zip(*lengths)
                axes[1].plot(
                    x, [max(v, 0.01) for v in y], "o-", color=colour, alpha=0.7, label=label
                )
    axes[0].axhline(0.1, color="grey", linestyle=":", linewidth=1)
    axes[0].set(xlabel="training sequences", ylabel="wrong bits per sequence (eval)", yscale="log")
    axes[1].axvline(20, color="grey", linestyle=":", linewidth=1)
    axes[1].set(
        xlabel="copy length (trained on 1-20)", ylabel="wrong bits per sequence", yscale="log"
    )
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower left" if ax is axes[0] else "upper left")
    fig.suptitle(
        f"{task}: NTM vs LSTM, {result['machine']['cores']} CPU cores (0 plotted as 0.01)",
        fontsize=10,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def sort_cost_points(result: dict) -> dict[str, list[tuple[float, float]]]:
    """Priority sort's training-cost curves, (sequences, bits per sequence), of every stored run
    that has one (`train_cost_curve`, stored since 2026-12-07), named 'row, seed S'."""
    out: dict[str, list[tuple[float, float]]] = {}
    for name, entry in result["tasks"].get("priority_sort", {}).items():
        for run in entry["runs"]:
            if run.get("train_cost_curve"):
                out[f"{name}, seed {run['seed']}"] = [(x, y) for x, y in run["train_cost_curve"]]
    return out


def plot_sort_cost(result: dict, path: Path) -> None:
    """The paper's Figure 18 axes: training cost in bits per sequence against sequences, for
    the stored priority-sort runs; the paper's figures at 200k as dotted lines for reference."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, points in sort_cost_points(result).items():
        x, y = zip(*points)
        ax.plot([v / 1000 for v in x], y, label=name)
    for level, text in ((35, "paper's NTM at 200k: 35"), (90, "paper's LSTM at 200k: ~90")):
        ax.axhline(level, color="grey", linestyle=":", linewidth=1)
        ax.text(2, level + 1.5, text, fontsize=8, color="grey")
    ax.set(
        xlabel="training sequences (thousands)",
        ylabel="training cost per sequence (bits)",
        ylim=(0, 135),
        title="priority sort: cost per sequence (mean over 5k-sequence windows)",
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def machine_name(result: dict, entry: dict) -> str:
    """Where a row's learner ran: its GPU when it trained on one, else the CPU ('Intel(R) Xeon(R)
    Processor' -> 'Intel'); the file's top-level machine for rows older than the per-row record."""
    machine = entry.get("machine", result["machine"])
    if "learner.device=cuda" in (entry.get("overrides") or []) and machine.get("gpu"):
        return machine["gpu"]
    return machine["cpu"].split("(")[0].strip()


def summary_table(result: dict) -> str:
    """One markdown row per (task, agent): seeds reached, sequences and seconds (median / worst
    over all seeds; '>budget' where the seeds that did not reach 0.1 bits/seq decide it)."""

    def cell(stats: dict) -> str:
        median, worst, slowest = stats["median"], stats["worst"], stats.get("slowest_reached")
        if worst is None and slowest is not None:
            worst_text = f">budget (slowest reached {slowest:,.0f})"
        else:
            worst_text = ">budget" if worst is None else f"{worst:,.0f}"
        return f"{'>budget' if median is None else f'{median:,.0f}'} / {worst_text}"

    lines = [
        "| task | agent | machine | seeds reached 0.1 bits/seq (sort: cost, n-grams: gap to "
        "optimal; median (worst)) | sequences (median / worst) "
        "| seconds (median / worst) | budget |",
        "|---|---|---|---|---|---|---|",
    ]
    for task, agents in result["tasks"].items():
        for agent, entry in agents.items():
            s, budget = entry["summary"], entry["budget"]
            where = machine_name(result, entry)
            limit = f"{budget['max_sequences']:,} seq"
            if budget["max_time_s"] is not None:
                limit += f" or {budget['max_time_s']:.0f} s"
            lines.append(
                f"| {task} | {agent} | {where} | {headline(task, summarise(entry['runs']))} "
                f"| {cell(s['sequences'])} "
                f"| {cell(s['time_s'])} | {limit} |"
            )
    return "\n".join(lines)


def generalisation_table(result: dict, task: str = "copy") -> str:
    """One markdown row per (agent, seed) of `task`: wrong bits per sequence at each length."""
    agents = result["tasks"].get(task, {})
    lengths = next(iter(r["generalisation"] for e in agents.values() for r in e["runs"]), {})
    lines = [
        "| agent | machine | seed | " + " | ".join(lengths) + " |",
        "|---|---|---|" + "---|" * len(lengths),
    ]
    for agent, entry in agents.items():
        where = machine_name(result, entry)
        for run in entry["runs"]:
            cells = [run["generalisation"].get(length) for length in lengths]
            text = [f"{v:.2f}" if isinstance(v, (int, float)) else "-" for v in cells]
            lines.append(f"| {agent} | {where} | {run['seed']} | " + " | ".join(text) + " |")
    return "\n".join(lines)


def curve_table(result: dict, task: str, labels: list[str]) -> str:
    """One markdown row per seed of each entry `labels` of `task`: the first evaluation at <= 5
    wrong bits per sequence (the paper's repeat-copy figure) and at <= 0.1 (reached), the worst
    evaluation after reaching 0.1 (the collapses) with how many of the evaluations after it
    were above 1 wrong bit, the run's seconds, and the generalisation report of its best weights
    (wrong bits per sequence)."""
    entries = [(label, result["tasks"][task][label]) for label in labels]
    variants = next(iter(r["generalisation"] for _, e in entries for r in e["runs"]), {})
    lines = [
        "| entry | seed | <= 5 bits at | reached 0.1 at | total s | max after | "
        + " | ".join(variants)
        + " |",
        "|---|---|---|---|---|---|" + "---|" * len(variants),
    ]
    for label, entry in entries:
        for run in sorted(entry["runs"], key=lambda r: r["seed"]):
            curve = run["curve"]  # [sequences, seconds, wrong bits] per evaluation
            five = next((seq for seq, _, bits in curve if bits <= 5), None)
            hit, later = after_reaching([bits for _, _, bits in curve])
            above = sum(b > 1 for b in later)
            cells = [
                "-" if five is None else f"{five:,}",
                "-" if hit is None else f"{curve[hit][0]:,}",
                f"{run['total_time_s']:,.0f}",
                f"{max(later):.2f} ({above} of {len(later)} > 1)" if later else "-",
                *(f"{run['generalisation'][v]:.2f}" for v in variants),
            ]
            lines.append(f"| {label} | {run['seed']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def ngrams_table(result: dict) -> str:
    """One markdown row per (agent, seed, weights) of dynamic n-grams measured on the paper's
    validation protocol: cost, Bayes-optimal cost and the gap (bits per sequence), sequences
    trained and seconds; a run whose final weights were scored after it (`final_weights`) has a
    second row. Runs from before the protocol (no gap stored) are left out."""
    lines = [
        "| agent | machine | seed | weights | cost (bits/seq) | Bayes-optimal | gap | sequences "
        "| seconds |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for agent, entry in result["tasks"].get("dynamic_ngrams", {}).items():
        where = machine_name(result, entry)
        for run in entry["runs"]:
            if run.get("gap_bits") is None:
                continue
            trained = run["curve"][-1][0] if run["curve"] else 0
            weights = run.get("report_weights", "best")
            scored = [(weights, run["final_cost_bits"], run["bayes_optimal"][0], run["gap_bits"])]
            if "final_weights" in run:
                final = run["final_weights"]
                scored.append(
                    ("final", final["cost_bits"], final["bayes_optimal"], final["gap_bits"])
                )
            for weights, cost, optimal, gap in scored:
                lines.append(
                    f"| {agent} | {where} | {run['seed']} | {weights} | {cost:.2f} "
                    f"| {optimal:.2f} | {gap:.2f} | {trained:,} | {run['total_time_s']:,.0f} |"
                )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Figures and tables from benchmarks/results/ntm.json (issue 22)."
    )
    parser.add_argument(
        "results", nargs="?", type=Path, default=ROOT / "benchmarks/results/ntm.json"
    )
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--table", action="store_true", help="print the README's tables")
    what.add_argument("--sort", action="store_true", help="write docs/ntm_priority_sort.png")
    what.add_argument(
        "--curves",
        nargs="+",
        metavar=("TASK", "LABEL"),
        help="print TASK's per-seed table for the entries LABEL ... (default: all of them)",
    )
    args = parser.parse_args(argv)
    try:
        result = json.loads(args.results.read_text())
    except (OSError, ValueError) as exc:
        parser.error(f"cannot read {args.results}: {exc}")
    if args.curves:
        task, *labels = args.curves
        entries = result["tasks"].get(task)
        if entries is None:
            parser.error(f"no task '{task}' in {args.results}; tasks: {', '.join(result['tasks'])}")
        missing = [label for label in labels if label not in entries]
        if missing:
            parser.error(f"no entry {missing[0]!r} for {task}; entries: {', '.join(entries)}")
        print(curve_table(result, task, labels or list(entries)))
    elif args.table:
        print(summary_table(result))
        print(
            "\nGeneralisation on copy (wrong bits per sequence; weights of the best evaluation):\n"
        )
        print(generalisation_table(result))
        print("\nDynamic n-grams on the paper's 1000 validation sequences:\n")
        print(ngrams_table(result))
        curricula = [k for k in result["tasks"].get("repeat_copy", {}) if "curriculum" in k]
        print("\nRepeat copy with the repeat-count curriculum, by seed:\n")
        print(curve_table(result, "repeat_copy", curricula))
    elif args.sort:
        plot_sort_cost(result, ROOT / "docs/ntm_priority_sort.png")
    else:
        plot(result, ROOT / "docs/ntm_copy.png")


if __name__ == "__main__":
    main()
