"""The RLlib Pong peer benchmark (figure e): replay-ratio plan, env wrapping, window maths."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.rllib_pong import (
    BATCH_SIZE,
    ENV_CONFIG,
    PongSettings,
    _make_env,
    build_config,
    read_counters,
    round_robin_plan,
    run,
    summarise_windows,
)


@pytest.mark.parametrize("runners,envs", [(1, 1), (2, 1), (1, 4), (3, 2), (4, 8)])
def test_rllib_round_robin_weights_give_one_update_per_four_env_steps(runners, envs):
    from ray.rllib.algorithms.dqn.dqn import calculate_rr_weights

    config, described = build_config(
        PongSettings(num_env_runners=runners, num_envs_per_env_runner=envs)
    )
    store, train = calculate_rr_weights(config)  # RLlib's own arithmetic
    steps_per_round = config.get_rollout_fragment_length() * envs * runners
    assert config.total_train_batch_size == BATCH_SIZE == 32
    assert store * steps_per_round == 4 * train
    assert (store, train) == round_robin_plan(runners, envs)[1:]
    assert described["round_robin_weights"] == {"sample_rounds": store, "updates": train}


def test_nominal_training_intensity_would_double_the_update_rate():
    """RLlib's native ratio counts the idle local runner: 32/4 = 8 gives 2 updates per round."""
    from ray.rllib.algorithms.dqn.dqn import calculate_rr_weights

    config, _ = build_config(PongSettings())
    assert round_robin_plan(1, 1)[0] == 4.0
    config.training(training_intensity=8.0)
    assert calculate_rr_weights(config) == [1, 2]


def test_env_is_84x84x4_and_one_step_is_four_frames():
    env = _make_env(ENV_CONFIG)
    try:
        obs, _ = env.reset(seed=0)
        assert obs.shape == (84, 84, 4) and obs.dtype == np.float32
        assert env.action_space.n == 6
        ale = env.unwrapped.ale
        before = ale.getEpisodeFrameNumber()
        obs, *_ = env.step(0)
        assert ale.getEpisodeFrameNumber() - before == 4
        assert obs.shape == (84, 84, 4) and -1.0 <= obs.min() <= obs.max() <= 1.0
    finally:
        env.close()


def test_rllib_module_is_the_nature_cnn():
    """Valid padding: 3136 features into the 512 head, 1,687,206 weights with 6 actions."""
    import torch

    config, _ = build_config(PongSettings())
    env = _make_env(ENV_CONFIG)
    try:
        spec = config.get_default_rl_module_spec()
        spec.observation_space, spec.action_space = env.observation_space, env.action_space
        spec.model_config = config.model_config
        module = spec.build()
    finally:
        env.close()
    linears = [m for m in module.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(3136, 512), (512, 6)]
    assert sum(p.numel() for p in module.parameters()) == 1_687_206


def test_settings_reject_bad_values():
    with pytest.raises(ValueError, match="replay must be one of"):
        PongSettings(replay="fifo")
    with pytest.raises(ValueError, match="num_env_runners"):
        PongSettings(num_env_runners=0)


def test_read_counters_from_rllib_result():
    result = {
        "env_runners": {"num_env_steps_sampled_lifetime": 1160.0},
        "learners": {
            "default_policy": {"num_module_steps_trained_lifetime": 512.0},
            "__all_modules__": {"num_module_steps_trained_lifetime": 512.0},
        },
    }
    assert read_counters(result) == (1160, 16)
    assert read_counters({"num_env_steps_sampled_lifetime": 7}) == (7, 0)


def test_windows_skip_warm_up_and_the_iteration_where_learning_starts():
    samples = [
        (0.0, 0, 0),
        (2.0, 300, 0),  # warm-up iteration: left out
        (4.0, 500, 0),
        (6.0, 700, 0),
        (8.0, 800, 10),  # learning starts inside this iteration
        (10.0, 840, 20),
        (14.0, 920, 40),
    ]
    w = summarise_windows(samples)
    assert w["before_learning"] == {
        "env_steps_per_s": 100.0,
        "env_steps": 400,
        "window_s": 4.0,
        "iterations": 2,
    }
    after = w["after_learning"]
    assert after["env_steps_per_s"] == 20.0 and after["updates_per_s"] == 5.0
    assert after["env_steps_per_update"] == 4.0 and after["iterations"] == 2
    assert summarise_windows(samples[:2]) == {"before_learning": None, "after_learning": None}


@pytest.mark.slow
def test_short_rllib_run_learns_at_the_nature_replay_ratio(no_ray):
    out = run(max_time_s=20.0, seed=0, learning_starts=200, min_time_s_per_iteration=2.0)
    after = out["after_learning"]
    assert out["updates"] > 0 and after is not None
    assert abs(after["env_steps_per_update"] - 4.0) < 0.5
    assert out["startup_s"] > 0 and out["env_steps"] >= 200


def test_run_refuses_an_already_running_ray(monkeypatch):
    import ray

    monkeypatch.setattr(ray, "is_initialized", lambda: True)
    with pytest.raises(RuntimeError, match="call ray.shutdown"):
        run(max_time_s=1.0)
