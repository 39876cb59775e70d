"""Read-modify-write of a benchmark's results JSON, safe against a second benchmark process.

Benchmarks run for minutes to hours and store each run as it finishes, and two of them often run
side by side on different tasks or seeds. Each update reads the file again under an exclusive
lock (`<file>.lock` beside it), applies the caller's change and writes the file atomically, so
neither process drops the other's rows and a killed process never leaves half a file.
"""

from __future__ import annotations

import fcntl
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from envs.files import atomic_write_text


def lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


def _load(path: Path) -> dict[str, Any]:
    try:
        stored = json.loads(path.read_text()) if path.is_file() else {}
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error}); fix or move it away") from error
    if not isinstance(stored, dict):
        raise ValueError(f"{path}: expected a JSON object, found {type(stored).__name__}")
    return stored


def read_json(path: Path) -> dict[str, Any]:
    """The stored dict (empty when the file does not exist yet), read under the lock."""
    path = Path(path)
    if not path.parent.is_dir():
        return {}
    with open(lock_path(path), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_SH)
        return _load(path)


def update_json(path: Path, change: Callable[[dict[str, Any]], Any], indent: int = 1) -> dict:
    """Apply `change` to the stored dict (empty when the file does not exist yet) and write it.
    Returns the dict as written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path(path), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        stored = _load(path)
        change(stored)
        atomic_write_text(path, json.dumps(stored, indent=indent) + "\n")
    return stored
