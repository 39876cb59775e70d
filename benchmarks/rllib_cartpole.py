"""RLlib baseline on CartPole-v1: how fast RLlib's own DQN and PPO learn it.

Measures RLlib (new API stack, RLlib's defaults) with the settings of RLlib's tuned examples
for CartPole (``rllib/examples/algorithms/{dqn,ppo}/cartpole_*.py``, formerly
``rllib/tuned_examples``), one env runner and a fixed seed, on an embedded local Ray.
``algo.train()`` is called in a loop until the training-episode mean return (RLlib's default
smoothing window) reaches the target or the time limit passes. Reports env steps and wall time
to the target, Ray startup time, and the learning curve.

    python benchmarks/rllib_cartpole.py dqn --max-time 600   # one JSON line on stdout
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

# Settings from RLlib's tuned CartPole examples; only num_env_runners (1) and the seed are ours.
# DQN lr is the example's 0.0005 * (num_learners or 1) ** 0.5 with the default of 0 learners.
DQN_TRAINING: dict[str, Any] = {
    "lr": 0.0005,
    "train_batch_size_per_learner": 32,
    "replay_buffer_config": {
        "type": "PrioritizedEpisodeReplayBuffer",
        "capacity": 50_000,
        "alpha": 0.6,
        "beta": 0.4,
    },
    "n_step": (2, 5),
    "double_q": True,
    "dueling": True,
    "epsilon": [(0, 1.0), (10_000, 0.02)],
}
DQN_MODEL: dict[str, Any] = {
    "fcnet_hiddens": [256],
    "fcnet_activation": "tanh",
    "fcnet_bias_initializer": "zeros_",
    "head_fcnet_hiddens": [256],
    "head_fcnet_bias_initializer": "zeros_",
}
PPO_TRAINING: dict[str, Any] = {"lr": 0.0003, "num_epochs": 6, "vf_loss_coeff": 0.01}
PPO_MODEL: dict[str, Any] = {
    "fcnet_hiddens": [32],
    "fcnet_activation": "linear",
    "vf_share_layers": True,
}
STOP_CRITERION = "training episode_return_mean over RLlib's default smoothing window"
SOURCE = "ray-project/ray: rllib/examples/algorithms/{0}/cartpole_{0}.py"


def _num(x: float) -> float | None:
    """NaN (no finished episode yet) is not valid JSON: report it as null."""
    return None if x != x else round(x, 3)


def _build_config(algo: str, seed: int) -> tuple[Any, dict[str, Any]]:
    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig

    if algo == "dqn":
        from ray.rllib.algorithms.dqn import DQNConfig as Config

        training, model = DQN_TRAINING, DQN_MODEL
    elif algo == "ppo":
        from ray.rllib.algorithms.ppo import PPOConfig as Config

        training, model = PPO_TRAINING, PPO_MODEL
    else:
        raise ValueError(f"algo must be 'dqn' or 'ppo', not {algo!r}")
    config = (
        Config()
        .environment("CartPole-v1")
        .env_runners(num_env_runners=1)
        .training(**training)
        .rl_module(model_config=DefaultModelConfig(**model))
        .debugging(seed=seed)
    )
    settings = {"source": SOURCE.format(algo), "env": "CartPole-v1", "num_env_runners": 1}
    settings |= {"seed": seed, "training": training, "model_config": model}
    return config, settings


def run_rllib(
    algo: str, target_return: float = 475.0, max_time_s: float = 600.0, seed: int = 0
) -> dict:
    """Train RLlib's ``algo`` ("dqn" or "ppo") on CartPole-v1 until ``target_return``."""
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # before importing ray
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    t0 = time.perf_counter()
    config, settings = _build_config(algo, seed)
    curve: list[list[float | None]] = []
    reached, ret, steps, train_time, startup, iters = False, float("nan"), 0, 0.0, 0.0, 0
    trainer = None
    try:
        ray.init(address="local", include_dashboard=False, num_cpus=2)
        trainer = config.build_algo()
        startup = time.perf_counter() - t0
        t_train = time.perf_counter()
        while True:
            result = trainer.train()
            iters += 1
            wall = time.perf_counter() - t_train
            runners = result.get("env_runners", {})
            ret = float(runners.get("episode_return_mean", float("nan")))
            steps = int(
                result.get("num_env_steps_sampled_lifetime")
                or runners.get("num_env_steps_sampled_lifetime", 0)
            )
            curve.append([steps, round(wall, 3), _num(ret)])
            train_time = wall
            print(f"[{algo}] {iters}: {steps} steps {wall:.1f}s return {ret:.1f}", file=sys.stderr)
            if ret >= target_return:
                reached = True
                break
            if wall > max_time_s:
                break
    finally:
        if trainer is not None:
            trainer.stop()
        ray.shutdown()
    return {
        "algo": algo,
        "reached": reached,
        "final_return": _num(ret),
        "env_steps": steps,
        "train_time_s": round(train_time, 3),
        "startup_s": round(startup, 3),
        "total_time_s": round(time.perf_counter() - t0, 3),
        "iterations": iters,
        "stop_criterion": STOP_CRITERION,
        "target_return": target_return,
        "settings": settings,
        "curve": curve,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("algo", choices=["dqn", "ppo"])
    parser.add_argument("--target", type=float, default=475.0)
    parser.add_argument("--max-time", type=float, default=600.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    # Keep stdout for the one JSON line: everything else (Ray, RLlib, workers) goes to stderr.
    sys.stdout.flush()
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    result = run_rllib(args.algo, args.target, args.max_time, args.seed)
    out.write(json.dumps(result) + "\n")
    out.flush()


if __name__ == "__main__":
    main()
