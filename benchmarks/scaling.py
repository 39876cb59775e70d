"""Scaling: env steps/s and learner updates/s of DQN training with 1, 2, 4, ... rollout workers.

Each point is a full training loop (Trainer: workers sample, replay, learner, weights back),
held for --seconds; the rates are measured from metrics.jsonl between the end of a warm-up
(the first quarter) and the last row before the final evaluation. The reference, measured in
the same run, is raw env stepping in one process (SyncVectorEnv, random actions, the same
envs per worker); `speedup` is steps/s over the 1-worker point's.

Where Ray runs:
- default: an embedded local Ray on this machine;
- `--address ADDR`: an existing cluster (memrl's code is shipped with a runtime_env);
- `--local-nodes K --cpus-per-node C`: a K-node cluster on this machine (separate raylets
  with separate resources). On a machine whose Ray binds to its network address, run it in a
  loopback-only network namespace (root):
      unshare -n sh -c 'ip link set lo up && RAY_AUTH_MODE=disabled \\
          .venv/bin/python benchmarks/scaling.py --local-nodes 2 --cpus-per-node 8'

    python benchmarks/scaling.py [--env CartPole-v1] [--config configs/dqn_cartpole.yaml]
        [--workers 1,2,4] [--seconds 60] [--out benchmarks/results/scaling.json]

The env is any spec memrl resolves; Atari Pong needs its own config (frames, CNN):
`--env ALE/Pong-v5 --config configs/dqn_pong.yaml`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.machine import machine_info  # noqa: E402
from envs.files import atomic_write_text  # noqa: E402


def reference_steps_per_s(env_id: str, num_envs: int, seconds: float) -> float:
    """Raw env stepping in this process: the ceiling one worker could reach."""
    import envs

    env = envs.make_vector(env_id, {}, num_envs)
    env.reset(seed=0)
    env.action_space.seed(0)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        env.step(env.action_space.sample())
        steps += num_envs
    rate = steps / (time.perf_counter() - start)
    env.close()
    return rate


def steady_rates(rows: list[dict], warmup_s: float) -> tuple[float, float]:
    """(env steps/s, updates/s) between the first row after warm-up and the last training row."""
    training = [r for r in rows if "eval_return_mean" not in r]
    after = [r for r in training if r["time_s"] >= warmup_s] or training
    first, last = after[0], training[-1]
    if last["time_s"] <= first["time_s"]:
        first = training[0]
    span = max(last["time_s"] - first["time_s"], 1e-9)
    return (
        (last["env_steps"] - first["env_steps"]) / span,
        (last["updates"] - first["updates"]) / span,
    )


def run_point(config: str, env_id: str, workers: int, seconds: float, extra: list[str]) -> dict:
    from rollout.config import dump_config, load_config
    from rollout.run_dir import RunDir, read_metrics
    from rollout.trainer import Trainer

    with tempfile.TemporaryDirectory() as tmp:
        overrides = [
            f"env.id={env_id}",
            f"rollout.num_workers={workers}",
            "run.total_env_steps=1000000000000",
            f"run.max_time_s={seconds}",
            "run.eval_every_steps=0",
            "run.eval_episodes=1",
            "run.checkpoint_every_steps=0",
            "run.stop_return=null",
            "run.log_every_s=1",
            f"run.dir={tmp}",
            *extra,
        ]
        cfg = load_config(ROOT / config, overrides)
        trainer = Trainer(cfg, RunDir.create(tmp, cfg.run.name, dump_config(cfg)))
        nodes = sorted({loc["node_id"] for loc in trainer.workers.locations})
        summary = trainer.train()
        rows = read_metrics(trainer.run_dir.metrics)
    steps_per_s, updates_per_s = steady_rates(rows, warmup_s=seconds / 4)
    return {
        "workers": workers,
        "envs_per_worker": cfg.rollout.envs_per_worker,
        "nodes_used": len(nodes),
        "env_steps": summary["env_steps"],
        "updates": summary["updates"],
        "seconds": summary["time_s"],
        "env_steps_per_s": round(steps_per_s, 1),
        "updates_per_s": round(updates_per_s, 1),
        "worker_restarts": trainer.workers.restarts,
    }


@contextlib.contextmanager
def local_cluster(nodes: int, cpus_per_node: int):
    """K raylets on this machine, each with its own temp folder (own runtime_resources)."""
    from ray.cluster_utils import Cluster

    temps = [tempfile.mkdtemp(prefix="memrl-n", dir="/tmp") for _ in range(nodes - 1)]
    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": cpus_per_node, "include_dashboard": False}
    )
    try:
        for temp in temps:
            cluster.add_node(num_cpus=cpus_per_node, temp_dir=temp)
        cluster.wait_for_nodes()
        yield cluster.address
    finally:
        import ray

        ray.shutdown()
        cluster.shutdown()
        for temp in temps:
            shutil.rmtree(temp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--env", default="CartPole-v1", help="env spec (memrl/*, Gymnasium id)")
    parser.add_argument("--config", default="configs/dqn_cartpole.yaml")
    parser.add_argument("--workers", default="1,2,4", help="comma-separated worker counts")
    parser.add_argument("--seconds", type=float, default=60.0, help="training time per point")
    parser.add_argument("--reference-seconds", type=float, default=10.0)
    parser.add_argument("--address", help="join this Ray cluster instead of an embedded Ray")
    parser.add_argument("--local-nodes", type=int, default=0, help="start a K-node local cluster")
    parser.add_argument("--cpus-per-node", type=int, default=0, help="with --local-nodes")
    parser.add_argument("--placement", default="SPREAD", help="rollout.placement")
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/scaling.json"))
    parser.add_argument("overrides", nargs="*", help="extra config overrides (KEY=VALUE)")
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    extra = [f"rollout.placement={args.placement}", *args.overrides]

    from rollout.config import load_config
    from rollout.ray_runtime import start_ray, stop_ray

    rollout_cfg = load_config(ROOT / args.config, [f"env.id={args.env}", *extra]).rollout
    reference = reference_steps_per_s(args.env, rollout_cfg.envs_per_worker, args.reference_seconds)
    with contextlib.ExitStack() as stack:
        address = args.address
        if args.local_nodes > 1:
            cpus = args.cpus_per_node or max(counts)
            address = stack.enter_context(local_cluster(args.local_nodes, cpus))
        else:
            os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        start_ray(address, max(counts), args.env)
        stack.callback(stop_ray)
        import ray

        cluster = {
            "address": address or "embedded",
            "nodes": len([n for n in ray.nodes() if n["Alive"]]),
            "cpus": ray.cluster_resources().get("CPU", 0),
            "gpus": ray.cluster_resources().get("GPU", 0),
        }
        points = []
        for n in counts:
            print(f"{n} worker(s), {args.seconds:g} s ...", file=sys.stderr, flush=True)
            points.append(run_point(args.config, args.env, n, args.seconds, extra))
    base = points[0]["env_steps_per_s"] / points[0]["workers"]
    for p in points:
        p["speedup_vs_1_worker_rate"] = round(p["env_steps_per_s"] / max(base, 1e-9), 2)
        p["ratio_to_raw_env_stepping"] = round(p["env_steps_per_s"] / reference, 3)
    out = {
        "benchmark": "scaling",
        "env": args.env,
        "config": args.config,
        "extra_overrides": extra,
        "seconds_per_point": args.seconds,
        "machine": machine_info(),
        "cluster": cluster,
        "reference_raw_env_steps_per_s": round(reference, 1),
        "points": points,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(Path(args.out), json.dumps(out, indent=1) + "\n")
    print(
        f"{'workers':>8}{'nodes':>7}{'steps/s':>10}{'updates/s':>11}{'speedup':>9}{'x raw env':>11}"
    )
    for p in points:
        print(
            f"{p['workers']:>8}{p['nodes_used']:>7}{p['env_steps_per_s']:>10.0f}"
            f"{p['updates_per_s']:>11.0f}{p['speedup_vs_1_worker_rate']:>9.2f}"
            f"{p['ratio_to_raw_env_stepping']:>11.3f}"
        )
    print(f"raw env stepping (1 process, {rollout_cfg.envs_per_worker} envs): {reference:.0f}/s")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
