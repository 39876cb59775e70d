"""Run folders and episode files are data, the working folder shadows nothing, and the faults
around them (damaged checkpoints, a full disk, a silent job server) end in one message (issue 21).
"""

from __future__ import annotations

import errno
import os
import shutil
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import envs
from rollout.cli import main

ROOT = Path(__file__).resolve().parent.parent
CFG = str(ROOT / "configs/reinforce_cartpole.yaml")
FAST = [
    "rollout.num_workers=0",
    "rollout.envs_per_worker=2",
    "rollout.steps_per_sample=40",
    "run.eval_episodes=2",
    "run.stop_return=null",
]
CALLS: list[dict] = []


def side_effect(**kwargs):
    """Stands for any function a spec could name: calling it is observable."""
    CALLS.append(kwargs)
    return None


@envs.env_maker
def marked_maker(length: int = 3):
    from tests.fakes import Corridor

    return Corridor(length=length)


@pytest.fixture
def isolated(monkeypatch):
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    monkeypatch.delenv(envs.PLUGIN_PATH_ENV, raising=False)
    CALLS.clear()


# ----------------------------------------------------------------------------- the trust model
@pytest.mark.parametrize(
    "spec", ["CartPole-v1", "memrl/Copy-v0", "ALE/Pong-v5", "tmaze/TMaze-v0", "NoSuchId-v0"]
)
def test_ids_are_made_from_files_without_consent(spec):
    envs.refuse_untrusted(spec, "the file", "pass --trust")  # no error: ids import nothing


@pytest.mark.parametrize(
    "spec", ["os:system", "tests.fakes:Corridor", "gymnasium.envs.classic_control:CartPole-v1"]
)
def test_module_specs_from_files_need_consent(spec):
    with pytest.raises(
        envs.EnvSpecError, match="If you trust this file and its code, pass --trust"
    ):
        envs.refuse_untrusted(spec, "the file", "pass --trust")


def test_a_spec_calls_only_env_classes_and_marked_makers(isolated):
    with pytest.raises(envs.EnvSpecError, match="not marked with @envs.env_maker"):
        envs.make("tests.test_untrusted_inputs:side_effect", command="touch x")
    assert CALLS == []  # refused before the call
    for spec in ("builtins:exec", "builtins:eval", "os:system", "subprocess:run"):
        with pytest.raises(envs.EnvSpecError, match="memrl does not call it"):
            envs.make(spec, source="1")
    with pytest.raises(envs.EnvSpecError, match="a class but not a gymnasium.Env subclass"):
        envs.make("subprocess:Popen", args=["true"])
    env = envs.make("tests.test_untrusted_inputs:marked_maker", length=4)
    assert env.observation_space.shape == (4,)


def test_an_installed_entry_point_may_be_a_plain_function(monkeypatch):
    import importlib.metadata

    point = importlib.metadata.EntryPoint(
        name="sec/Maker-v0", value="tests.fakes:Corridor", group=envs.ENTRY_POINT_GROUP
    )
    monkeypatch.setattr(envs, "_entry_points", lambda: {"sec/Maker-v0": point})
    assert envs.make("sec/Maker-v0", length=2).observation_space.shape == (2,)


def write_shadows(folder: Path) -> None:
    """An `envs/` folder without __init__.py, an `agents/` package and a `gymnasium.py`, each
    leaving a marker when imported, and a genuine plug-in module beside them."""
    (folder / "envs").mkdir()
    (folder / "envs" / "atari.py").write_text("open('MARK_envs', 'w').close()\n")
    (folder / "agents").mkdir()
    (folder / "agents" / "__init__.py").write_text("open('MARK_agents', 'w').close()\n")
    (folder / "gymnasium.py").write_text("open('MARK_gymnasium', 'w').close()\n")
    (folder / "local_plug.py").write_text(
        "from tests.fakes import Corridor as Plug  # the env class, re-exported\n"
    )


