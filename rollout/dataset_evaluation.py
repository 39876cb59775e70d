"""Task-owned evaluation of dataset tasks: full passes over a split, grouped by the task's
groups (bAbI task, CLEVR question family, ...).

During training, `DatasetEvaluator` passes over `valid` in the driver (the best checkpoint is
chosen on its accuracy); at the end, `write_split_report` passes over `test` with the best
weights and writes `<split>.json` and `<split>.md` (the per-group error table).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from envs.files import atomic_write_text
from rollout.periodic_evaluation import EvalResult, snapshot


@torch.no_grad()
def full_pass(agent: Any, dataset: Any, chunk: int = 256) -> dict[str, Any]:
    """Score every example of `dataset` with `agent.score_examples`; the mean of each figure per
    group and overall, with `accuracy` and `error_pct` from the `correct` figure."""
    was_training = agent.training
    agent.eval()
    device = next(agent.parameters()).device
    sums: dict[str, np.ndarray] = {}
    n = len(dataset)
    groups = dataset.groups
    counts = np.bincount(groups, minlength=len(dataset.group_names)).astype(np.float64)
    for start in range(0, n, chunk):
        index = np.arange(start, min(start + chunk, n))
        batch = {k: torch.as_tensor(v, device=device) for k, v in dataset.take(index).items()}
        for key, values in agent.score_examples(batch).items():
            per_group = np.bincount(
                groups[index], weights=values.double().cpu().numpy(), minlength=len(counts)
            )
            sums[key] = sums.get(key, 0.0) + per_group
    agent.train(was_training)
    if "correct" not in sums:
        raise ValueError(f"{type(agent).__name__}.score_examples must return a 'correct' figure")
    by_group = {}
    for g, name in enumerate(dataset.group_names):
        if counts[g] == 0:
            continue
        row = {key: float(total[g] / counts[g]) for key, total in sums.items()}
        row["examples"] = int(counts[g])
        row["error_pct"] = 100.0 * (1.0 - row["correct"])
        by_group[name] = row
    overall = {key: float(total.sum() / max(n, 1)) for key, total in sums.items()}
    accuracy = overall["correct"]
    failed = [name for name, row in by_group.items() if row["error_pct"] > 5.0]
    return {
        "examples": n,
        "accuracy": accuracy,
        "error_pct": 100.0 * (1.0 - accuracy),
        "mean_group_error_pct": float(np.mean([r["error_pct"] for r in by_group.values()])),
        "failed_groups": failed,  # error > 5%, the bAbI convention for a failed task
        "figures": overall,
        "groups": by_group,
    }


class DatasetEvaluator:
    """Full passes over one split in the driver, synchronously (the data fits one machine); the
    interface of `PeriodicEvaluator` so the trainer treats both alike."""

    busy = False

    def __init__(self, agent: Any, task: Any, split: str):
        self.agent, self.split = agent, split
        self.dataset = task.dataset(split)
        self.ready: list[EvalResult] = []

    def submit(
        self,
        weights: dict[str, torch.Tensor],
        env_steps: int,
        env_kwargs: Any = None,
        level_kwargs: Any = None,
    ) -> bool:
        # a dataset has no env kwargs or curriculum levels: both are accepted and unused
        # the learner's agent itself, whose weights these are: no copy to load
        report = full_pass(self.agent, self.dataset)
        figures = {
            "eval_accuracy": report["accuracy"],
            "eval_error_pct": report["error_pct"],
            "eval_mean_group_error_pct": report["mean_group_error_pct"],
        }
        self.ready.append(EvalResult(env_steps, report["accuracy"], figures, snapshot(weights)))
        return True

    def poll(self, block: bool = False) -> list[EvalResult]:
        ready, self.ready = self.ready, []
        return ready

    def evaluate_now(
        self,
        weights: dict[str, torch.Tensor],
        env_steps: int,
        env_kwargs: Any = None,
        level_kwargs: Any = None,
    ) -> EvalResult:
        queued = self.poll()
        self.submit(weights, env_steps)
        result = self.poll()[-1]
        self.ready = queued
        return result

    def close(self) -> None:
        pass


def format_split_table(report: dict[str, Any], split: str) -> str:
    """Markdown: one row per group (error %, examples), then the mean and the failed groups."""
    lines = [f"| {split} group | examples | error % |", "|---|---:|---:|"]
    for name, row in report["groups"].items():
        lines.append(f"| {name} | {row['examples']} | {row['error_pct']:.1f} |")
    lines.append(
        f"| **mean over groups** | {report['examples']} | {report['mean_group_error_pct']:.1f} |"
    )
    failed = report["failed_groups"]
    lines.append("")
    lines.append(
        f"Overall error {report['error_pct']:.2f}% over {report['examples']} examples; "
        f"{len(failed)} group(s) above 5% error{': ' + ', '.join(failed) if failed else ''}."
    )
    return "\n".join(lines) + "\n"


@torch.no_grad()
def explain_examples(agent: Any, task: Any, split: str, per_group: int = 1) -> list[dict]:
    """The first `per_group` examples of each group of `split`, each with the task's words
    (`task.describe(split, index)`: rows, question, answer) and the agent's per-row figures
    (`agent.explain(batch)`: name -> [B, rows], e.g. a memory network's attention per hop).
    [] unless both offer them."""
    if not (hasattr(agent, "explain") and hasattr(task, "describe")):
        return []
    dataset = task.dataset(split)
    index = np.concatenate(
        [np.flatnonzero(dataset.groups == g)[:per_group] for g in range(len(dataset.group_names))]
    )
    if len(index) == 0:
        return []
    was_training = agent.training
    agent.eval()
    device = next(agent.parameters()).device
    batch = {k: torch.as_tensor(v, device=device) for k, v in dataset.take(index).items()}
    figures = {k: v.float().cpu().numpy() for k, v in agent.explain(batch).items()}
    correct = agent.score_examples(batch)["correct"].cpu().numpy()
    agent.train(was_training)
    examples = []
    for i, example in enumerate(index):
        described = dict(task.describe(split, int(example)))
        rows = len(described["rows"])
        described["figures"] = {
            k: [round(float(x), 4) for x in v[i, :rows]] for k, v in figures.items()
        }
        described["correct"] = bool(correct[i])
        examples.append(described)
    return examples


def format_explanations(examples: list[dict]) -> str:
    """Markdown: per example, one row per story row with each figure and a bar of its size,
    and where the task names them (`support_rows`) the supporting facts marked (the layout of
    the MemN2N paper's Table 2)."""
    out = []
    for ex in examples:
        names = list(ex["figures"])
        verdict = "right" if ex["correct"] else "wrong"
        support = ex.get("support_rows")
        marks = ["support"] if support is not None else []
        out += [
            f"### {ex.get('task', '')}: {ex['question']}? (answer: {ex['answer']}; {verdict})",
            "",
            "| row | " + " | ".join(marks + names) + " |",
            "|---|" + "---|" * len(marks + names),
        ]
        for r, text in enumerate(ex["rows"]):
            values = [ex["figures"][n][r] for n in names]
            cells = [f"{v:.2f} {'█' * round(8 * min(max(v, 0.0), 1.0))}" for v in values]
            if support is not None:
                cells.insert(0, "yes" if r in support else "")
            out.append(f"| {text} | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out) + "\n"


def write_split_report(agent: Any, task: Any, split: str, folder: Path) -> dict[str, Any]:
    """A full pass over `split`, written as `<split>.json` and `<split>.md` in `folder`; where
    the agent explains its answers and the task describes its examples, also
    `<split>_explained.json` and `<split>_explained.md` for the first example of each group."""
    report = full_pass(agent, task.dataset(split))
    report["split"] = split
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / f"{split}.json", json.dumps(report, indent=2) + "\n")
    atomic_write_text(folder / f"{split}.md", format_split_table(report, split))
    examples = explain_examples(agent, task, split)
    if examples:
        atomic_write_text(folder / f"{split}_explained.json", json.dumps(examples, indent=2) + "\n")
        atomic_write_text(folder / f"{split}_explained.md", format_explanations(examples))
    return report
