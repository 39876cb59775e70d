"""Shared fixtures. Ray stays on loopback and is started once per test process: starting it
costs ~4 s on 2 cores, and a dozen files train through it. Tests that need Ray down (their own
ray.init, a cluster, RLlib) take `no_ray`."""

from __future__ import annotations

import os
import time

# Read when Ray is first imported: keep a local Ray on 127.0.0.1 (../shared/RAY.md).
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import pytest  # noqa: E402


@pytest.fixture
def ray_local():
    """An embedded Ray with 2 CPUs, kept up for the next test that asks. Ray frees a removed
    placement group's CPUs a moment later; if a test left CPUs taken for good (an actor or a
    placement group it did not release), the next gets a fresh Ray."""
    import ray

    from rollout.ray_runtime import start_ray, stop_ray

    if ray.is_initialized():
        deadline = time.monotonic() + 5.0
        while ray.available_resources().get("CPU", 0) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        if ray.available_resources().get("CPU", 0) < 2:
            stop_ray()
    start_ray(None, num_workers=2)
    yield


@pytest.fixture
def no_ray():
    from rollout.ray_runtime import stop_ray

    stop_ray()
    yield


def pytest_sessionfinish(session, exitstatus):
    import sys

    if "ray" in sys.modules:
        from rollout.ray_runtime import stop_ray

        stop_ray()
