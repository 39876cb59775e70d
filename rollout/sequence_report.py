"""Evaluation of a trained sequence agent (NTM, LSTM, stack RNN) on its algorithmic task. The
trainer passes the weights of the best evaluation during training (ties: the latest).

Bit errors per sequence (symbol tasks: symbols and whole sequences right) on the training
distribution and on longer sequences (the papers' generalisation tests), written as
`generalisation.json`, a printed table and `generalisation.png`; and pictures of one sequence at
a few lengths: inputs, targets, outputs and the memory through time: for the NTM the write and
read weightings (Graves et al. 2014, Figure 6 style), for an agent with `trace_panels` (the stack
RNN: actions and stack cells) what that returns.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

import envs
from agents import AgentError
from agents.losses import sequence_cross_entropy_loss
from agents.sequence import sequence_loss
from envs.files import atomic_write, atomic_write_text

TRACE_COUNT = 3  # pictures for this many variants: the training length and two longer ones
MAX_HEADS_SHOWN = 4  # weighting panels per kind of head in a picture


@torch.no_grad()
def score(
    agent: Any, task: Any, sequences: int, rng: np.random.Generator, chunk: int = 64
) -> dict[str, float]:
    """Per-sequence figures over `sequences` fresh sequences, the training loss's own: mean bit
    errors and cost (bits) for bit outputs; for symbol outputs (Learning to Execute, the
    languages) wrong symbols and cost per sequence, the fraction of scored symbols right
    (`token_accuracy`, the paper's per-character accuracy under teacher forcing) and of
    sequences entirely right (`sequence_accuracy`)."""
    symbols = bool(getattr(agent, "symbols", False))
    totals: dict[str, float] = {}
    scored_tokens = optimal = 0.0
    bayes = hasattr(task, "bayes_optimal_cost")  # dynamic n-grams: the paper's reference
    by_order: dict[int, float] = {}  # the Bayes estimator with a shorter context, by its bits
    done = 0
    while done < sequences:
        n = min(chunk, sequences - done)
        inputs, targets, mask = task.sample_batch(n, rng)
        logits, _ = agent.core(torch.as_tensor(inputs, dtype=torch.float32))
        if symbols:
            _, figures = sequence_cross_entropy_loss(
                logits, torch.as_tensor(targets), torch.as_tensor(mask)
            )
            scored_tokens += float(mask.sum())
        else:
            _, figures = sequence_loss(logits, torch.as_tensor(targets), torch.as_tensor(mask))
        for key, value in figures.items():  # per-sequence means, weighted by the chunk size
            totals[key] = totals.get(key, 0.0) + float(value) * n
        if bayes:
            optimal += task.bayes_optimal_cost(inputs, targets, mask) * n
            for k in range(task.n - 1):
                cost = task.bayes_optimal_cost(inputs, targets, mask, context_bits=k)
                by_order[k] = by_order.get(k, 0.0) + cost * n
        done += n
    mean = {key: value / sequences for key, value in totals.items()}
    if symbols:
        out = {
            "token_errors_per_seq": mean["token_errors"],
            "cost_bits_per_seq": mean["cost_bits"],
            "token_accuracy": 1.0 - totals["token_errors"] / max(scored_tokens, 1.0),
            "sequence_accuracy": mean["sequence_accuracy"],
        }
    else:
        out = {"bit_errors_per_seq": mean["bit_errors"], "cost_bits_per_seq": mean["cost_bits"]}
    if bayes:
        out["bayes_optimal_cost_bits_per_seq"] = optimal / sequences
        # how far the model is from optimal, in bits per sequence (the paper's comparison)
        out["gap_bits_per_seq"] = out["cost_bits_per_seq"] - optimal / sequences
        out["bayes_cost_by_context_bits"] = {str(k): v / sequences for k, v in by_order.items()}
    return out


def _plot_generalisation(rows: list[dict], title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    key, label = "bit_errors_per_seq", "bit errors per sequence"
    if any("token_accuracy" in r for r in rows):
        key, label = "token_accuracy", "symbols right (teacher forcing)"
    scored = [r for r in rows if key in r]
    ax.plot([r["length"] for r in scored], [r[key] for r in scored], "o-", label=label)
    if key == "token_accuracy":  # whole sequences right: the stack RNN paper's measure
        ax.plot(
            [r["length"] for r in scored],
            [r["sequence_accuracy"] for r in scored],
            "s--",
            label="sequences entirely right",
        )
        ax.legend(fontsize=8)
        ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("length")
    ax.set_ylabel("share right" if key == "token_accuracy" else label)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=110))
    plt.close(fig)


def _visited_window(visited: np.ndarray) -> tuple[int, int]:
    """The shortest circular run of memory rows holding every visited row: heads may move
    backwards and wrap from row 0 to row N-1. Returns (first row, number of rows)."""
    n = len(visited)
    if not visited.any():
        return 0, n
    # the largest circular gap of unvisited rows is what the window leaves out
    best_gap, best_end = 0, 0
    gap = 0
    for i in range(2 * n):
        if visited[i % n]:
            gap = 0
        else:
            gap += 1
            if gap > best_gap and gap <= n:
                best_gap, best_end = gap, i % n
    return (best_end + 1) % n, n - best_gap


def plot_sequence_trace(
    inputs: np.ndarray,
    targets: np.ndarray,
    mask: np.ndarray,
    outputs: np.ndarray,
    weights: list[tuple[str, np.ndarray]],
    title: str,
    path: Path,
    panels_after: Sequence[tuple[str, np.ndarray]] = (),
) -> None:
    """One sequence as grids over time: inputs [T, in], targets [T, out] and outputs [T, out]
    (probabilities, shown on the output steps of `mask` [T]), then each (name, weighting
    [T, memory rows]) cropped to the rows the heads visited. Also used by `memrl evaluate`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [
        ("inputs", inputs),
        ("targets", targets),
        ("outputs", outputs * mask[:, None]),
    ]
    if weights:  # show the memory rows the heads visited, not all of them
        visited = np.any([np.asarray(w).max(0) > 0.05 for _, w in weights], axis=0)
        start, count = _visited_window(visited)
        rows = (start + np.arange(count)) % len(visited)
        span = f"rows {rows[0]}-{rows[-1]}" + (" (wrapping)" if rows[-1] < rows[0] else "")
        panels += [(f"{name}\n{span}", np.asarray(w)[:, rows]) for name, w in weights]
    panels += list(panels_after)  # e.g. the stack RNN's actions and stack cells, as they are
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 1.3 * len(panels) + 0.6), sharex=True)
    for ax, (name, data) in zip(np.atleast_1d(axes), panels):
        ax.imshow(
            np.asarray(data).T,
            aspect="auto",
            cmap="gray_r",
            interpolation="nearest",
            vmin=0,
            vmax=1,
        )
        ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
        ax.set_yticks([])
    np.atleast_1d(axes)[-1].set_xlabel("time step")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100))
    plt.close(fig)


