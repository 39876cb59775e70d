"""Atari DQN throughput: every figure of issue 5 measured in one run on one machine.

(a)  raw env steps/s of ale-py's vector env (memrl's AtariTrainingEnv), random actions, N envs;
(a') raw batched Nature-CNN inference, observations/s, at batch N on the worker's threads;
(b)  memrl's rollout (Ray worker: envs + CNN inference + frames shipped to the learner's replay)
     with learning off;
(c)  a bare torch loop of DQN updates (batch 32, Nature CNN, target net, RMSProp) on the
     learner's device: the learner's limit;
(d)  memrl with learning on at the Nature replay ratio (one batch-32 update per 4 agent steps);
(e)  RLlib's DQN (new API stack) on Pong at the same replay ratio and batch size
     (benchmarks/rllib_pong.py);
plus the peak RSS of a process holding a full 1M-transition frame replay.

Goals: (b) >= 0.8 x 1/(1/a + 1/a') on CPU (>= 0.8 x a on a GPU machine); (d) updates/s >=
0.8 x (c); (d) env steps/s >= 5 x (e).

    python benchmarks/rollout_throughput.py                 # all, ~15 min on 2 cores
    python benchmarks/rollout_throughput.py --only a a2 c   # some of them
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from benchmarks.machine import machine_info  # noqa: E402
from benchmarks.memrl_run import ENV, train_subprocess  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "rollout_throughput.json"
GAME = "ALE/Pong-v5"
CONFIG = ROOT / "configs" / "dqn_pong.yaml"
ENV_KWARGS = {"repeat_action_probability": 0.0}


def _timed(step, seconds: float, warmup_s: float = 2.0) -> tuple[int, float]:
    """Call step() (returning items done) for `seconds` after a warm-up; (items, seconds)."""
    end = time.perf_counter() + warmup_s
    while time.perf_counter() < end:
        step()
    count, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        count += step()
    return count, elapsed


def raw_env(num_envs: int, seconds: float) -> dict[str, Any]:
    import envs

    env = envs.make_vector(GAME, ENV_KWARGS, num_envs)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    n = int(env.single_action_space.n)

    def step() -> int:
        env.step(rng.integers(0, n, num_envs))
        return num_envs

    count, elapsed = _timed(step, seconds)
    env.close()
    return {"num_envs": num_envs, "agent_steps_per_s": round(count / elapsed, 1)}


def _agent(threads: int):
    import envs
    from agents import make_agent
    from agents.dqn import Config

    torch.set_num_threads(threads)
    env = envs.make(GAME, **ENV_KWARGS)
    agent = make_agent(Config(dueling=False, double=False), env.observation_space, env.action_space)
    obs = np.stack([env.reset(seed=s)[0] for s in range(32)])
    return agent, obs


def raw_inference(batch: int, threads: int, seconds: float) -> dict[str, Any]:
    agent, obs = _agent(threads)
    agent.eval()
    x = obs[:batch] if batch <= len(obs) else np.resize(obs, (batch, *obs.shape[1:]))

    def step() -> int:
        agent.act(x, None, explore=True)
        return batch

    count, elapsed = _timed(step, seconds)
    return {"batch": batch, "threads": threads, "obs_per_s": round(count / elapsed, 1)}


def bare_updates(threads: int, seconds: float) -> dict[str, Any]:
    """DQN updates with nothing around them: random uint8 batches already in memory."""
    agent, _ = _agent(threads)
    opt = torch.optim.RMSprop(
        agent.online.parameters(), lr=2.5e-4, alpha=0.95, eps=0.01, centered=True
    )
    rng = np.random.default_rng(0)
    batch = {
        "obs": torch.as_tensor(rng.integers(0, 256, (32, 4, 84, 84), np.uint8)),
        "next_obs": torch.as_tensor(rng.integers(0, 256, (32, 4, 84, 84), np.uint8)),
        "actions": torch.as_tensor(rng.integers(0, 6, 32)),
        "returns": torch.as_tensor(rng.standard_normal(32).astype(np.float32)),
        "discounts": torch.full((32,), 0.99),
    }

    def step() -> int:
        loss, _ = agent.loss(batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return 1

    count, elapsed = _timed(step, seconds, warmup_s=3.0)
    return {"threads": threads, "batch": 32, "updates_per_s": round(count / elapsed, 2)}


def _window(rows: list[dict], key: str, start_s: float, learning: bool) -> dict[str, Any]:
    """Rates over the metrics rows after `start_s` of training (and after learning started)."""
    rows = [r for r in rows if "eval_return_mean" not in r and r["time_s"] >= start_s]
    if learning:
        rows = [r for r in rows if r["updates"] > 0][1:]
    first, last = rows[0], rows[-1]
    dt = last["time_s"] - first["time_s"]
    out = {
        "window_s": round(dt, 1),
        "env_steps_per_s": round((last["env_steps"] - first["env_steps"]) / dt, 1),
        "updates_per_s": round((last["updates"] - first["updates"]) / dt, 2),
    }
    stages = {k: last[k] - first[k] for k in last if k.startswith("t_") and k in first}
    out["stage_share"] = {k: round(v / dt, 3) for k, v in stages.items()}
    return out


def memrl_rollout(
    num_envs: int, seconds: float, learning: bool, threads: int = 0, extra: list[str] = ()
) -> dict[str, Any]:
    overrides = [
        *extra,
        "env.kwargs={repeat_action_probability: 0.0}",
        "rollout.num_workers=1",
        f"rollout.envs_per_worker={num_envs}",
        f"rollout.steps_per_sample={8 * num_envs}",
        f"agent.learning_starts={2000 if learning else 10**9}",
        "agent.buffer_size=200000",
        f"learner.torch_threads={threads}",
        f"run.max_time_s={seconds}",
        "run.total_env_steps=100000000",
        "run.eval_every_steps=0",
        "run.eval_episodes=1",
        "run.checkpoint_every_steps=0",
        "run.log_every_s=2",
        "run.name=throughput",
    ]
    start = time.monotonic()
    rows, _, wall = train_subprocess(CONFIG, overrides)
    out = _window(rows, "env_steps", start_s=8.0, learning=learning)
    out.update(num_envs=num_envs, learner_threads=threads or "auto", process_wall_s=round(wall, 1))
    print(f"memrl learning={learning}: {out} ({time.monotonic() - start:.0f} s)", file=sys.stderr)
    return out


def replay_memory(transitions: int = 1_000_000, streams: int = 16) -> dict[str, Any]:
    """Peak RSS of a fresh process that fills a frame replay of `transitions` and samples it."""
    code = f"""
