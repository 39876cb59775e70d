"""Figures for benchmarks/results/ntm.json: learning curves and generalisation on copy.

python benchmarks/ntm_plot.py   # writes docs/ntm_copy.png
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def plot(result: dict, path: Path, task: str = "copy") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    agents = result["tasks"].get(task, {})
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for colour, (agent, entry) in zip(("C0", "C1", "C2"), agents.items()):
        for i, run in enumerate(entry["runs"]):
            seqs, _, errors = zip(*run["curve"])
            n = len(entry["runs"])
            label = f"{agent.upper()} ({n} seed{'s' if n > 1 else ''})" if i == 0 else None
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
        ax.legend(fontsize=8)
    fig.suptitle(
        f"{task}: NTM vs LSTM, {result['machine']['cores']} CPU cores (0 plotted as 0.01)",
        fontsize=10,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "benchmarks/results/ntm.json"
    plot(json.loads(source.read_text()), ROOT / "docs/ntm_copy.png")
