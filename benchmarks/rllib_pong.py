"""RLlib peer figure (e) for the Atari DQN throughput benchmark: RLlib's DQN on Pong.

Runs RLlib 2.60's DQN (new API stack: EnvRunner, ConnectorV2, RLModule, Learner) on
``ale_py:ALE/Pong-v5`` wrapped with RLlib's ``wrap_atari_for_new_api_stack`` (84x84 grayscale,
max-and-skip 4, frame stack 4, no-op starts, episodic life, fire reset), at memrl's Nature
replay ratio and batch size: one batch-32 update per 4 env steps, Nature CNN
(conv [[32,8,4],[64,4,2],[64,3,1]], head 512). ``algo.train()`` is called in a loop on an
embedded local Ray until the time limit. Throughput comes from RLlib's own lifetime counters,
read after every iteration, over wall-clock windows:

- before learning starts: env steps/s (sampling + replay inserts only);
- after learning starts: env steps/s and learner updates/s.

The first iteration (env runner warm-up) is left out of both windows, and so is the iteration
in which learning starts. Ray start-up and algorithm build times are reported separately.

    python benchmarks/rllib_pong.py --max-time 300 --seed 0   # one JSON line on stdout

Differences from RLlib's tuned Atari examples (``rllib/examples/algorithms/dqn/atari_dqn.py``,
``atari_rainbow.py``, ``rllib/tuned_examples/dqn/benchmark_dqn_atari_rllib_preprocessing.py``):
Nature DQN instead of Rainbow (no noisy nets, no distributional head, no dueling, no double Q,
1-step returns, Huber loss, target net synced every 40k env steps = 10k updates, epsilon 1 to
0.1 over 1M steps), the Nature CNN with "valid" padding and a 512 head (the same 1,687,206
weights as memrl's), ALE's own frame skip off (RLlib's wrapper skips 4; ``atari_dqn.py`` leaves
ALE v5's default skip of 4 on as well, so each of its agent steps is 16 frames), no sticky
actions (as memrl's ``configs/dqn_pong.yaml``), 84x84 frames stacked in the env (as the
``rllib_preprocessing`` benchmark does) instead of 64x64 frames stacked by connectors,
learning starting after 2,000 env steps instead of 80,000 so that a short run learns, and
``training_intensity`` computed so that RLlib's round-robin weights give exactly one update per
4 env steps for any number of env runners and envs. The replay buffer is RLlib's
``PrioritizedEpisodeReplayBuffer`` (alpha 0.5, beta 0.4) as in the examples, or its uniform
``EpisodeReplayBuffer`` with ``--replay uniform``. RLlib's DQN learner uses Adam (lr 6.25e-5 as in
its examples) rather than Nature's RMSProp (RLlib has no config key for the optimizer).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.machine import machine_info  # noqa: E402

ENV_ID = "ale_py:ALE/Pong-v5"
ENV_NAME = "memrl-rllib-pong"
SOURCE = (
    "ray-project/ray: rllib/examples/algorithms/dqn/atari_dqn.py, atari_rainbow.py; "
    "rllib/tuned_examples/dqn/benchmark_dqn_atari_rllib_preprocessing.py"
)
# gym.make kwargs: frame skipping is done by RLlib's MaxAndSkipEnv wrapper, so ALE's own is off
# (as in atari_rainbow.py; ALE v5's default frameskip of 4 on top of it would skip 16 frames).
ENV_CONFIG: dict[str, Any] = {
    "frameskip": 1,
    "full_action_space": False,
    "repeat_action_probability": 0.0,
}
# RLlib pads convolutions to "same" unless told; the Nature CNN (and memrl's) uses "valid" (3136
# features into the 512 head, not 7744).
NATURE_CONV = [[32, 8, 4, "valid"], [64, 4, 2, "valid"], [64, 3, 1, "valid"]]
NATURE_HEAD = [512]
BATCH_SIZE = 32
ENV_STEPS_PER_UPDATE = 4
ROLLOUT_FRAGMENT_LENGTH = 4  # RLlib's examples: "Every 4 agent steps a training update".
REPLAY_TYPES = {
    "prioritized": {"type": "PrioritizedEpisodeReplayBuffer", "alpha": 0.5, "beta": 0.4},
    "uniform": {"type": "EpisodeReplayBuffer"},
}


@dataclass(frozen=True)
class PongSettings:
    """What the RLlib run is configured with (reported beside the figures)."""

    seed: int = 0
    num_env_runners: int = 1
    num_envs_per_env_runner: int = 1
    learning_starts: int = 2000
    replay: str = "prioritized"
    replay_capacity: int = 1_000_000
    num_gpus_per_learner: float = 0.0
    min_time_s_per_iteration: float = 2.0
    lr: float = 0.0000625  # RLlib's Atari examples (Adam).
    gamma: float = 0.99
    target_network_update_freq: int = 40_000  # env steps: Nature's 10k updates x 4 steps.
    epsilon: tuple[tuple[int, float], ...] = ((0, 1.0), (1_000_000, 0.1))  # Nature.

    def __post_init__(self) -> None:
        if self.replay not in REPLAY_TYPES:
            raise ValueError(f"replay must be one of {sorted(REPLAY_TYPES)}, not {self.replay!r}")
        for name in ("num_env_runners", "num_envs_per_env_runner"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, not {getattr(self, name)}")
        if self.learning_starts < 0:
            raise ValueError(f"learning_starts must be >= 0, not {self.learning_starts}")


def round_robin_plan(num_env_runners: int, num_envs_per_env_runner: int) -> tuple[float, int, int]:
    """``training_intensity`` giving one batch-32 update per 4 env steps, and RLlib's weights.

    RLlib's DQN alternates ``store_weight`` sampling rounds with ``train_weight`` updates
    (``rllib/algorithms/dqn/dqn.py::calculate_rr_weights``). A sampling round collects
    ``rollout_fragment_length * num_envs_per_env_runner`` steps on each *remote* env runner, but
    RLlib's "native ratio" counts ``num_env_runners + 1`` runners (the local one, which does not
    sample when remote ones exist). Its ``training_intensity`` is replayed / sampled steps, so
    the nominal value 32 / 4 = 8 would give twice the wanted update rate with one env runner;
    here the value is solved from RLlib's own formula so that the resulting weights give
    exactly ``ENV_STEPS_PER_UPDATE`` env steps per update. Returns
    ``(training_intensity, store_weight, train_weight)``.
    """
    steps_per_round = ROLLOUT_FRAGMENT_LENGTH * num_envs_per_env_runner * num_env_runners
    native_ratio = BATCH_SIZE / (
        ROLLOUT_FRAGMENT_LENGTH * num_envs_per_env_runner * max(num_env_runners + 1, 1)
    )
    # ROLLOUT_FRAGMENT_LENGTH == ENV_STEPS_PER_UPDATE, so a round always holds whole updates.
    store, train = 1, steps_per_round // ENV_STEPS_PER_UPDATE
    return train / store * native_ratio, store, train


def _make_env(env_config: dict) -> Any:
    """RLlib's Atari preprocessing for the new API stack, 84x84 and 4 frames stacked."""
    import gymnasium as gym
    from ray.rllib.env.wrappers.atari_wrappers import wrap_atari_for_new_api_stack

    return wrap_atari_for_new_api_stack(
        gym.make(ENV_ID, **dict(env_config)), dim=84, frameskip=4, framestack=4
    )


