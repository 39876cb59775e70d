"""Fault tolerance with real Ray processes: a rollout worker SIGKILLed mid-run is replaced and
its batch resampled; the driver SIGKILLed mid-run resumes with continuing counters; a failed
checkpoint write (simulated, and a real full disk on a tiny tmpfs) keeps the previous one."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from rollout import checkpoints as ck
from rollout.cli import main
from rollout.config import dump_config, load_config
from rollout.run_dir import RunDir, read_metrics
from rollout.trainer import Trainer
from rollout.worker_group import WorkerError

ROOT = Path(__file__).resolve().parents[1]
DQN = [
    "agent.learning_starts=64",
    "agent.buffer_size=4000",
    "rollout.num_workers=2",
    "rollout.envs_per_worker=2",
    "rollout.steps_per_sample=32",
    "run.eval_episodes=1",
    "run.eval_every_steps=0",
    "run.stop_return=null",
]


def _trainer(tmp_path: Path, *overrides: str) -> Trainer:
    cfg = load_config(ROOT / "configs/dqn_cartpole.yaml", [*DQN, f"run.dir={tmp_path}", *overrides])
    return Trainer(cfg, RunDir.create(tmp_path, cfg.run.name, dump_config(cfg)))


def _kill_worker_after_launch(trainer: Trainer, at_iteration: int) -> list[int]:
    """SIGKILL worker 0's process right after its next batch is asked for, at `at_iteration`:
    the batch is in flight (or not even started) and is lost with the process."""
    killed: list[int] = []
    launch = trainer.workers.launch

    def launch_then_kill(method: str, num_steps: int) -> None:
        launch(method, num_steps)
        if trainer.iterations == at_iteration and not killed:
            pid = trainer.workers.locations[0]["pid"]
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    trainer.workers.launch = launch_then_kill
    return killed


def test_killed_worker_is_replaced_and_its_batch_resampled(tmp_path, ray_local, capsys):
    trainer = _trainer(tmp_path, "run.total_env_steps=1600", "run.checkpoint_every_steps=0")
    killed = _kill_worker_after_launch(trainer, at_iteration=8)
    summary = trainer.train()

    assert len(killed) == 1
    # 2 workers x 32 steps per iteration: 25 iterations, none lost to the kill
    assert summary["env_steps"] == 1600 and trainer.iterations == 25
    assert trainer.workers.restarts == 1 and trainer.workers.failures == [1, 0]
    assert trainer.workers.locations[0]["pid"] != killed[0]
    rows = read_metrics(trainer.run_dir.metrics)
    assert rows[-1]["worker_restarts"] == 1 and rows[-1]["env_steps"] == 1600
    err = capsys.readouterr().err
    assert "rollout worker 0 died" in err and "resampling its batch" in err


def test_worker_dying_past_its_restart_budget_stops_the_run(tmp_path, ray_local):
    trainer = _trainer(
        tmp_path,
        "run.total_env_steps=1600",
        "run.checkpoint_every_steps=0",
        "rollout.max_worker_restarts=0",
    )
    _kill_worker_after_launch(trainer, at_iteration=3)
    with pytest.raises(WorkerError, match=r"rollout worker 0 died 1 times .*max_worker_restarts=0"):
        trainer.train()


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
        "RAY_USAGE_STATS_ENABLED": "0",
        "PYTHONPATH": str(ROOT),
    }


def _wait_for_checkpoint(folder: Path, proc: subprocess.Popen, timeout: float) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = ck.latest_checkpoint(folder)
        if found is not None:
            return found
        if proc.poll() is not None:
            raise AssertionError(f"memrl train exited early:\n{proc.stderr.read()[-3000:]}")
        time.sleep(0.2)
    raise AssertionError("no checkpoint appeared")


def test_driver_killed_mid_run_resumes_with_continuing_counters(tmp_path):
    train = [sys.executable, "-m", "rollout.cli", "train"]
    args = [
        "configs/dqn_cartpole.yaml",
        *DQN,
        "rollout.num_workers=1",  # an embedded Ray with a worker actor, as users run it
        "run.total_env_steps=1000000",
        "run.checkpoint_every_steps=320",
        "run.keep_checkpoints=100",
        f"run.dir={tmp_path}",
    ]
    proc = _start_train(args)
    try:
        (run_dir,) = _wait_for_run_dir(tmp_path, proc)
        folder = run_dir / "checkpoints"
        _wait_for_checkpoint(folder, proc, timeout=120)
        time.sleep(1.0)  # let it write a few more, so the kill can land mid-write
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        _kill_group(proc.pid)
    assert proc.returncode == -signal.SIGKILL

    # only complete checkpoints count; each of them loads
    complete = ck.complete_checkpoints(folder)
    assert complete
    for path in complete:
        assert ck.load_checkpoint(path)["counters"]["env_steps"] == int(path.name)
    latest = ck.load_checkpoint(complete[-1])["counters"]
    total = latest["env_steps"] + 640

    # resumed with in-process workers: a checkpoint does not depend on the worker layout (and
    # the test saves a second Ray start)
    resumed = subprocess.run(
        [*train, "--resume", str(run_dir), f"run.total_env_steps={total}", "rollout.num_workers=0"],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
        start_new_session=True,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"at env step {latest['env_steps']:,}" in resumed.stderr
    assert not list(folder.glob(".tmp-*"))  # a folder torn by the kill is cleared on the next save
    final = ck.load_checkpoint(ck.latest_checkpoint(folder))
    c = final["counters"]
    assert c["env_steps"] == total
    assert c["iterations"] == latest["iterations"] + 640 // 32
    assert c["episodes"] > latest["episodes"]
    assert final["learner"]["updates"] > 0
    steps = [row["env_steps"] for row in read_metrics(run_dir / "metrics.jsonl")]
    assert steps == sorted(steps) and steps[-1] == total


def _start_train(args: list[str]) -> subprocess.Popen:
    """`memrl train ARGS` in its own session, so the embedded Ray it starts can be cleaned up as
    one process group."""
    return subprocess.Popen(
        [sys.executable, "-m", "rollout.cli", "train", *args],
        cwd=ROOT,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _wait_for_run_dir(root: Path, proc: subprocess.Popen) -> list[Path]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = [p for p in root.iterdir() if (p / "config.yaml").is_file()]
        if found:
            return found
        if proc.poll() is not None:
            raise AssertionError(f"memrl train exited early:\n{proc.stderr.read()[-3000:]}")
        time.sleep(0.2)
    raise AssertionError("no run directory appeared")


def _kill_group(pgid: int) -> None:
    """Kill what is left of a process group this test started (the embedded Ray's processes)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


def test_failed_checkpoint_write_mid_run_stops_clearly_and_keeps_the_previous(
    tmp_path, monkeypatch, capsys
):
    saves = []
    real_save = torch.save

    def save_then_fail(obj, f, *args, **kwargs):
        saves.append(1)
        if len(saves) == 2:  # the second checkpoint: half a file, then the disk is full
            f.write(b"partial")
            raise OSError(28, "No space left on device")
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(ck.torch, "save", save_then_fail)
    code = main(
        [
            "train",
            "configs/dqn_cartpole.yaml",
            *DQN,
            "rollout.num_workers=0",
            "run.total_env_steps=2000",
            "run.checkpoint_every_steps=320",
            f"run.dir={tmp_path}",
        ]
    )
    assert code == 1
    err = "".join(capsys.readouterr().err.split())  # the console wraps long lines anywhere
    assert "couldnotwritecheckpoint" in err and "Nospaceleftondevice" in err
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    folder = run_dir / "checkpoints"
    assert [p.name for p in folder.iterdir()] == ["000000000320"]  # nothing torn left behind
    assert f"thepreviouscheckpoint{folder / '000000000320'}isintact" in err
    assert ck.load_checkpoint(folder / "000000000320")["counters"]["env_steps"] == 320


DISK_FULL = """
import json, sys, torch
from pathlib import Path
from rollout import checkpoints as ck
folder = Path(sys.argv[1])
ck.save_checkpoint(folder, 1, {"w": torch.zeros(1000)})
try:
    ck.save_checkpoint(folder, 2, {"w": torch.zeros(500_000)})  # 2 MB on a 256 kB disk
    error = None
except ck.CheckpointWriteError as exc:
    error = str(exc)
names = sorted(p.name for p in folder.iterdir())
step_one = ck.load_checkpoint(ck.latest_checkpoint(folder))["w"].numel()
print(json.dumps({"error": error, "names": names, "kept": step_one}))
"""


@pytest.mark.skipif(
    shutil.which("unshare") is None or os.geteuid() != 0, reason="needs root and unshare"
)
def test_full_disk_keeps_the_previous_checkpoint(tmp_path):
    mount = tmp_path / "disk"
    mount.mkdir()
    # a private mount namespace: the 256 kB tmpfs is seen by this command only
    script = f'mount -t tmpfs -o size=256k tmpfs {mount} && exec {sys.executable} -c "$0" {mount}'
    proc = subprocess.run(
        ["unshare", "-m", "sh", "-c", script, DISK_FULL],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    if proc.returncode != 0 and "mount" in proc.stderr and "permission" in proc.stderr.lower():
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert (
        "No space left on device" in result["error"] and "MiB free on its disk" in result["error"]
    )
    assert "the previous checkpoint" in result["error"] and "is intact" in result["error"]
    assert result["names"] == ["000000000001"] and result["kept"] == 1000


@pytest.mark.parametrize("workers", [0, 1])
def test_sigterm_saves_a_checkpoint_like_ctrl_c(tmp_path, workers):
    """`kill PID` (SIGTERM) stops a run cleanly: a checkpoint is written, exit code 130; also
    with Ray started (ray.init installs a SIGTERM handler of its own in the driver)."""
    proc = _start_train(
        [
            "configs/dqn_cartpole.yaml",
            *DQN,
            f"rollout.num_workers={workers}",
            "run.total_env_steps=100000000",
            "run.checkpoint_every_steps=0",
            f"run.dir={tmp_path}",
        ]
    )
    try:
        (run_dir,) = _wait_for_run_dir(tmp_path, proc)
        deadline = time.monotonic() + 60
        while not (run_dir / "metrics.jsonl").is_file() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)
        os.kill(proc.pid, signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    finally:
        _kill_group(proc.pid)
    assert proc.returncode == 130, stderr[-2000:]
    assert "interrupted; saved" in stderr
    (saved,) = ck.complete_checkpoints(run_dir / "checkpoints")
    assert ck.load_checkpoint(saved)["counters"]["env_steps"] > 0
