"""Run directories: `runs/<name>-<time>/` with config.yaml, metrics.jsonl, tb/, checkpoints/."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from envs.files import atomic_write_text


class RunDirError(ValueError):
    """A run folder that cannot be made where asked (the message names the path and why)."""


def check_root(root: str | Path) -> None:
    """Fail early, before Ray starts or anything is written, when runs cannot go under `root`:
    it (or a folder above it) is a file, or the first existing folder is not writable."""
    path = Path(root)
    for part in [path, *path.parents]:
        if part.exists():
            if not part.is_dir():
                where = "is" if part == path else f"is under '{part}', which is"
                raise RunDirError(
                    f"run.dir '{root}' {where} a file, not a folder; give run.dir=FOLDER."
                )
            if not os.access(part, os.W_OK | os.X_OK):
                raise RunDirError(
                    f"run.dir '{root}': cannot create folders in '{part}' (no write permission); "
                    "give run.dir=FOLDER somewhere writable."
                )
            return


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
        check_root(root)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = root / f"{name}-{stamp}"
        suffix = 1
        try:
            root.mkdir(parents=True, exist_ok=True)
            while True:
                try:
                    path.mkdir()
                    break
                except FileExistsError:
                    suffix += 1
                    path = root / f"{name}-{stamp}-{suffix}"
            run = cls(path)
            atomic_write_text(run.config, config_yaml)
        except OSError as exc:
            raise RunDirError(
                f"cannot create the run folder '{path}': {exc.strerror or exc}."
            ) from None
        return run

    def exists(self) -> bool:
        return self.config.is_file()


def tensorboard_tag(key: str, learner_keys: Any = (), eval_keys: Any = ()) -> str:
    """A metrics.jsonl key's TensorBoard tag, grouped: `eval/` (evaluation figures), `learner/`
    (the agent's loss metrics and update counts), `time/` (clock and rates), else `train/`."""
    if key in eval_keys or key.startswith("eval_"):
        return f"eval/{key}"
    if key in learner_keys or key == "updates":
        return f"learner/{key}"
    if key in TIME_KEYS or (key.startswith("t_") and key.endswith("_s")):
        return f"time/{key}"
    return f"train/{key}"


TIME_KEYS = ("time_s", "steps_per_s", "updates_per_s")
# The metric tags TensorBoard's hyperparameter view lists beside each run's config.
HPARAM_METRICS = ("eval/eval_score", "train/return_mean")


def hparams_of(config: dict[str, Any]) -> dict[str, Any]:
    """A resolved config as TensorBoard hyperparameters: dotted keys; numbers, strings and bools
    as they are, anything else (lists, mappings, None) as its JSON text."""
    flat: dict[str, Any] = {}
    for section, values in config.items():
        items = values.items() if isinstance(values, dict) else [("", values)]
        for key, value in items:
            name = f"{section}.{key}" if key else str(section)
            ok = isinstance(value, int | float | str | bool)
            flat[name] = value if ok else json.dumps(value, sort_keys=True)
    return flat


class MetricsLog:
    """Appends one JSON object per line to metrics.jsonl and mirrors scalars to TensorBoard,
    under grouped tags (`tensorboard_tag`), with the run's config as hyperparameters."""

    def __init__(self, run: RunDir, tensorboard: bool = True):
        self.path = run.metrics
        self.file = open(self.path, "a", buffering=1)  # noqa: SIM115 - open for the whole run
        self.writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(run.tensorboard))

    def write(self, row: dict[str, Any], learner_keys: Any = (), eval_keys: Any = ()) -> None:
        """One row; `learner_keys` and `eval_keys` name the keys TensorBoard files under
        learner/ and eval/."""
        self.file.write(json.dumps(row) + "\n")
        if self.writer is not None:
            step = int(row["env_steps"])
            for key, value in row.items():
                if (
                    key != "env_steps"
                    and isinstance(value, int | float)
                    and not isinstance(value, bool)
                ):
                    tag = tensorboard_tag(key, learner_keys, eval_keys)
                    self.writer.add_scalar(tag, value, step)

    def write_hparams(self, config: dict[str, Any]) -> None:
        """The resolved config as hyperparameters (TensorBoard's HPARAMS tab), in this run's own
        event file (SummaryWriter.add_hparams would open a sub-folder as a second run)."""
        if self.writer is None:
            return
        from torch.utils.tensorboard.summary import hparams

        metrics = dict.fromkeys(HPARAM_METRICS, 0.0)  # names only: the values are the scalars
        writer = self.writer._get_file_writer()
        for summary in hparams(hparams_of(config), metrics)[:2]:  # experiment, session start
            writer.add_summary(summary)

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
    """The rows of a metrics.jsonl; lines that are not JSON objects (torn by a crash, or not
    text at all) are skipped."""
    rows = []
    text = Path(path).read_bytes().decode("utf-8", errors="replace")
    for line in text.splitlines():
        try:
            row = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows
