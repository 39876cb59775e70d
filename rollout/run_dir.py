"""Run directories: `runs/<name>-<time>/` with config.yaml, metrics.jsonl, tb/, checkpoints/."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from rollout.files import atomic_write_text


class RunDir:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.config = self.path / "config.yaml"
        self.metrics = self.path / "metrics.jsonl"
        self.checkpoints = self.path / "checkpoints"
        self.tensorboard = self.path / "tb"

    @classmethod
    def create(cls, root: str | Path, name: str, config_yaml: str) -> RunDir:
        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = root / f"{name}-{stamp}"
        suffix = 1
        while True:
            try:
                path.mkdir()
                break
            except FileExistsError:
                suffix += 1
                path = root / f"{name}-{stamp}-{suffix}"
        run = cls(path)
        atomic_write_text(run.config, config_yaml)
        return run

    def exists(self) -> bool:
        return self.config.is_file()


class MetricsLog:
    """Appends one JSON object per line to metrics.jsonl and mirrors scalars to TensorBoard."""

    def __init__(self, run: RunDir, tensorboard: bool = True):
        self.path = run.metrics
        self.file = open(self.path, "a", buffering=1)  # noqa: SIM115 - open for the whole run
        self.writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(run.tensorboard))

    def write(self, row: dict[str, Any]) -> None:
        self.file.write(json.dumps(row) + "\n")
        if self.writer is not None:
            step = int(row["env_steps"])
            for key, value in row.items():
                if (
                    key != "env_steps"
                    and isinstance(value, int | float)
                    and not isinstance(value, bool)
                ):
                    self.writer.add_scalar(key, value, step)

    def close(self) -> None:
        self.file.close()
        if self.writer is not None:
            self.writer.close()


def truncate_metrics(path: Path, step: int, key: str = "env_steps") -> None:
    """Drop rows logged after the checkpoint a run resumes from (rows whose `key`, env steps or
    dataset examples, is past `step`), so the log stays one history."""
    if not path.is_file():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:  # a line torn by a crash
            continue
        if row.get(key, 0) <= step:
            kept.append(line)
    atomic_write_text(path, "".join(f"{line}\n" for line in kept))


def read_metrics(path: Path) -> list[dict[str, Any]]:
    rows = []
    for line in Path(path).read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows
