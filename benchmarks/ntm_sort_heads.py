"""What an NTM's heads do on priority sort (the paper's Figure 17): where each input vector is
written as a function of its priority, where the heads read at each output step, and which
output positions carry the wrong bits.

    python benchmarks/ntm_sort_heads.py RUN_DIR [--checkpoint best] [--sequences 256]
        [--out docs/ntm_priority_sort_heads.png] [--json heads.json]

For each write head and input step: the row of the largest write weight (the write address;
rows renumbered from the start of the block a head uses, so a block across the wrap is one range),
that weight (1 = one row), and its rank correlation with the priority within a sequence (the
mean over the sequences). For each output step and read head: whether the row read most
strongly is the row where the vector it should output was written (by any write head: the row
of the largest write weight of that input step over all write heads). Prints a JSON summary; `--out` draws the picture.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import envs  # noqa: E402
from rollout.evaluation import load_agent, open_run, resolve_checkpoint, run_config  # noqa: E402


def _ranks(v: np.ndarray) -> np.ndarray:
    """Ranks 0..n-1, tied values sharing their mean rank (write addresses tie often)."""
    order = np.argsort(v, kind="stable")
    ranks = np.empty(len(v), np.float64)
    ranks[order] = np.arange(len(v))
    _, inverse, counts = np.unique(v, return_inverse=True, return_counts=True)
    return np.bincount(inverse, weights=ranks)[inverse] / counts[inverse]


def rank_correlation(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rho with tied ranks averaged; 0 when either side is constant."""
    rx, ry = _ranks(np.asarray(x)), _ranks(np.asarray(y))
    if rx.std() == 0 or ry.std() == 0:
        return 0.0
    return float(np.corrcoef(rx, ry)[0, 1])


def unwrap_rows(rows: np.ndarray, n: int) -> tuple[np.ndarray, int]:
    """Rows of a circular memory of `n` rows, renumbered from the row after the widest run of
    rows nobody used, so that a block of rows across the wrap (..., 126, 127, 0, 1, ...) reads as
    one increasing range. Returns (renumbered rows, the original row numbered 0)."""
    used = np.unique(rows)
    gaps = np.diff(np.concatenate([used, used[:1] + n]))  # from each used row to the next
    start = int(used[(int(gaps.argmax()) + 1) % len(used)])
    return (rows - start) % n, start


def analyse(agent: Any, task: Any, sequences: int, seed: int = 0) -> dict[str, Any]:
    """The heads' figures on `sequences` sampled sequences (see the module docstring)."""
    n, k, bits = task.num_inputs, task.num_outputs, task.bits
    inputs, targets, mask = task.sample_batch(sequences, np.random.default_rng(seed))
    traced = agent.trace(torch.as_tensor(inputs))
    writes = traced["write_weights"].numpy()  # [T, B, H, N]
    reads = traced["read_weights"].numpy()
    logits = traced["logits"].numpy()
    priority = inputs[:n, :, bits]  # [n, B]
    order = np.argsort(-priority, axis=0, kind="stable")[:k]  # input index of output j, [k, B]
    out: dict[str, Any] = {"sequences": sequences, "write_heads": [], "read_heads": []}
    rows = writes.shape[-1]
    raw = writes[:n].argmax(-1)  # [n, B, H], the row numbers the read heads see
    address = raw.copy()
    peak = writes[:n].max(-1)
    for h in range(writes.shape[2]):  # each head's rows renumbered across the wrap
        address[:, :, h], start = unwrap_rows(address[:, :, h], rows)
        out["write_heads"].append({"row_numbered_0": start})
        out["write_heads"][h].update(
            {
                # within a sequence: does the write address follow the priority's order?
                "rank_corr_address_priority": round(
                    float(
                        np.mean(
                            [
                                rank_correlation(priority[:, b], address[:, b, h])
                                for b in range(sequences)
                            ]
                        )
                    ),
                    3,
                ),
                # the same over the num_outputs vectors that are output (the rest may go anywhere)
                "rank_corr_output_vectors": round(
                    float(
                        np.mean(
                            [
                                rank_correlation(
                                    priority[order[:, b], b], address[order[:, b], b, h]
                                )
                                for b in range(sequences)
                            ]
                        )
                    ),
                    3,
                ),
                "mean_peak_weight": round(float(peak[:, :, h].mean()), 3),
                "distinct_rows_per_sequence": round(
                    float(np.mean([len(set(address[:, b, h])) for b in range(sequences)])), 2
                ),
            }
        )
    # the row each input vector went to: the largest write weight over all write heads
    best_head = peak.argmax(-1)  # [n, B]
    item_row = np.take_along_axis(raw, best_head[..., None], -1)[..., 0]  # [n, B]
    wanted_row = np.take_along_axis(item_row, order, 0)  # [k, B]
    read_rows = reads[n + 1 :].argmax(-1)  # [k, B, H]
    for h in range(reads.shape[2]):
        hits = read_rows[:, :, h] == wanted_row
        out["read_heads"].append(
            {
                "reads_target_row": round(float(hits.mean()), 3),
                "mean_peak_weight": round(float(reads[n + 1 :, :, h].max(-1).mean()), 3),
            }
        )
    any_hit = (read_rows == wanted_row[..., None]).any(-1)
    out["any_read_head_on_target_row"] = round(float(any_hit.mean()), 3)
    wrong = ((logits[n + 1 :] > 0) != (targets[n + 1 :] > 0.5)).sum(-1)  # [k, B]
    out["wrong_bits_by_output_position"] = [round(float(v), 2) for v in wrong.mean(1)]
    out["wrong_bits_per_seq"] = round(float(wrong.sum(0).mean()), 2)
    out["_arrays"] = {
        "priority": priority,
        "address": address,
        "peak": peak,
        "read_rows": read_rows,
        "wanted_row": wanted_row,
    }
    return out


