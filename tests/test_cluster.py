"""Joining a Ray cluster: a real two-node cluster (two raylets on loopback, inside a network
namespace of their own, ../shared/RAY.md), code shipped with a runtime_env, workers placed
on both nodes; `memrl submit` through Ray's job server; the pieces without a cluster."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from rollout import ray_runtime
from rollout.checkpoints import latest_checkpoint, load_checkpoint
from rollout.cli import main
from rollout.submit import EXCLUDES, SubmitError, exit_code, job_request, submit

ROOT = Path(__file__).resolve().parents[1]
TRAIN = [
    "agent.learning_starts=64",
    "agent.buffer_size=4000",
    "rollout.num_workers=2",
    "rollout.envs_per_worker=2",
    "rollout.steps_per_sample=32",
    "rollout.placement=STRICT_SPREAD",
    "run.total_env_steps=640",
    "run.eval_episodes=1",
    "run.eval_every_steps=0",
    "run.checkpoint_every_steps=0",
    "run.stop_return=null",
]

needs_netns = pytest.mark.skipif(
    shutil.which("unshare") is None or shutil.which("ip") is None or os.geteuid() != 0,
    reason="a multi-node Ray on one machine needs a loopback-only network namespace (root)",
)


def _in_network_namespace(code: str, *args: str, cwd: Path, timeout: float) -> dict:
    """Run `python -c code args` in a fresh network namespace holding only loopback; returns
    the JSON object the code prints last. Authentication is off for this throwaway cluster."""
    code = f"import sys; sys.path.insert(0, {str(ROOT)!r}); {code}"
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", None)  # it would forbid a second node
    env.pop("PYTHONPATH", None)  # memrl reaches the cluster's workers only by the runtime_env
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    script = 'ip link set lo up && exec "$0" "$@"'
    proc = subprocess.run(
        ["unshare", "-n", "sh", "-c", script, sys.executable, "-c", code, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    return json.loads(lines[-1])


@contextlib.contextmanager
def two_node_cluster(dashboard_port: int | None = None):
    """A head and a second node with one CPU each. The second node gets its own temp folder
    (short: Ray's socket paths must fit 107 bytes): nodes on one machine would otherwise share
    runtime_resources/, and one node's clean-up of a shipped package deletes it under the
    other's processes."""
    from ray.cluster_utils import Cluster

    head = {"num_cpus": 1, "include_dashboard": dashboard_port is not None}
    if dashboard_port is not None:
        head.update(dashboard_host="127.0.0.1", dashboard_port=dashboard_port)
    node_tmp = tempfile.mkdtemp(prefix="memrl-n2-", dir="/tmp")
    cluster = Cluster(initialize_head=True, head_node_args=head)
    try:
        cluster.add_node(num_cpus=1, temp_dir=node_tmp)
        cluster.wait_for_nodes()
        yield cluster
    finally:
        import ray

        ray.shutdown()
        cluster.shutdown()
        shutil.rmtree(node_tmp, ignore_errors=True)


def two_node_training(tmp: str) -> None:
    """(Runs inside the namespace.) Train over a two-node cluster joined by address, as
    `memrl train --address` does; print where the workers ran and what a too-big request says."""
    import ray

    from rollout.config import dump_config, load_config
    from rollout.run_dir import RunDir
    from rollout.trainer import Trainer
    from rollout.worker_group import WorkerError, WorkerGroup

    tmp_path = Path(tmp)
    with two_node_cluster() as cluster:
        assert ray_runtime.start_ray(cluster.address, 2, "CartPole-v1")
        nodes = sorted(n["NodeID"] for n in ray.nodes() if n["Alive"])
        cfg = load_config(ROOT / "configs/dqn_cartpole.yaml", [*TRAIN, f"run.dir={tmp}"])
        trainer = Trainer(cfg, RunDir.create(tmp_path, cfg.run.name, dump_config(cfg)))
        summary = trainer.train()
        three = load_config(
            ROOT / "configs/dqn_cartpole.yaml",
            [*TRAIN, "rollout.num_workers=3", "rollout.placement_timeout_s=3"],
        )
        try:
            WorkerGroup(three, seed=0).close()
            error = None
        except WorkerError as exc:
            error = str(exc)
        result = {
            "nodes": nodes,
            "locations": trainer.workers.locations,
            "env_steps": summary["env_steps"],
            "updates": summary["updates"],
            "checkpoint": summary["checkpoint"],
            "placement_error": error,
        }
        print(json.dumps(result), flush=True)


@needs_netns
def test_training_spreads_workers_over_two_nodes_with_shipped_code(tmp_path):
    code = "import sys; from tests.test_cluster import two_node_training as f; f(sys.argv[1])"
    # the driver runs outside the repository, so Ray cannot hand its workers ROOT as their path
    result = _in_network_namespace(code, str(tmp_path), cwd=tmp_path, timeout=300)
    assert len(result["nodes"]) == 2
    # STRICT_SPREAD: one worker on each node, both nodes used
    assert sorted(loc["node_id"] for loc in result["locations"]) == result["nodes"]
    # the workers imported memrl from the package the runtime_env shipped, not from ROOT
    for loc in result["locations"]:
        assert "runtime_resources" in loc["rollout_path"], loc
        assert not loc["rollout_path"].startswith(str(ROOT))
    assert result["env_steps"] == 640 and result["updates"] > 0
    assert load_checkpoint(Path(result["checkpoint"]))["counters"]["env_steps"] == 640
    error = result["placement_error"]
    assert error and "cannot place 3 rollout workers" in error
    assert "STRICT_SPREAD" in error and "2 node(s)" in error


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def two_node_job(tmp: str, port: str) -> None:
    """(Runs inside the namespace.) `memrl submit` a short run to a two-node cluster's job
    server, as a user would, from the repository folder."""
    with two_node_cluster(dashboard_port=int(port)):
        cmd = [sys.executable, "-m", "rollout.cli", "submit", "configs/dqn_cartpole.yaml"]
        cmd += [*TRAIN, f"run.dir={tmp}", "--address", f"http://127.0.0.1:{port}"]
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=400)
        out = {"rc": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr}
        print(json.dumps(out), flush=True)


