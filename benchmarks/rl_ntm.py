"""RL-NTM (Zaremba & Sutskever 2015) on the tape tasks: episodes to gym's "solved" threshold
and generalisation to twice the training length.

Each run trains configs/rl_ntm_<task>.yaml through `memrl train` in its own process (the
rollout worker in the driver, `rollout.num_workers=0`, torch at 1 thread: one process on a
shared machine) until the mean return of the last 100 training episodes reaches the task's
`reward_threshold` (`run.stop_train_return`; the env's own curriculum grows the input length as
the agent succeeds) or the time budget runs out. `episodes` is the training episodes when it
stopped, counted at the end of the round of episodes (`rollout.steps_per_sample` steps) that
reached the threshold. The budget is in env steps (`--max-env-steps`), so a busy machine
slows a run down without failing it; `--max-time` is only a wall-clock safety limit.

Generalisation: the final policy, acting greedily, on 100 episodes at a fixed input length L
(the length at which a perfect episode earns the threshold: 25 symbols, 18 for duplicated input)
and at 2L: the fraction of episodes whose whole target is written correctly, and the mean return.

Modes: `reinforce` learns everything from reward alone; `likelihood` is the paper's mixed
objective (the symbol by cross-entropy on info["target"], head moves and the write flag by
REINFORCE).

    python benchmarks/rl_ntm.py [--tasks copy duplicated_input reverse] [--seeds 0 1 2]
        [--modes reinforce] [--max-env-steps 2000000] [--override agent.torso=mlp ...]
        [--fresh]

Results go to benchmarks/results/rl_ntm.json after every run (a rerun skips the runs already
there unless --fresh), and a table is printed.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import envs  # noqa: E402
from agents import make_agent  # noqa: E402
from benchmarks.machine import machine_info  # noqa: E402
from benchmarks.memrl_run import train_subprocess  # noqa: E402
from benchmarks.results_store import read_json, update_json  # noqa: E402
from envs.tape import TAPE_TASKS  # noqa: E402
from rollout.checkpoints import latest_checkpoint, load_checkpoint  # noqa: E402
from rollout.config import load_config  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "rl_ntm.json"
# input length at which a perfect episode earns the threshold (duplicated input: 9 outputs)
TRAIN_LENGTH = {
    "copy": 25,
    "duplicated_input": 18,
    "reverse": 25,
    "repeat_copy": 25,
    "reversed_addition": 25,
}
EVAL_EPISODES = 100


def greedy_episodes(agent, env_id: str, length: int, episodes: int, seed: int) -> dict:
    """`episodes` greedy episodes at a fixed input length, in one vector of envs."""
    env = envs.make_vector(env_id, {"length": length}, episodes, evaluation=True)
    obs, _ = env.reset(seed=seed)
    state = agent.initial_state(episodes)
    returns, running = np.full(episodes, np.nan), np.zeros(episodes)
    perfect = np.zeros(episodes, bool)
    targets = np.array([len(e.unwrapped.target) for e in env.envs])
    while np.isnan(returns).any():
        action, state, _ = agent.act(obs, state, explore=False)
        obs, reward, terminated, truncated, _ = env.step(action)
        running += reward
        for i in np.flatnonzero((terminated | truncated) & np.isnan(returns)):
            returns[i] = running[i]
            perfect[i] = running[i] == targets[i]
        state = agent.reset_state(state, terminated | truncated)
        # a finished env restarts (same-step autoreset): keep its target length for scoring
        targets = np.where(np.isnan(returns), [len(e.unwrapped.target) for e in env.envs], targets)
    env.close()
    return {
        "length": length,
        "solved_fraction": float(perfect.mean()),
        "mean_return": float(returns.mean()),
    }


def evaluate_run(run_dir: Path, config: str, task: str, seed: int) -> dict:
    cfg = load_config(run_dir / "config.yaml")
    state = load_checkpoint(latest_checkpoint(run_dir / "checkpoints"))
    env = envs.make(cfg.env.id)
    agent = make_agent(cfg.agent, env.observation_space, env.action_space)
    agent.load_state_dict(state["learner"]["agent"])
    agent.eval()
    length = TRAIN_LENGTH[task]
    return {
        "train_length": greedy_episodes(agent, cfg.env.id, length, EVAL_EPISODES, 10_000 + seed),
        "double_length": greedy_episodes(
            agent, cfg.env.id, 2 * length, EVAL_EPISODES, 20_000 + seed
        ),
    }


def run_one(
    task: str, mode: str, seed: int, max_time: float, max_steps: int, extra: list[str]
) -> dict:
    config = f"configs/rl_ntm_{task}.yaml"
    overrides = [
        f"run.seed={seed}",
        f"run.max_time_s={max_time}",
        f"run.total_env_steps={max_steps}",
        "rollout.num_workers=0",
        "learner.torch_threads=1",
        f"agent.symbol_loss={mode}",
        "run.eval_every_steps=0",
        *extra,
    ]
    rows, generalisation, wall = train_subprocess(
        config, overrides, read=lambda d: evaluate_run(d, config, task, seed)
    )
    train_rows = [r for r in rows if "return_mean" in r]
    last = train_rows[-1]
    threshold = TAPE_TASKS[task].reward_threshold
    solved = last["return_mean"] >= threshold and last["episodes"] >= 100
    best = max(r["return_mean"] for r in train_rows)
    return {
        "task": task,
        "mode": mode,
        "seed": seed,
        "threshold": threshold,
        "solved": bool(solved),
        "episodes": last["episodes"] if solved else None,
        "episodes_run": last["episodes"],
        "env_steps": last["env_steps"],
        "updates": last["updates"],
        "train_time_s": last["time_s"],
        "wall_s": round(wall, 1),
        "final_return_mean": round(last["return_mean"], 3),
        "best_return_mean": round(best, 3),
        "final_entropy": round(last.get("entropy", float("nan")), 4),
        "curve": [[r["episodes"], round(r["return_mean"], 3)] for r in train_rows],
        **generalisation,
    }


def table(runs: list[dict]) -> str:
    lines = [
        "| task | mode | overrides | seed | solved | episodes | time s | return (last 100) | "
        "L: solved / return | 2L: solved / return |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        tl, dl = r["train_length"], r["double_length"]
        lines.append(
            f"| {r['task']} | {r['mode']} | {' '.join(r['overrides'])} | {r['seed']} | {'yes' if r['solved'] else 'no'} | "
            f"{r['episodes_run']:,} | {r['train_time_s']:.0f} | {r['final_return_mean']:.2f} | "
            f"L={tl['length']}: {tl['solved_fraction']:.2f} / {tl['mean_return']:.1f} | "
            f"2L={dl['length']}: {dl['solved_fraction']:.2f} / {dl['mean_return']:.1f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["copy", "duplicated_input", "reverse"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--modes", nargs="+", default=["reinforce"])
    parser.add_argument("--max-time", type=float, default=900.0, help="wall-clock safety limit")
    parser.add_argument(
        "--max-env-steps", type=int, default=2_000_000, help="the budget of each run (env steps)"
    )
    parser.add_argument(
        "--override", nargs="*", default=[], help="config overrides for every run (recorded)"
    )
    parser.add_argument("--fresh", action="store_true", help="ignore runs already stored")
    args = parser.parse_args(argv)
    for task in args.tasks:
        if task not in TRAIN_LENGTH:
            parser.error(f"unknown task '{task}'; valid: {', '.join(TRAIN_LENGTH)}")
    torch.set_num_threads(1)
    runs: list[dict] = [] if args.fresh else read_json(RESULTS).get("runs", [])
    clear = args.fresh  # --fresh: the first stored run replaces the file's contents
    for task in args.tasks:
        for mode in args.modes:
            for seed in args.seeds:
                key = (task, mode, seed, args.override)
                if any((r["task"], r["mode"], r["seed"], r["overrides"]) == key for r in runs):
                    continue
                start = time.monotonic()
                result = run_one(task, mode, seed, args.max_time, args.max_env_steps, args.override)
                result.update(
                    max_time_s=args.max_time,
                    max_env_steps=args.max_env_steps,
                    overrides=args.override,
                )
                print(
                    f"{task} {mode} seed {seed}: solved={result['solved']} "
                    f"episodes={result['episodes_run']} ({time.monotonic() - start:.0f} s)",
                    flush=True,
                )

                def change(stored: dict, result: dict = result, clear: bool = clear) -> None:
                    if clear:
                        stored.clear()
                    stored.setdefault("runs", []).append(result)  # other keys stay
                    stored["benchmark"] = "rl_ntm"
                    stored["criterion"] = (
                        "mean return of the last 100 training episodes >= gym's "
                        "reward_threshold (Copy 25, DuplicatedInput 9, Reverse 25, RepeatCopy 75, "
                        "ReversedAddition 25)"
                    )
                    stored["machine"] = machine_info()
                    stored["date"] = time.strftime("%Y-%m-%d")

                runs = update_json(RESULTS, change)["runs"]
                clear = False
    print(table(runs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
