"""Soak: long CartPole DQN training with Ray rollout workers; memory sampled every minute.

Trains `configs/dqn_cartpole.yaml` (run.stop_return off, so it keeps going) for --minutes in
this process, with --workers rollout workers on an embedded Ray, and samples at the start and
every --sample-every-s:
- the RSS of the driver (this process: training loop, learner, replay) and of each rollout
  worker (by the pids the workers report; a replaced worker is followed),
- the Ray object store's bytes in use and object count (all nodes), and the number of object
  references the driver holds (a leak there shows up as a growing count).
The summary gives each series' growth per minute after --warmup-minutes (replay filling,
allocator warm-up); the goal is flat. Writes benchmarks/results/soak.json.

    python benchmarks/soak.py [--minutes 20] [--workers 2] [--sample-every-s 60]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.machine import machine_info  # noqa: E402
from envs.files import atomic_write_text  # noqa: E402

MIB = 2**20


def _rss_mib(pid: int) -> float | None:
    try:
        return round(psutil.Process(pid).memory_info().rss / MIB, 1)
    except psutil.Error:
        return None


def object_store() -> dict[str, float]:
    """Bytes in use and objects in the object store, summed over the cluster's nodes."""
    import ray
    from ray._private.internal_api import get_memory_info_reply, get_state_from_address

    reply = get_memory_info_reply(get_state_from_address(ray.get_runtime_context().gcs_address))
    stats = reply.store_stats
    refs = ray._private.worker.global_worker.core_worker.get_all_reference_counts()
    return {
        "object_store_used_mib": round(stats.object_store_bytes_used / MIB, 3),
        "object_store_objects": int(stats.num_local_objects),
        "driver_object_refs": len(refs),
    }


def sample(trainer, start: float) -> dict:
    workers = [loc["pid"] for loc in trainer.workers.locations]
    rss = [_rss_mib(pid) for pid in workers]
    return {
        "minute": round((time.monotonic() - start) / 60, 2),
        "env_steps": trainer.env_steps,
        "updates": trainer.learner.updates,
        "driver_rss_mib": _rss_mib(os.getpid()),
        "worker_rss_mib": rss,
        "workers_rss_total_mib": round(sum(r for r in rss if r is not None), 1),
        "worker_restarts": trainer.workers.restarts,
        **object_store(),
    }


def growth_per_minute(samples: list[dict], key: str, warmup_minutes: float) -> float | None:
    """Least-squares slope of `key` against minutes over the samples after warm-up."""
    points = [(s["minute"], s[key]) for s in samples if s["minute"] >= warmup_minutes]
    if len(points) < 2:
        return None
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    var = sum((x - mean_x) ** 2 for x, _ in points)
    if var == 0:
        return None
    cov = sum((x - mean_x) * (y - mean_y) for x, y in points)
    return round(cov / var, 3)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--sample-every-s", type=float, default=60.0)
    parser.add_argument("--warmup-minutes", type=float, default=5.0)
    parser.add_argument("--config", default="configs/dqn_cartpole.yaml")
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/soak.json"))
    args = parser.parse_args()

    from rollout.config import dump_config, load_config
    from rollout.ray_runtime import start_ray, stop_ray
    from rollout.run_dir import RunDir
    from rollout.trainer import Trainer

    start_ray(None, args.workers)
    samples: list[dict] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            cfg = load_config(
                ROOT / args.config,
                [
                    f"rollout.num_workers={args.workers}",
                    "run.total_env_steps=1000000000000",
                    f"run.max_time_s={args.minutes * 60}",
                    "run.stop_return=null",
                    "run.log_every_s=60",
                    f"run.dir={tmp}",
                ],
            )
            trainer = Trainer(cfg, RunDir.create(tmp, cfg.run.name, dump_config(cfg)))
            start = time.monotonic()
            stop = threading.Event()

            def sampler() -> None:
                while not stop.is_set():
                    samples.append(sample(trainer, start))
                    print(json.dumps(samples[-1]), file=sys.stderr, flush=True)
                    stop.wait(args.sample_every_s)

            thread = threading.Thread(target=sampler, daemon=True)
            thread.start()
            try:
                summary = trainer.train()
            finally:
                stop.set()
                thread.join()
    finally:
        stop_ray()
    keys = ["driver_rss_mib", "workers_rss_total_mib", "object_store_used_mib"]
    keys += ["object_store_objects", "driver_object_refs"]
    growth = {k: growth_per_minute(samples, k, args.warmup_minutes) for k in keys}
    out = {
        "benchmark": "soak",
        "config": args.config,
        "minutes": args.minutes,
        "workers": args.workers,
        "warmup_minutes": args.warmup_minutes,
        "machine": machine_info(),
        "env_steps": summary["env_steps"],
        "updates": summary["updates"],
        "growth_per_minute_after_warmup": growth,
        "samples": samples,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(Path(args.out), json.dumps(out, indent=1) + "\n")
    print(f"{'minute':>7}{'driver MiB':>12}{'workers MiB':>13}{'store MiB':>11}{'refs':>6}")
    for s in samples:
        print(
            f"{s['minute']:>7.1f}{s['driver_rss_mib']:>12.1f}{s['workers_rss_total_mib']:>13.1f}"
            f"{s['object_store_used_mib']:>11.2f}{s['driver_object_refs']:>6}"
        )
    print(f"growth per minute after {args.warmup_minutes:g} min: {growth}")
    print(f"{summary['env_steps']:,} env steps, {summary['updates']:,} updates; wrote {args.out}")


if __name__ == "__main__":
    main()
