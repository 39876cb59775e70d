"""The summary of one benchmarks/ntm.py entry over its seeds, and the figure that heads its row
in the tables (torch-free, so the plotting script can use it too)."""

from __future__ import annotations

import math
import statistics


def summarise(runs: list[dict]) -> dict:
    """Median and worst over all seeds: a seed that did not reach 0.1 bits/seq counts as beyond
    the budget, so the median is null when half the seeds or more did not reach it, and the
    worst is null when any did not ('slowest_reached' is then the slowest seed that did)."""
    done = [r for r in runs if r["reached"]]
    out: dict = {"reached": f"{len(done)}/{len(runs)}"}
    for key in ("sequences", "time_s"):
        values = [r[key] if r["reached"] else math.inf for r in runs]
        median = statistics.median(values) if values else math.inf
        worst = max(values, default=math.inf)
        out[key] = {
            "median": None if math.isinf(median) else median,
            "worst": None if math.isinf(worst) else worst,
            "slowest_reached": max((r[key] for r in done), default=None),
        }
    if len(done) < len(runs):
        out["worst_note"] = "some seeds did not reach 0.1 bits/seq within the budget"
    gaps = [r["gap_bits"] for r in runs if r.get("gap_bits") is not None]
    if gaps:  # dynamic n-grams: the goal is a gap to the Bayes-optimal cost, not 0.1 bits
        out["gap_bits"] = {"median": statistics.median(gaps), "worst": max(gaps)}
    costs = [r["cost_bits"][0] for r in runs if r.get("cost_bits")]
    if costs:  # the report's cost on the training distribution (priority sort's figure)
        out["cost_bits"] = {"median": statistics.median(costs), "worst": max(costs)}
    return out


def after_reaching(bits: list[float], reached: float = 0.1) -> tuple[int | None, list[float]]:
    """The index of the first evaluation at <= `reached` wrong bits per sequence (None: never),
    and the evaluations after it: where a converged run's collapses show."""
    first = next((i for i, b in enumerate(bits) if b <= reached), None)
    return first, ([] if first is None else list(bits[first + 1 :]))


# tasks whose figure is a cost, not the sequences to 0.1 wrong bits: the table's summary key
COST_FIGURE = {"dynamic_ngrams": "gap_bits", "priority_sort": "cost_bits"}


def headline(task: str, summary: dict) -> str:
    """The table's first figure: seeds that reached 0.1 bits/seq, or for the cost tasks the
    median (worst) gap to the Bayes-optimal cost or cost in bits."""
    key = COST_FIGURE.get(task)
    if key is None or key not in summary:
        return summary["reached"]
    figure = summary[key]
    return (
        f"{'gap' if key == 'gap_bits' else 'cost'} {figure['median']:.2f} ({figure['worst']:.2f})"
    )