def build_config(settings: PongSettings) -> tuple[Any, dict[str, Any]]:
    """RLlib ``DQNConfig`` for ``settings`` and a JSON-able description of it."""
    import ale_py  # noqa: F401  (registers the ALE/ ids in this process)
    from ray.rllib.algorithms.dqn import DQNConfig
    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig
    from ray.tune.registry import register_env

    if __name__ != "__main__":
        # Ship the env creator by value: Ray workers only get the driver's script folder and
        # working directory on their path, which need not hold the `benchmarks` package.
        from ray import cloudpickle

        cloudpickle.register_pickle_by_value(sys.modules[__name__])
    register_env(ENV_NAME, _make_env)
    intensity, store_weight, train_weight = round_robin_plan(
        settings.num_env_runners, settings.num_envs_per_env_runner
    )
    replay = dict(REPLAY_TYPES[settings.replay], capacity=settings.replay_capacity)
    training: dict[str, Any] = {
        "lr": settings.lr,
        "gamma": settings.gamma,
        "train_batch_size_per_learner": BATCH_SIZE,
        "training_intensity": intensity,
        "num_steps_sampled_before_learning_starts": settings.learning_starts,
        "replay_buffer_config": replay,
        "target_network_update_freq": settings.target_network_update_freq,
        "tau": 1.0,
        "n_step": 1,
        "double_q": False,
        "dueling": False,
        "noisy": False,
        "num_atoms": 1,
        "epsilon": [list(p) for p in settings.epsilon],
    }
    model: dict[str, Any] = {
        "conv_filters": NATURE_CONV,
        "conv_activation": "relu",
        "head_fcnet_hiddens": NATURE_HEAD,
        "head_fcnet_activation": "relu",
    }
    config = (
        DQNConfig()
        .environment(ENV_NAME, env_config=ENV_CONFIG, clip_rewards=True)
        .env_runners(
            num_env_runners=settings.num_env_runners,
            num_envs_per_env_runner=settings.num_envs_per_env_runner,
            rollout_fragment_length=ROLLOUT_FRAGMENT_LENGTH,
        )
        .learners(num_learners=0, num_gpus_per_learner=settings.num_gpus_per_learner)
        .training(**training)
        .rl_module(model_config=DefaultModelConfig(**model))
        .reporting(
            min_time_s_per_iteration=settings.min_time_s_per_iteration,
            min_sample_timesteps_per_iteration=0,
        )
        .debugging(seed=settings.seed)
    )
    described = {
        "source": SOURCE,
        "env": ENV_ID,
        "env_config": ENV_CONFIG,
        "wrappers": "wrap_atari_for_new_api_stack(dim=84, frameskip=4, framestack=4)",
        "clip_rewards": True,
        "rollout_fragment_length": ROLLOUT_FRAGMENT_LENGTH,
        "round_robin_weights": {"sample_rounds": store_weight, "updates": train_weight},
        "training": training,
        "model_config": model,
    } | asdict(settings)
    return config, described


