"""Starting Ray: an embedded local Ray by default, or joining a cluster with --address.

Ray is imported lazily, after `RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0` is set for an embedded Ray:
that switch (read when Ray is imported) keeps a local Ray on 127.0.0.1 instead of the machine's
network address (../shared/RAY.md). The dashboard stays off for an embedded Ray.

Joining a cluster ships the code with a Ray runtime_env (`code_runtime_env`): memrl's own
packages (agents, envs, rollout) and, for a `package.module:EnvClass` env spec, the user's
package when it lives under the current folder. Python packages (torch, gymnasium, ...) are not
shipped: the cluster's image must have memrl's dependencies installed (configs/cluster/).
Inside a Ray job (`memrl submit`) the job's own runtime_env already carries the code, so
nothing is added there (Ray refuses to merge two runtime_envs that set the same field).

Ray puts the driver's working folder first on its workers' sys.path, where an `envs/` folder or a
`gymnasium.py` there would shadow memrl's modules and installed packages. So an embedded Ray
starts from the folder that holds memrl's own packages (a cluster: from an empty folder), and each
rollout or evaluation actor of an embedded Ray moves into the driver's working folder when it
starts (`actor_folder`; relative paths in env kwargs still work; the folder is not on its
sys.path); a plug-in module from the working folder reaches the workers through
envs.PLUGIN_PATH_ENV instead. (A constructor argument, not a runtime_env setup hook: any job
runtime_env makes every worker process wait for Ray's runtime-env agent, ~0.7 s per actor.)
"""

from __future__ import annotations

import contextlib
import importlib.machinery
import importlib.util
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# Set by Ray's job manager in a job's entrypoint process; its runtime_env is then in effect.
JOB_CONFIG_ENV = "RAY_JOB_CONFIG_JSON_ENV_VAR"
MEMRL_PACKAGES = ("agents", "envs", "rollout")
PLUGIN_PATH_ENV = "MEMRL_PLUGIN_PATH"  # the same name as envs.PLUGIN_PATH_ENV (no envs import)
# Set by an embedded start before ray.init, so every process of that Ray inherits it (a sweep's
# trials, which create rollout actors of their own); cleared when joining a cluster
EMBEDDED_RAY_ENV = "MEMRL_EMBEDDED_RAY"


def memrl_root() -> Path:
    """The folder that holds memrl's packages (the checkout, or site-packages when installed)."""
    return Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def _started_from(folder: Path | None) -> Iterator[None]:
    """Run ray.init from `folder` (None: a new empty folder), the path Ray hands its workers
    first on sys.path, instead of the user's working folder."""
    here = os.getcwd()
    empty = None
    if folder is None:
        folder = empty = Path(tempfile.mkdtemp(prefix="memrl-ray-"))
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(here)
        if empty is not None:
            shutil.rmtree(empty, ignore_errors=True)


def _plugin_spec(top: str) -> Any:
    """importlib's spec of a top-level module, also looking in the plug-in folders."""
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        spec = None
    if spec is not None:
        return spec
    for folder in filter(None, os.environ.get(PLUGIN_PATH_ENV, "").split(os.pathsep)):
        spec = importlib.machinery.PathFinder.find_spec(top, [folder])
        if spec is not None:
            return spec
    return None


def _user_module_path(env_id: str, cwd: Path) -> Path | None:
    """The top-level package (folder) or module (.py file) of a `package.module:Class` env spec,
    when it lives under `cwd`: the user's own code, which the cluster cannot have installed."""
    if ":" not in env_id:
        return None
    top = env_id.split(":", 1)[0].split(".")[0]
    if not top.isidentifier() or top in MEMRL_PACKAGES:
        return None
    spec = _plugin_spec(top)
    if spec is None:
        return None
    if spec.submodule_search_locations:
        path = Path(next(iter(spec.submodule_search_locations)))
    elif spec.origin and spec.origin.endswith(".py"):
        path = Path(spec.origin)
    else:
        return None
    path = path.resolve()
    return path if path.is_relative_to(cwd.resolve()) else None


def code_runtime_env(env_id: str | None = None, cwd: Path | None = None) -> dict[str, Any]:
    """The runtime_env that ships memrl's code (and the user's env package) to a cluster."""
    modules: list[str] = []
    for name in MEMRL_PACKAGES:
        module = sys.modules.get(name) or importlib.import_module(name)
        modules.append(str(Path(module.__file__).resolve().parent))
    if env_id is not None:
        user = _user_module_path(env_id, cwd or Path.cwd())
        if user is not None:
            modules.append(str(user))
    return {"py_modules": modules}


