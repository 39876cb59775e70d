"""Starting Ray: an embedded local Ray by default, or joining a cluster with --address.

Ray is imported lazily, after `RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0` is set for an embedded Ray:
that switch (read when Ray is imported) keeps a local Ray on 127.0.0.1 instead of the machine's
network address (../shared/RAY.md). The dashboard stays off for an embedded Ray.
"""

from __future__ import annotations

import os
from typing import Any


def start_ray(address: str | None, num_workers: int) -> bool:
    """Start or join Ray. Returns True when this call started it (so the caller shuts it down)."""
    if address is None:
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    if ray.is_initialized():
        return False
    if address is None:
        ray.init(
            address="local",
            num_cpus=max(os.cpu_count() or 1, num_workers),
            include_dashboard=False,
            logging_level="ERROR",
            log_to_driver=True,
        )
    else:
        ray.init(address=address, logging_level="ERROR")
    return True


def stop_ray() -> None:
    import ray

    if ray.is_initialized():
        ray.shutdown()


def remote_worker_class(max_restarts: int) -> Any:
    import ray

    from rollout.worker import RolloutWorker

    return ray.remote(num_cpus=1, max_restarts=max_restarts, max_task_retries=max_restarts)(
        RolloutWorker
    )
