"""Shared fixtures. Ray stays on loopback and is started once per module that needs it."""

from __future__ import annotations

import os

# Read when Ray is first imported: keep a local Ray on 127.0.0.1 (../shared/RAY.md).
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import pytest  # noqa: E402


@pytest.fixture(scope="module")
def ray_local():
    from rollout.ray_runtime import start_ray, stop_ray

    started = start_ray(None, num_workers=2)
    yield
    if started:
        stop_ray()