import json, resource, time, numpy as np
from rollout.frame_replay_buffer import FrameReplayBuffer
buf = FrameReplayBuffer({transitions}, {streams}, stack=4, n_step=3, gamma=0.99)
rng = np.random.default_rng(0)
T = 256
frames = rng.integers(0, 256, (T, {streams}, 84, 84), np.uint8)
batch = dict(frames=frames, starts=np.zeros((T, {streams}), bool),
             actions=np.zeros((T, {streams}), np.int64), rewards=np.zeros((T, {streams}), np.float32),
             terminated=np.zeros((T, {streams}), bool), truncated=np.zeros((T, {streams}), bool))
batch["starts"][0] = True
t0 = time.perf_counter()
while len(buf) < {transitions}:
    buf.add(batch)
fill = time.perf_counter() - t0
t0 = time.perf_counter()
for _ in range(500):
    buf.sample(32, rng)
sample_ms = (time.perf_counter() - t0) / 500 * 1e3
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps(dict(transitions=len(buf), storage_bytes=buf.nbytes, peak_rss_bytes=peak,
                      fill_s=round(fill, 1), sample_batch32_ms=round(sample_ms, 3))))
"""
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=ENV, capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["peak_rss_gib"] = round(out["peak_rss_bytes"] / 2**30, 2)
    out["storage_gib"] = round(out["storage_bytes"] / 2**30, 2)
    return out


def rllib(seconds: float) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "benchmarks/rllib_pong.py", "--max-time", str(seconds)],
        cwd=ROOT,
        env=ENV,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20.0, help="per raw measurement")
    parser.add_argument("--run-seconds", type=float, default=90.0, help="per memrl run")
    parser.add_argument("--rllib-seconds", type=float, default=240.0)
    parser.add_argument(
        "--only", nargs="*", default=["a", "a2", "b", "c", "d", "e", "memory"], help="figures"
    )
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    results: dict[str, Any] = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    results.update(benchmark="rollout_throughput", machine=machine_info())
    results["date"] = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    figures = results.setdefault("figures", {})
    n = args.envs
    if "a" in args.only:
        figures["a_raw_env"] = raw_env(n, args.seconds)
    if "a2" in args.only:
        figures["a2_raw_inference"] = raw_inference(n, 1, args.seconds)
        figures["a2_raw_inference_all_cores"] = raw_inference(n, cores, args.seconds)
    if "c" in args.only:
        figures["c_bare_updates"] = bare_updates(cores, args.seconds)
        figures["c_bare_updates_1_thread"] = bare_updates(1, args.seconds)
    if "b" in args.only:
        figures["b_memrl_rollout"] = memrl_rollout(n, args.run_seconds, learning=False)
    if "d" in args.only:
        figures["d_memrl_learning"] = memrl_rollout(n, args.run_seconds, learning=True)
    if "e" in args.only:
        figures["e_rllib_dqn"] = rllib(args.rllib_seconds)
    if "memory" in args.only:
        figures["replay_memory_1M"] = replay_memory()
    results["goals"] = goals(figures)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results["goals"], indent=2))


def goals(f: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    a = f.get("a_raw_env", {}).get("agent_steps_per_s")
    a2 = f.get("a2_raw_inference", {}).get("obs_per_s")
    b = f.get("b_memrl_rollout", {}).get("env_steps_per_s")
    c = f.get("c_bare_updates", {}).get("updates_per_s")
    d = f.get("d_memrl_learning", {})
    e = (f.get("e_rllib_dqn", {}).get("after_learning") or {}).get("env_steps_per_s")
    if a and a2 and b:
        bound = 1 / (1 / a + 1 / a2)
        out["b_over_serial_bound"] = {"value": round(b / bound, 3), "goal": ">= 0.8"}
        out["serial_bound_steps_per_s"] = round(bound, 1)
    if c and d.get("updates_per_s"):
        out["d_updates_over_c"] = {"value": round(d["updates_per_s"] / c, 3), "goal": ">= 0.8"}
    if e and d.get("env_steps_per_s"):
        out["d_steps_over_e"] = {"value": round(d["env_steps_per_s"] / e, 2), "goal": ">= 5"}
    return out


if __name__ == "__main__":
    main()