def _get(d: dict, *keys: str) -> Any:
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def read_counters(result: dict) -> tuple[int, int]:
    """(env steps sampled, learner updates) so far, from RLlib's own lifetime counters.

    Env steps: ``env_runners/num_env_steps_sampled_lifetime``. Updates: the default module's
    ``num_module_steps_trained_lifetime`` divided by the batch size (every DQN update trains on
    exactly one batch of ``train_batch_size_per_learner`` timesteps with 1-step returns).
    """
    steps = _get(result, "env_runners", "num_env_steps_sampled_lifetime")
    if steps is None:
        steps = result.get("num_env_steps_sampled_lifetime", 0)
    learners = result.get("learners") or {}
    trained = 0
    for module_id, stats in learners.items():
        if module_id != "__all_modules__" and isinstance(stats, dict):
            trained += int(stats.get("num_module_steps_trained_lifetime", 0) or 0)
    return int(steps or 0), trained // BATCH_SIZE


def _rate(count: float, seconds: float) -> float | None:
    return round(count / seconds, 3) if seconds > 0 else None


def summarise_windows(samples: list[tuple[float, int, int]]) -> dict[str, Any]:
    """Throughput before and after learning starts from per-iteration (wall, steps, updates).

    ``samples[0]`` is (0, 0, 0) at the start of training; ``samples[i]`` the counters at the end
    of iteration i. The first iteration is warm-up and left out; the pre-learning window runs
    from its end to the end of the last iteration with no update, the learning window from the
    end of the first iteration with updates to the last sample.
    """
    out: dict[str, Any] = {"before_learning": None, "after_learning": None}
    if len(samples) < 3:
        return out
    last_idle = max((i for i, s in enumerate(samples) if s[2] == 0), default=0)
    if last_idle >= 2:
        (t0, s0, _), (t1, s1, _) = samples[1], samples[last_idle]
        out["before_learning"] = {
            "env_steps_per_s": _rate(s1 - s0, t1 - t0),
            "env_steps": s1 - s0,
            "window_s": round(t1 - t0, 3),
            "iterations": last_idle - 1,
        }
    first_busy = next((i for i, s in enumerate(samples) if s[2] > 0), None)
    if first_busy is not None and len(samples) - 1 > first_busy:
        (t0, s0, u0), (t1, s1, u1) = samples[first_busy], samples[-1]
        out["after_learning"] = {
            "env_steps_per_s": _rate(s1 - s0, t1 - t0),
            "updates_per_s": _rate(u1 - u0, t1 - t0),
            "env_steps_per_update": round((s1 - s0) / (u1 - u0), 3) if u1 > u0 else None,
            "env_steps": s1 - s0,
            "updates": u1 - u0,
            "window_s": round(t1 - t0, 3),
            "iterations": len(samples) - 1 - first_busy,
        }
    return out


def _timers(result: dict) -> dict[str, float]:
    """RLlib's per-call timers (seconds) for the stages of a DQN training step, at the end.

    These are RLlib's exponential moving averages (coefficient 0.01, started at the first call),
    so slow first calls still weigh in after ~100 calls: a rough stage breakdown, not a rate.
    """
    timers = result.get("timers") or {}
    keep = (
        "env_runner_sampling_timer",
        "replay_buffer_add_data_timer",
        "replay_buffer_sampling_timer",
        "learner_update_timer",
        "replay_buffer_update_prios_timer",
        "synch_weights",
        "training_step",
    )
    return {k: round(float(timers[k]), 6) for k in keep if isinstance(timers.get(k), int | float)}


def _num(x: Any) -> float | None:
    """NaN (no finished episode yet) is not valid JSON: report it as null."""
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) else round(x, 3)