def draw(result: dict[str, Any], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    a = result["_arrays"]
    heads = a["address"].shape[2]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    ax = axes[0]
    for h in range(heads):
        ax.scatter(
            a["priority"].ravel(), a["address"][:, :, h].ravel(), s=4, alpha=0.4, label=f"head {h}"
        )
    ax.set_xlabel("priority of the input vector")
    ax.set_ylabel("write address (row of the largest weight, unwrapped)")
    ax.set_title("where each input is written")
    ax.legend(markerscale=3, fontsize=7)
    ax = axes[1]
    k = a["wanted_row"].shape[0]
    b = 0
    ax.plot(range(k), a["wanted_row"][:, b], "k-", lw=2, label="row holding the target vector")
    for h in range(a["read_rows"].shape[2]):
        ax.plot(range(k), a["read_rows"][:, b, h], ".--", label=f"read head {h}")
    ax.set_xlabel("output step (descending priority)")
    ax.set_ylabel("row")
    ax.set_title("reads, one sequence")
    ax.legend(fontsize=7)
    ax = axes[2]
    ax.bar(range(k), result["wrong_bits_by_output_position"])
    ax.set_xlabel("output step (descending priority)")
    ax.set_ylabel("wrong bits (of 8), mean")
    ax.set_title(f"wrong bits by position ({result['wrong_bits_per_seq']} / sequence)")
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run_dir")
    parser.add_argument("--checkpoint", default="best")
    parser.add_argument("--sequences", type=int, default=256)
    parser.add_argument("--out", help="PNG to draw")
    parser.add_argument("--json", help="write the summary here too")
    args = parser.parse_args()
    torch.set_num_threads(1)
    run = open_run(args.run_dir)
    cfg = run_config(run, trust=False)
    agent, step = load_agent(cfg, resolve_checkpoint(run, args.checkpoint), cfg.env.kwargs)
    task = envs.make(cfg.env.id, **cfg.env.kwargs).unwrapped
    if not hasattr(agent, "trace") or not hasattr(task, "num_outputs"):
        raise SystemExit("needs an NTM run on memrl/PrioritySort-v0")
    result = analyse(agent, task, args.sequences)
    result["env_steps"] = step
    if args.out:
        draw(result, Path(args.out), f"{Path(args.run_dir).name}, {args.checkpoint} weights")
    result.pop("_arrays")
    text = json.dumps(result, indent=1)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")


if __name__ == "__main__":
    main()
