"""`memrl submit`: run `memrl train` as a Ray job on a cluster (Ray's job submission API).

The job ships the current folder as its working_dir (the config file must live in it) plus
memrl's own packages (py_modules) when they are installed elsewhere, so the cluster needs only
memrl's dependencies. The entrypoint is `python -m rollout.cli train CONFIG ... --address auto`
(the same as `memrl train`, without needing memrl's console script on the cluster) and runs on
the head node unless `--gpus`/`--cpus` ask for a node with those resources: the learner runs in
the job's driver process, so `--gpus 1` is how it gets a cluster GPU.

Authentication is Ray's: with token authentication on, set RAY_AUTH_MODE=token and the token
(RAY_AUTH_TOKEN or ~/.ray/auth_token) on the submitting machine.
"""

from __future__ import annotations

import asyncio
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rollout.ray_runtime import code_runtime_env

# Never shipped with the working_dir: environments, run outputs, caches (Ray also honours
# .gitignore and .rayignore files).
EXCLUDES = [
    ".git",
    ".venv",
    "venv",
    "runs",
    "__pycache__",
    "*.pyc",
    "*.egg-info",
    ".pytest_cache",
    ".ruff_cache",
]
TERMINAL = {"SUCCEEDED", "FAILED", "STOPPED"}


def job_run_root(run_dir: str) -> tuple[str, str | None]:
    """Where a run's folder goes. Inside a Ray job (`memrl submit`) the working folder is Ray's
    temporary copy of the submitted folder (under Ray's temp folder, deleted with the job's
    runtime env): a relative run.dir there would put the run, and the path a stopped job prints
    for --resume, in it. So in a job a relative run.dir is taken from the driver node's home
    folder. Returns (run.dir to use, a note saying so, or None)."""
    from rollout.ray_runtime import in_ray_job

    if not in_ray_job() or Path(run_dir).expanduser().is_absolute():
        return str(Path(run_dir).expanduser()), None
    root = Path.home() / run_dir
    return str(root), (
        f"memrl: note: in a Ray job, run.dir '{run_dir}' is taken from the driver's home folder: "
        f"{root} (the job's working folder is a temporary copy that Ray deletes); give "
        "run.dir=/shared/path for storage every node sees."
    )


def resume_command(run_path: Path) -> str:
    """How to continue a stopped run, with the run folder's absolute path; inside a Ray job,
    also as a job (the path is on the driver's node)."""
    path = Path(run_path).resolve()
    command = f"memrl train --resume {path}"
    from rollout.ray_runtime import in_ray_job

    if in_ray_job():
        command += (
            " (on the cluster, as a job: ray job submit --address ADDRESS --working-dir . -- "
            f"python -m rollout.cli train --resume {path} --address auto)"
        )
    return command


class SubmitError(ValueError):
    """A submission the user can fix (bad config path, unreachable address)."""


@dataclass
class JobRequest:
    entrypoint: str
    runtime_env: dict[str, Any]
    entrypoint_num_gpus: float
    entrypoint_num_cpus: float


def job_request(
    config: str,
    overrides: Sequence[str],
    cwd: Path,
    gpus: float,
    cpus: float,
    env_id: str | None = None,
) -> JobRequest:
    """The entrypoint and runtime_env that run CONFIG with overrides on the cluster."""
    path = Path(config)
    resolved = (cwd / path).resolve()
    if not resolved.is_relative_to(cwd.resolve()):
        raise SubmitError(
            f"config '{config}' is outside the current folder '{cwd}', which is what the job "
            "ships to the cluster (its working_dir); copy the config into it or cd to its folder."
        )
    relative = resolved.relative_to(cwd.resolve()).as_posix()
    modules = [
        m
        for m in code_runtime_env(env_id, cwd)["py_modules"]
        if not Path(m).is_relative_to(cwd.resolve())  # already inside the working_dir
    ]
    runtime_env: dict[str, Any] = {"working_dir": str(cwd), "excludes": list(EXCLUDES)}
    if modules:
        runtime_env["py_modules"] = modules
    command = ["python", "-m", "rollout.cli", "train", relative, *overrides, "--address", "auto"]
    return JobRequest(shlex.join(command), runtime_env, float(gpus), float(cpus))


def _stream_logs(client: Any, job_id: str, write: Callable[[str], None]) -> None:
    async def follow() -> None:
        async for chunk in client.tail_job_logs(job_id):
            write(chunk)

    asyncio.run(follow())