def token_file() -> Path:
    """Where Ray keeps its authentication token (RAY_AUTH_TOKEN_PATH, else ~/.ray/auth_token)."""
    return Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token")


def protect_token_file(path: Path | None = None) -> bool:
    """Make Ray's token file readable by its owner only. An embedded ray.init writes it with the
    process umask (usually 0644: any local user could read the token and run code on the
    cluster). Returns True when the mode was changed."""
    path = path or token_file()
    try:
        info = path.stat()
        if info.st_uid != os.getuid() or info.st_mode & 0o077 == 0:
            return False
        path.chmod(0o600)
    except OSError:
        return False
    return True


def in_ray_job() -> bool:
    return JOB_CONFIG_ENV in os.environ


def start_ray(address: str | None, num_workers: int, env_id: str | None = None) -> bool:
    """Start or join Ray. Returns True when this call started it (so the caller shuts it down).

    With an address, the code is shipped to the cluster (see the module docstring)."""
    if address is None:
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    if ray.is_initialized():
        return False
    if address is None:
        os.environ[EMBEDDED_RAY_ENV] = "1"
        with _started_from(memrl_root()):  # where this process's memrl comes from
            ray.init(
                address="local",
                num_cpus=max(os.cpu_count() or 1, num_workers),
                include_dashboard=False,
                logging_level="ERROR",
                log_to_driver=True,
            )
        protect_token_file()
    else:
        os.environ.pop(EMBEDDED_RAY_ENV, None)
        runtime_env = None if in_ray_job() else code_runtime_env(env_id)
        with _started_from(None):  # the workers get memrl from the shipped runtime_env
            ray.init(address=address, runtime_env=runtime_env, logging_level="ERROR")
    return True


def stop_ray() -> None:
    import ray

    if ray.is_initialized():
        ray.shutdown()
    os.environ.pop(EMBEDDED_RAY_ENV, None)


def actor_folder() -> str | None:
    """The folder a rollout or evaluation actor works in: under an embedded Ray (its workers start
    in memrl's folder, see start_ray) the driver's current one, so relative paths in env kwargs
    mean what they mean to the user (a sweep's trial works in the user's folder too); None (stay
    where Ray put it) on a cluster."""
    return os.getcwd() if os.environ.get(EMBEDDED_RAY_ENV) else None


def cluster_gpus() -> float:
    """GPUs the Ray cluster has in total (0 when Ray is not running)."""
    import ray

    return float(ray.cluster_resources().get("GPU", 0.0)) if ray.is_initialized() else 0.0


def learner_placement_note(device: str) -> str | None:
    """The learner runs in the driver process. When joining a cluster that has GPUs from a
    driver without one, 'auto' trains on the driver's CPU: say so, and how to get a GPU."""
    import torch

    gpus = cluster_gpus()
    if device != "auto" or torch.cuda.is_available() or gpus == 0:
        return None
    return (
        f"note: the cluster has {gpus:g} GPU(s) but this driver has none; the learner runs in "
        "the driver, so it trains on CPU. To train on a cluster GPU, run the driver there: "
        "`memrl submit CONFIG --address http://HEAD:8265 --gpus 1`."
    )


def remote_worker_class(num_cpus: float = 1, restarts: int = 0) -> Any:
    """RolloutWorker as a Ray actor class, taking `folder=actor_folder()` to work in. Rollout
    workers: one CPU, and Ray does not restart them by itself: WorkerGroup replaces a dead worker
    with a fresh actor, so the new one gets the current weights and a fresh seed before it
    samples again (a Ray restart would rerun the constructor and retry the lost `sample` with the
    initial random weights). The evaluation actor: no CPU of its own, restarted by Ray."""
    import ray

    from rollout.worker import RolloutWorker

    class RemoteRolloutWorker(RolloutWorker):
        def __init__(self, *args: Any, folder: str | None = None, **kwargs: Any):
            if folder is not None and os.path.isdir(folder):
                os.chdir(folder)
            super().__init__(*args, **kwargs)

        def location(self) -> dict[str, Any]:
            """Where this worker runs, and which `rollout` package it imported (shipped or not)."""
            import rollout

            return {
                "node_id": ray.get_runtime_context().get_node_id(),
                "pid": os.getpid(),
                "rollout_path": str(Path(rollout.__file__).resolve().parent),
                "cwd": os.getcwd(),
            }

    RemoteRolloutWorker.__name__ = RemoteRolloutWorker.__qualname__ = "RolloutWorker"
    return ray.remote(num_cpus=num_cpus, max_restarts=restarts, max_task_retries=restarts)(
        RemoteRolloutWorker
    )
