"""Checkpoints: one folder per checkpoint, written whole or not at all (DESIGN.md rule 11).

`checkpoints/<env_steps:012d>/` holds `state.pt` (model, optimiser, counters, RNG states),
optionally `replay.npz`, and a `COMPLETE` marker written last. The folder is filled under a
temporary name and renamed into place, so a crash or a failed write (disk full) leaves the
previous checkpoints intact. Loading uses `torch.load(weights_only=True)`: no arbitrary pickles.
"""

from __future__ import annotations

import io
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from envs.files import atomic_write, fsync_dir

MARKER = "COMPLETE"


class CheckpointError(RuntimeError):
    pass


class CheckpointWriteError(CheckpointError, OSError):
    """Writing a checkpoint failed (disk full, permissions); the older ones are intact."""


def complete_checkpoints(folder: Path) -> list[Path]:
    """Complete checkpoint folders, oldest first."""
    if not folder.is_dir():
        return []
    found = [
        p for p in folder.iterdir() if p.is_dir() and p.name.isdigit() and (p / MARKER).is_file()
    ]
    return sorted(found, key=lambda p: int(p.name))


def latest_checkpoint(folder: Path) -> Path | None:
    found = complete_checkpoints(folder)
    return found[-1] if found else None


def _numpy_state() -> list:
    _, key, pos, has_gauss, cached = np.random.get_state()
    return [key.tolist(), int(pos), int(has_gauss), float(cached)]


def rng_state() -> dict[str, Any]:
    return {
        "python": random.getstate(),
        # plain lists and ints: torch.load(weights_only=True) refuses numpy arrays
        "numpy": _numpy_state(),
        "torch": torch.get_rng_state(),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    key, pos, has_gauss, cached = state["numpy"]
    np.random.set_state(("MT19937", np.array(key, np.uint32), pos, has_gauss, float(cached)))
    torch.set_rng_state(state["torch"])


def save_checkpoint(
    folder: Path, step: int, state: dict[str, Any], replay: Any = None, keep: int = 3
) -> Path:
    """Write checkpoint `step` atomically and keep only the newest `keep` complete ones."""
    final = folder / f"{step:012d}"
    tmp = folder / f".tmp-{step:012d}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob(".tmp-*"):  # left by a process killed mid-write
            shutil.rmtree(stale, ignore_errors=True)
        tmp.mkdir()
        # serialised in memory first: torch.save straight to a full disk fails with an opaque
        # RuntimeError ("unexpected pos"), a plain write with the OSError that says why
        buffer = io.BytesIO()
        torch.save(state, buffer)
        atomic_write(tmp / "state.pt", lambda f: f.write(buffer.getbuffer()))
        if replay is not None:
            atomic_write(tmp / "replay.npz", replay.save)
        atomic_write(tmp / MARKER, lambda f: f.write(b"ok\n"))
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
        fsync_dir(folder)
    except Exception as exc:  # a full disk can surface as torch's RuntimeError, not OSError
        shutil.rmtree(tmp, ignore_errors=True)
        last = latest_checkpoint(folder)
        kept = f"the previous checkpoint {last} is intact" if last else "no earlier checkpoint"
        try:
            free = f" ({shutil.disk_usage(folder).free / 2**20:.1f} MiB free on its disk)"
        except OSError:
            free = ""
        raise CheckpointWriteError(
            f"could not write checkpoint '{final}'{free}: {exc}; {kept}. Free space (or fix "
            "the folder's permissions) and continue with `memrl train --resume RUN_DIR`."
        ) from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for old in complete_checkpoints(folder)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def load_checkpoint(path: Path) -> dict[str, Any]:
    if not (path / MARKER).is_file():
        raise CheckpointError(f"checkpoint '{path}' is incomplete (no {MARKER} marker).")
    try:
        state = torch.load(path / "state.pt", map_location="cpu", weights_only=True)
    except Exception as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"cannot read checkpoint '{path / 'state.pt'}' (damaged or not written by memrl): "
            f"{detail[:300]}"
        ) from None
    if not isinstance(state, dict):
        raise CheckpointError(
            f"checkpoint '{path / 'state.pt'}' holds a {type(state).__name__}, not memrl's state."
        )
    return state


def _check_replay_file(path: Path) -> None:
    """A checkpoint's replay.npz must at least open and hold its header (a torn or overwritten
    file fails here; the arrays themselves are read when the replay is restored)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = data["meta"]
        if meta.shape != (4,):
            raise ValueError(f"its header has shape {meta.shape}, not (4,)")
    except Exception as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"cannot read '{path}' (damaged): {detail[:300]}") from None


def load_latest_readable(folder: Path) -> tuple[Path, dict[str, Any], list[str]]:
    """The newest complete checkpoint whose files read back: (path, state, notes). A damaged
    newer one is skipped, and each note says which and why, so a resume says where it went
    back to. Raises CheckpointError when none is readable (naming each one tried)."""
    notes: list[str] = []
    for path in reversed(complete_checkpoints(folder)):
        try:
            state = load_checkpoint(path)
            if (path / "replay.npz").is_file():
                _check_replay_file(path / "replay.npz")
        except CheckpointError as exc:
            notes.append(f"skipped checkpoint {path.name}: {exc}")
            continue
        if notes:
            notes.append(f"resuming from the older checkpoint {path.name} instead")
        return path, state, notes
    if notes:
        raise CheckpointError(
            f"no readable complete checkpoint in '{folder}': "
            + "; ".join(notes)
            + ". Start a new run, or restore the checkpoint files from a copy."
        )
    raise CheckpointError(
        f"no complete checkpoint in '{folder}' to resume from; start a new run instead."
    )