def wait_for_status(client: Any, job_id: str, timeout_s: float | None = 30.0) -> Any:
    """The job's info once it is in a terminal state (the log stream can end just before)."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    info = client.get_job_info(job_id)
    while str(getattr(info.status, "value", info.status)) not in TERMINAL:
        if deadline is not None and time.monotonic() > deadline:
            break
        time.sleep(0.5)
        info = client.get_job_info(job_id)
    return info


def exit_code(info: Any) -> int:
    """0 when the job succeeded; else the driver's exit code (2: a config error, 1: training
    stopped), or 1 when Ray does not know it (stopped, or the driver never started)."""
    status = str(getattr(info.status, "value", info.status))
    if status == "SUCCEEDED":
        return 0
    code = getattr(info, "driver_exit_code", None)
    return code if isinstance(code, int) and code > 0 else 1


CONNECT_TIMEOUT_S = 15.0


def probe_job_server(address: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """Ask the job server for its version with a timeout: Ray's client waits forever on a server
    that accepts the connection and never answers. Any HTTP answer (even 401/404) counts."""
    import urllib.error
    import urllib.request

    if address == "auto":
        return  # Ray finds the cluster itself
    url = address if "://" in address else f"http://{address}"
    if not url.startswith(("http://", "https://")):
        return  # ray:// and other schemes: Ray's own client handles them
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/api/version", timeout=timeout_s):
            pass
    except urllib.error.HTTPError:
        return  # it answered
    except (TimeoutError, urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        if not isinstance(exc, TimeoutError) and not isinstance(reason, TimeoutError):
            raise SubmitError(
                f"cannot reach the Ray job server at '{address}': {reason}. Give the dashboard "
                "address of the head node (http://HEAD:8265, e.g. through `ray dashboard "
                "CLUSTER.yaml`)."
            ) from None
        raise SubmitError(
            f"the Ray job server at '{address}' did not answer within {timeout_s:g} s (waited "
            "for a reply to GET /api/version); check that it is the head node's dashboard port "
            "(http://HEAD:8265) and that the head node is healthy."
        ) from None


def submit(
    address: str,
    request: JobRequest,
    wait: bool = True,
    out: Callable[[str], None] = lambda s: print(s, end="", flush=True),
    note: Callable[[str], None] = lambda s: print(s, file=sys.stderr, flush=True),
    client_factory: Callable[[str], Any] | None = None,
) -> int:
    """Submit the job, print its id, stream its logs until it ends; returns the exit code."""
    if client_factory is None:
        from ray.job_submission import JobSubmissionClient

        note(
            f"connecting to the Ray job server at {address} (waiting up to {CONNECT_TIMEOUT_S:g} s)"
        )
        probe_job_server(address)
        client_factory = JobSubmissionClient
    try:
        client = client_factory(address)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise SubmitError(
            f"cannot reach the Ray job server at '{address}': {exc}. Give the dashboard address "
            "of the head node (http://HEAD:8265, e.g. through `ray dashboard CLUSTER.yaml`), and "
            "with token authentication set RAY_AUTH_MODE=token and the cluster's token."
        ) from None
    job_id = client.submit_job(
        entrypoint=request.entrypoint,
        runtime_env=request.runtime_env,
        entrypoint_num_gpus=request.entrypoint_num_gpus or None,
        entrypoint_num_cpus=request.entrypoint_num_cpus or None,
        metadata={"submitted_by": "memrl submit"},
    )
    note(f"submitted job {job_id}: {request.entrypoint}")
    follow = f"ray job logs -f {job_id} --address {address}"
    stop = f"ray job stop {job_id} --address {address}"
    if not wait:
        note(f"follow its logs with: {follow}\nstop it with: {stop}")
        return 0
    timeout: float | None = 30.0
    try:
        _stream_logs(client, job_id, out)
    except KeyboardInterrupt:
        note(f"stopped following job {job_id}; it keeps running. Follow: {follow}; stop: {stop}")
        return 130
    except RuntimeError as exc:  # the log stream closed before the job ended
        note(f"the log stream of job {job_id} ended early ({exc}); waiting for the job to end")
        timeout = None
    info = wait_for_status(client, job_id, timeout)
    status = str(getattr(info.status, "value", info.status))
    code = exit_code(info)
    message = f" ({info.message})" if status != "SUCCEEDED" and info.message else ""
    note(f"job {job_id} {status}{message}")
    return code