def run(
    max_time_s: float = 300.0,
    seed: int = 0,
    num_env_runners: int = 1,
    num_envs_per_env_runner: int = 1,
    learning_starts: int = 2000,
    replay: str = "prioritized",
    num_gpus_per_learner: float | None = None,
    min_time_s_per_iteration: float = 2.0,
) -> dict:
    """Run RLlib's DQN on Pong for ``max_time_s`` of training and return the figures.

    ``num_gpus_per_learner=None`` gives the (local) learner a GPU when torch sees one.
    """
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # before importing ray
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray
    import torch

    if ray.is_initialized():
        raise RuntimeError(
            "benchmarks/rllib_pong.py run() starts and stops its own local Ray (so that its "
            "start-up is timed and RLlib's actors do not share a cluster with other figures), "
            "but Ray is already running in this process: call ray.shutdown() before run()."
        )
    if num_gpus_per_learner is None:
        num_gpus_per_learner = 1.0 if torch.cuda.is_available() else 0.0
    settings = PongSettings(
        seed=seed,
        num_env_runners=num_env_runners,
        num_envs_per_env_runner=num_envs_per_env_runner,
        learning_starts=learning_starts,
        replay=replay,
        num_gpus_per_learner=num_gpus_per_learner,
        min_time_s_per_iteration=min_time_s_per_iteration,
    )
    config, described = build_config(settings)
    t0 = time.perf_counter()
    samples: list[tuple[float, int, int]] = [(0.0, 0, 0)]
    returns: list[list[float | None]] = []
    ray_init_s = build_s = first_iter_s = 0.0
    result: dict = {}
    algo = None
    try:
        # Every env runner asks for one CPU; the local learner runs in this process.
        ray.init(
            address="local",
            include_dashboard=False,
            num_cpus=max(os.cpu_count() or 1, num_env_runners + 1),
        )
        ray_init_s = time.perf_counter() - t0
        t_build = time.perf_counter()
        algo = config.build_algo()
        build_s = time.perf_counter() - t_build
        t_train = time.perf_counter()
        while True:
            result = algo.train()
            wall = time.perf_counter() - t_train
            steps, updates = read_counters(result)
            samples.append((wall, steps, updates))
            if len(samples) == 2:
                first_iter_s = wall
            ret = _get(result, "env_runners", "episode_return_mean")
            returns.append([steps, round(wall, 3), _num(ret)])
            print(
                f"[rllib pong] it {len(samples) - 1}: {wall:.1f}s {steps} steps "
                f"{updates} updates return {ret}",
                file=sys.stderr,
            )
            if wall >= max_time_s:
                break
    finally:
        if algo is not None:
            algo.stop()
        ray.shutdown()
    wall, steps, updates = samples[-1]
    windows = summarise_windows(samples)
    return {
        "benchmark": "rllib_pong",
        "figure": "e",
        "machine": machine_info(),
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "ray_init_s": round(ray_init_s, 3),
        "build_algo_s": round(build_s, 3),
        "startup_s": round(ray_init_s + build_s, 3),
        "first_iteration_s": round(first_iter_s, 3),
        "train_time_s": round(wall, 3),
        "total_time_s": round(time.perf_counter() - t0, 3),
        "env_steps": steps,
        "updates": updates,
        "iterations": len(samples) - 1,
        **windows,
        "timers_ema_s": _timers(result),
        "counters": "env_runners/num_env_steps_sampled_lifetime; "
        "learners/<module>/num_module_steps_trained_lifetime / train_batch_size_per_learner",
        "settings": described,
        "curve_fields": ["env_steps", "wall_s", "episode_return_mean (null: none finished)"],
        "curve": returns,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-time", type=float, default=300.0, help="training seconds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--env-runners", type=int, default=1)
    parser.add_argument("--envs-per-runner", type=int, default=1)
    parser.add_argument("--learning-starts", type=int, default=2000, help="env steps")
    parser.add_argument("--replay", choices=sorted(REPLAY_TYPES), default="prioritized")
    parser.add_argument(
        "--learner-gpus", type=float, default=None, help="default: 1 if CUDA is available, else 0"
    )
    args = parser.parse_args()
    # Keep stdout for the one JSON line: everything else (Ray, RLlib, workers) goes to stderr.
    sys.stdout.flush()
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    result = run(
        args.max_time,
        args.seed,
        num_env_runners=args.env_runners,
        num_envs_per_env_runner=args.envs_per_runner,
        learning_starts=args.learning_starts,
        replay=args.replay,
        num_gpus_per_learner=args.learner_gpus,
    )
    out.write(json.dumps(result) + "\n")
    out.flush()


if __name__ == "__main__":
    main()