@pytest.mark.slow  # ~35 s on 2 cores: a head with Ray's dashboard, then a whole job
@needs_netns
def test_submit_runs_a_job_on_the_cluster_and_streams_its_logs(tmp_path):
    code = "import sys; from tests.test_cluster import two_node_job as f; f(*sys.argv[1:])"
    result = _in_network_namespace(code, str(tmp_path), str(_free_port()), cwd=ROOT, timeout=600)
    assert result["rc"] == 0, result["stderr"][-3000:]
    assert "submitted job raysubmit_" in result["stderr"]
    assert "SUCCEEDED" in result["stderr"]
    logs = " ".join(result["stdout"].split())
    assert "2 rollout workers on 2 node(s)" in logs and "done: total_env_steps reached" in logs
    (run_dir,) = [p for p in tmp_path.iterdir() if (p / "config.yaml").is_file()]
    state = load_checkpoint(latest_checkpoint(run_dir / "checkpoints"))
    assert state["counters"]["env_steps"] == 640


# ----------------------------------------------------------------- without a cluster
def test_code_runtime_env_ships_memrl_and_the_users_env_package(tmp_path, monkeypatch):
    pkg = tmp_path / "myenvs"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "grid.py").write_text("class Grid: ...\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    memrl = [str(ROOT / name) for name in ("agents", "envs", "rollout")]

    assert ray_runtime.code_runtime_env("CartPole-v1", tmp_path) == {"py_modules": memrl}
    shipped = ray_runtime.code_runtime_env("myenvs.grid:Grid", tmp_path)["py_modules"]
    assert shipped == [*memrl, str(pkg.resolve())]
    # an installed module (outside the current folder) is the cluster's to have, not shipped
    assert ray_runtime.code_runtime_env("json.decoder:JSONDecoder", tmp_path)["py_modules"] == memrl


def test_learner_placement_note_when_only_the_cluster_has_gpus(monkeypatch):
    monkeypatch.setattr(ray_runtime, "cluster_gpus", lambda: 2.0)
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    note = ray_runtime.learner_placement_note("auto")
    assert "2 GPU(s)" in note and "trains on CPU" in note and "--gpus 1" in note
    assert ray_runtime.learner_placement_note("cpu") is None
    monkeypatch.setattr(ray_runtime, "cluster_gpus", lambda: 0.0)
    assert ray_runtime.learner_placement_note("auto") is None


def test_job_request_ships_the_current_folder_and_runs_train_by_module(tmp_path):
    (tmp_path / "exp.yaml").write_text("agent: {name: dqn}\n")
    request = job_request("exp.yaml", ["run.seed=3"], tmp_path, gpus=1, cpus=0, env_id="x")
    assert request.entrypoint == ("python -m rollout.cli train exp.yaml run.seed=3 --address auto")
    env = request.runtime_env
    assert env["working_dir"] == str(tmp_path) and env["excludes"] == EXCLUDES
    assert {".venv", "runs", ".git"} <= set(env["excludes"])
    # memrl lives outside tmp_path here, so its packages go along as py_modules
    assert [Path(m).name for m in env["py_modules"]] == ["agents", "envs", "rollout"]
    assert request.entrypoint_num_gpus == 1.0
    # from the repository itself, the working_dir already holds memrl's packages
    assert "py_modules" not in job_request("configs/dqn_cartpole.yaml", [], ROOT, 0, 0).runtime_env
    with pytest.raises(SubmitError, match="outside the current folder"):
        job_request(str(ROOT / "configs/dqn_cartpole.yaml"), [], tmp_path, 0, 0)


class FakeJobClient:
    """Records what `submit` asks of Ray's JobSubmissionClient and plays back a job."""

    def __init__(self, status: str, driver_exit_code: int | None = None):
        self.status, self.code = status, driver_exit_code
        self.submitted: dict = {}
        self.polls = 0

    def submit_job(self, **kwargs):
        self.submitted = kwargs
        return "raysubmit_test123"

    async def tail_job_logs(self, job_id):
        for chunk in ("line one\n", "line two\n"):
            yield chunk

    def get_job_info(self, job_id):
        self.polls += 1
        status = "RUNNING" if self.polls == 1 else self.status  # the stream can end first
        return SimpleNamespace(status=status, driver_exit_code=self.code, message="it ended")


@pytest.mark.parametrize(
    ("status", "driver_code", "expected"),
    [("SUCCEEDED", 0, 0), ("FAILED", 2, 2), ("FAILED", None, 1), ("STOPPED", None, 1)],
)
def test_submit_streams_logs_and_exits_with_the_jobs_status(status, driver_code, expected):
    client = FakeJobClient(status, driver_code)
    request = job_request("configs/dqn_cartpole.yaml", ["run.seed=1"], ROOT, gpus=0, cpus=0)
    out, notes = [], []
    code = submit(
        "http://head:8265",
        request,
        out=out.append,
        note=notes.append,
        client_factory=lambda a: client,
    )
    assert code == expected
    assert "".join(out) == "line one\nline two\n"
    assert notes[0].startswith("submitted job raysubmit_test123: python -m rollout.cli train")
    assert notes[-1].startswith(f"job raysubmit_test123 {status}")
    assert client.submitted["entrypoint"] == request.entrypoint
    assert client.submitted["runtime_env"] == request.runtime_env
    assert client.submitted["entrypoint_num_gpus"] is None  # 0 GPUs: the head node may run it


def test_submit_no_wait_prints_how_to_follow():
    client = FakeJobClient("SUCCEEDED")
    notes: list[str] = []
    request = job_request("configs/dqn_cartpole.yaml", [], ROOT, gpus=0, cpus=0)
    code = submit(
        "http://h:8265", request, wait=False, note=notes.append, client_factory=lambda a: client
    )
    assert code == 0 and client.polls == 0
    assert "ray job logs -f raysubmit_test123 --address http://h:8265" in notes[-1]
    assert exit_code(SimpleNamespace(status="FAILED", driver_exit_code=None)) == 1


def test_cli_submit_user_errors_exit_2(tmp_path, capsys, monkeypatch):
    assert main(["submit", "configs/nope.yaml", "--address", "http://127.0.0.1:9"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["submit", "configs/dqn_cartpole.yaml", "rollout.bogus=1", "--address", "x"]) == 2
    assert "unknown key 'rollout.bogus'" in capsys.readouterr().err
    # nothing listens on port 9: a clear message naming the address, no traceback
    port = _free_port()
    assert (
        main(["submit", "configs/dqn_cartpole.yaml", "--address", f"http://127.0.0.1:{port}"]) == 2
    )
    err = " ".join(capsys.readouterr().err.split())
    assert f"cannot reach the Ray job server at 'http://127.0.0.1:{port}'" in err