def test_the_working_folder_shadows_nothing_in_a_subprocess(tmp_path):
    write_shadows(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop(envs.PLUGIN_PATH_ENV, None)
    argv = [sys.executable, "-m", "rollout.cli", "train", CFG, *FAST, "run.total_env_steps=100"]
    argv += ["env.id=local_plug:Plug", "env.kwargs={length: 3}", f"run.dir={tmp_path}/runs"]
    done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert not list(tmp_path.glob("MARK_*")), "a module of the working folder was imported"
    assert len(list((tmp_path / "runs").iterdir())) == 1  # the plug-in from the folder trained


def test_the_plugin_path_serves_only_the_named_module(tmp_path, isolated, monkeypatch):
    write_shadows(tmp_path)
    (tmp_path / "json.py").write_text("open('MARK_json', 'w').close()\nclass Env: pass\n")
    monkeypatch.setenv(envs.PLUGIN_PATH_ENV, str(tmp_path))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(envs.EnvSpecError, match="module 'json' has no attribute 'Env'"):
        envs.make("json:Env")  # the standard library's json wins over the folder's
    assert envs.make("local_plug:Plug", length=2).observation_space.shape == (2,)
    assert not list(tmp_path.glob("MARK_*"))
    sys.modules.pop("local_plug", None)


# ----------------------------------------------------------------------------- resume and faults
@pytest.fixture
def run_dir(tmp_path, isolated, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = ["train", CFG, *FAST, "run.total_env_steps=200", "run.checkpoint_every_steps=80"]
    assert main([*argv, f"run.dir={tmp_path}/runs"]) == 0
    (run,) = (tmp_path / "runs").iterdir()
    return run


def test_resume_falls_back_from_a_damaged_newest_checkpoint(run_dir, capsys):
    from rollout.checkpoints import complete_checkpoints

    older, newest = complete_checkpoints(run_dir / "checkpoints")[-2:]
    (newest / "state.pt").write_bytes((newest / "state.pt").read_bytes()[:64])  # torn
    capsys.readouterr()
    assert main(["train", "--resume", str(run_dir), "run.total_env_steps=300"]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert f"skipped checkpoint {newest.name}: cannot read checkpoint" in err
    assert f"resuming from the older checkpoint {older.name} instead" in err
    assert f"resumed from {older}" in err


def test_a_full_disk_while_training_is_one_message_and_exit_1(run_dir, capsys, monkeypatch):
    from rollout.run_dir import MetricsLog

    def full(self, row, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(self.path))

    monkeypatch.setattr(MetricsLog, "write", full)
    capsys.readouterr()
    assert main(["train", "--resume", str(run_dir), "run.total_env_steps=2000"]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "Traceback" not in err
    assert "training stopped: cannot write" in err and "metrics.jsonl" in err
    assert "No space left on device" in err and "memrl train --resume RUN_DIR" in err


def test_evaluate_prints_progress_lines_into_a_log(run_dir, capsys, monkeypatch):
    import rollout.evaluation

    monkeypatch.setattr(rollout.evaluation, "PROGRESS_EVERY_S", 0.0)
    capsys.readouterr()
    assert main(["evaluate", str(run_dir), "--episodes", "3", "--record", "none"]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "evaluate: 1/3 episodes" in err and "evaluate: 3/3 episodes" in err


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_an_interrupted_evaluation_writes_nothing(run_dir, capsys, monkeypatch, how):
    import signal

    import rollout.evaluation

    saved = []

    def interrupt(path, *args, **kwargs):
        saved.append(path)
        if how == "sigterm":
            os.kill(os.getpid(), signal.SIGTERM)  # `kill PID`: the handler raises
        raise KeyboardInterrupt

    monkeypatch.setattr(rollout.evaluation, "save_episode", interrupt)
    before = signal.getsignal(signal.SIGTERM)  # Ray, started earlier in this process, sets one
    assert main(["evaluate", str(run_dir), "--episodes", "3", "--record", "none"]) == 130
    assert "evaluation interrupted; nothing was written" in capsys.readouterr().err
    assert saved and saved[0].parent.parent.name.startswith(".partial-")  # not yet published
    assert not list((run_dir / "evaluation").iterdir())
    assert signal.getsignal(signal.SIGTERM) == before  # the handler is given back


# ----------------------------------------------------------------------------- network, Ray
def test_a_job_server_that_never_answers_times_out():
    from rollout.submit import SubmitError, probe_job_server

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    accepted = []
    thread = threading.Thread(target=lambda: accepted.append(server.accept()), daemon=True)
    thread.start()
    address = f"http://127.0.0.1:{server.getsockname()[1]}"
    start = time.monotonic()
    try:
        with pytest.raises(SubmitError, match=r"did not answer within 0.5 s .*GET /api/version"):
            probe_job_server(address, timeout_s=0.5)
    finally:
        server.close()
    assert time.monotonic() - start < 5


def test_the_ray_token_file_is_made_owner_only(tmp_path, monkeypatch):
    from rollout.ray_runtime import protect_token_file

    token = tmp_path / "auth_token"
    token.write_text("secret")
    token.chmod(0o644)
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(token))
    assert protect_token_file() is True
    assert stat.S_IMODE(token.stat().st_mode) == 0o600
    assert protect_token_file() is False  # already private
    assert protect_token_file(tmp_path / "missing") is False


@pytest.mark.slow
def test_ray_workers_do_not_import_the_working_folder(tmp_path):
    """Ray puts the driver's starting folder first on its workers' sys.path."""
    write_shadows(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"}
    argv = [sys.executable, "-m", "rollout.cli", "train", CFG, *FAST, "run.total_env_steps=100"]
    argv += ["rollout.num_workers=1", "env.id=local_plug:Plug", f"run.dir={tmp_path}/runs"]
    done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert not list(tmp_path.glob("MARK_*"))
    shutil.rmtree(tmp_path / "runs")
