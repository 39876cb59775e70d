"""Run `memrl train` in its own process, as a user would, and read back what the run wrote."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rollout.run_dir import read_metrics  # noqa: E402

ENV = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}


def train_cli(args: list[str]) -> float:
    """`memrl train ARGS` in its own process; returns its wall-clock seconds, raises
    RuntimeError with the end of its stderr when it fails."""
    # `python -m rollout.cli` is the `memrl` command, and also runs from a plain checkout
    cmd = [sys.executable, "-m", "rollout.cli", "train", *args]
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    return time.monotonic() - start


def train_subprocess(
    config: str | Path,
    overrides: list[str],
    read: Callable[[Path], Any] | None = None,
    keep: Path | None = None,
) -> tuple[list[dict], Any, float]:
    """Train in a temporary run dir. Returns (metrics rows, read(run_dir), wall-clock seconds).
    `keep`: copy the run dir (checkpoints, report) there before the temporary one goes."""
    with tempfile.TemporaryDirectory() as tmp:
        wall = train_cli([str(config), *overrides, f"run.dir={tmp}"])
        (run_dir,) = Path(tmp).iterdir()
        rows = read_metrics(run_dir / "metrics.jsonl")
        extra = read(run_dir) if read is not None else None
        if keep is not None:
            shutil.rmtree(keep, ignore_errors=True)
            shutil.copytree(run_dir, keep)
    return rows, extra, wall