@torch.no_grad()
def _plot_trace(agent: Any, task: Any, label: str, rng: np.random.Generator, path: Path) -> None:
    inputs, targets, mask = task.sample_batch(1, rng)
    x = torch.as_tensor(inputs, dtype=torch.float32)
    extra: list[tuple[str, np.ndarray]] = []
    if hasattr(agent, "trace_panels"):  # the agent draws its own memory (the stack RNN)
        traced = agent.trace(x)
        logits, weights = traced["logits"], []
        extra = agent.trace_panels(traced)
    elif hasattr(agent, "trace"):
        traced = agent.trace(x)
        logits = traced["logits"]
        weights = []
        for kind in ("write", "read"):  # every head (the paper's sort has 8 of each), up to 4
            stacked = traced[f"{kind}_weights"][:, 0]  # [T, heads, rows]
            for h in range(min(stacked.shape[1], MAX_HEADS_SHOWN)):
                suffix = f" {h}" if stacked.shape[1] > 1 else ""
                weights.append((f"{kind} weighting{suffix}", stacked[:, h].numpy()))
    else:
        logits, _ = agent.core(x)
        weights = []
    if getattr(agent, "symbols", False):  # one row per symbol: targets one-hot, softmax outputs
        classes = logits.shape[-1]
        target_rows = np.eye(classes, dtype=np.float32)[targets[:, 0].astype(np.int64)]
        outputs = torch.softmax(logits[:, 0], -1).numpy()
    else:
        target_rows, outputs = targets[:, 0], torch.sigmoid(logits[:, 0]).numpy()
    plot_sequence_trace(
        inputs[:, 0],
        target_rows * mask[:, 0:1],
        mask[:, 0],
        outputs,
        weights,
        f"{type(task).__name__}, {label}",
        path,
        panels_after=extra,
    )


def write_report(
    agent: Any,
    env_id: str,
    env_kwargs: dict[str, Any],
    out_dir: Path,
    sequences: int = 256,
    seed: int = 0,
    weights: str = "best",
) -> dict[str, Any]:
    """Score the agent on its task's variants and write the table, plot and pictures to out_dir.
    `weights` names the weights scored in the report ('best': the best evaluation's, 'final').
    Every row scores `sequences` sequences drawn with a fixed seed, or the task's
    `report_sequences` where its paper fixes the validation set (dynamic n-grams: 1000)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    agent = agent.cpu().eval()
    base = envs.make(env_id, **env_kwargs).unwrapped
    name = type(base).__name__
    sequences = getattr(base, "report_sequences", None) or sequences
    rows: list[dict[str, Any]] = [
        {"variant": "training distribution", "length": None, **env_kwargs}
    ]
    rows[0].update(score(agent, base, sequences, np.random.default_rng(seed)))
    traced = 0
    # the task's own generalisation variants: (label, length, env kwargs) beyond training
    for label, length, kwargs in getattr(base, "report_variants", ()):
        row: dict[str, Any] = {"variant": label, "length": length}
        try:
            task = envs.make(env_id, **{**env_kwargs, **kwargs}).unwrapped
        except envs.EnvSpecError as exc:
            rows.append({**row, "skipped": str(exc)})
            continue
        try:
            agent.check_task(task, env_id)  # e.g. an NTM whose memory is too small for it
        except AgentError as exc:
            rows.append({**row, "skipped": str(exc)})
            continue
        row.update(score(agent, task, sequences, np.random.default_rng(seed + length)))
        rows.append(row)
        if traced < TRACE_COUNT:
            slug = label.replace(" ", "_").replace(">", "").replace("__", "_")
            _plot_trace(
                agent, task, label, np.random.default_rng(seed), out_dir / f"trace_{slug}.png"
            )
            traced += 1
    report = {
        "task": name,
        "env_id": env_id,
        "agent": agent.cfg.name,
        "weights": weights,
        "sequences_per_row": sequences,
        "rows": rows,
    }
    atomic_write_text(out_dir / "generalisation.json", json.dumps(report, indent=1) + "\n")
    if len(rows) > 2:
        _plot_generalisation(
            rows[1:], f"{agent.cfg.name.upper()} on {name}", out_dir / "generalisation.png"
        )
    return report


def format_table(report: dict[str, Any]) -> str:
    rows = report["rows"]
    if any("token_accuracy" in row for row in rows):
        lines = [
            f"{report['agent']} on {report['task']}: symbols right (teacher forcing) and whole "
            f"sequences right ({report['sequences_per_row']} sequences)"
        ]
        for row in rows:
            if "skipped" in row:
                lines.append(f"  {row['variant']:<28} skipped: {row['skipped']}")
                continue
            lines.append(
                f"  {row['variant']:<28} {100 * row['token_accuracy']:7.2f}%  "
                f"{100 * row['sequence_accuracy']:7.2f}%"
            )
        return "\n".join(lines)
    lines = [
        f"{report['agent']} on {report['task']}: bit errors per sequence ({report['sequences_per_row']} sequences)"
    ]
    for row in rows:
        if "skipped" in row:
            lines.append(f"  {row['variant']:<28} skipped: {row['skipped']}")
            continue
        extra = ""
        if "bayes_optimal_cost_bits_per_seq" in row:
            extra = (
                f"  cost {row['cost_bits_per_seq']:.2f} bits (Bayes-optimal "
                f"{row['bayes_optimal_cost_bits_per_seq']:.2f}, gap {row['gap_bits_per_seq']:.2f})"
            )
        lines.append(f"  {row['variant']:<28} {row['bit_errors_per_seq']:9.3f}{extra}")
    return "\n".join(lines)
