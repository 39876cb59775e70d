"""Atari: preprocessing, the training signals of the vector env, and frame-sharing replay."""

from __future__ import annotations

import numpy as np
import pytest

import envs
from agents import make_agent
from agents.dqn import Config as DQNConfig
from rollout.frame_replay import FrameReplayBuffer
from rollout.worker import RolloutWorker

GAMMA = 0.5


def test_evaluation_env_preprocessing_shapes_and_true_scores():
    env = envs.make("ALE/Pong-v5", repeat_action_probability=0.0)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (4, 84, 84) and obs.dtype == np.uint8
    assert env.observation_space.shape == (4, 84, 84)
    assert (obs[:3] == 0).all() and obs[3].any()  # zero padding before the first frame
    rewards = []
    for _ in range(400):
        obs2, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        assert (obs2[:3] == obs[1:]).all()  # the stack shifts by one frame per agent step
        obs = obs2
        rewards.append(reward)
    assert set(rewards) <= {-1.0, 0.0, 1.0} and -1.0 in rewards  # Pong scores are +-1 points


def test_training_env_clips_rewards_and_ends_lives_without_reset():
    env = envs.make_vector("ALE/Breakout-v5", {"repeat_action_probability": 0.0}, 2)
    assert isinstance(env, envs.atari.AtariTrainingEnv)
    obs, info = env.reset(seed=1)
    assert obs.shape == (2, 4, 84, 84) and obs.dtype == np.uint8
    lives = info["lives"].copy()
    rng = np.random.default_rng(0)
    life_losses = games = 0
    for _ in range(3000):
        prev = obs
        obs, rewards, terminated, truncated, info = env.step(rng.integers(0, 4, 2))
        assert set(np.unique(rewards)) <= {-1.0, 0.0, 1.0}
        game_over = info.get("_final_obs", np.zeros(2, bool))
        lost = terminated & ~game_over
        if lost.any():
            life_losses += int(lost.sum())
            assert (info["lives"][lost] < lives[lost]).all()
            # the game goes on: the stack keeps shifting, no reset padding
            assert (obs[lost][:, :3] == prev[lost][:, 1:]).all()
        if game_over.any():
            games += int(game_over.sum())
            assert (info["episode"]["l"][game_over] > 0).all()
            assert (obs[game_over][:, :3] == 0).all()  # a fresh game after game over
        lives = info["lives"].copy()
    assert life_losses >= 4 and games >= 1


def test_bad_atari_options_are_clear():
    with pytest.raises(envs.EnvSpecError, match="unknown Atari option 'frameskip'.*frame_skip"):
        envs.make("ALE/Pong-v5", frameskip=4)
    with pytest.raises(envs.EnvSpecError, match="Closest: ALE/Pong-v5"):
        envs.make("ALE/Pongg-v5")


def _record(env_id, kwargs, num_envs, steps, seed=0, pipeline=False):
    """Step a worker's frame path, returning its batch and the true observations it saw."""
    worker = RolloutWorker(
        env_id, kwargs, DQNConfig(epsilon_start=1.0), num_envs, seed=seed, pipeline=pipeline
    )
    assert worker.pipelined == pipeline
    true_obs, true_next = [], []
    original = worker._step

    def spy(explore):
        out = original(explore)
        true_obs.append(out[0].copy())
        true_next.append(out[5].copy())  # final obs at an episode's end
        return out

    worker._step = spy
    batch = worker.sample_transitions(steps * num_envs)
    worker.close()
    return batch, np.stack(true_obs), np.stack(true_next)


@pytest.mark.parametrize(
    "capacity_rows, pipeline",
    [(1000, False), (150, False), (150, True)],  # 150 rows: the ring wraps
)
def test_frame_replay_rebuilds_stacked_observations_exactly(capacity_rows, pipeline):
    # 60-step episodes: time-limit truncations (kept final frames) and resets inside the data;
    # with the pipeline, the two halves of the envs are stepped alternately
    kwargs = {"max_episode_steps": 60, "repeat_action_probability": 0.0}
    batch, true_obs, true_next = _record(
        "ALE/Pong-v5", kwargs, num_envs=4 if pipeline else 2, steps=400, pipeline=pipeline
    )
    data = batch.data
    steps, streams = data["rewards"].shape
    assert data["frames"].shape == (steps, streams, 84, 84) and data["frames"].dtype == np.uint8
    assert data["truncated"].sum() >= 10 and len(batch.final_frames) == data["truncated"].sum()
    data["actions"] = np.arange(steps * streams).reshape(steps, streams)  # identifies (t, env)
    buf = FrameReplayBuffer(capacity_rows * streams, streams, stack=4, n_step=1, gamma=0.99)
    buf.add(data, batch.final_frames)
    out = buf.sample(3000, np.random.default_rng(0))
    t, e = np.divmod(out["actions"], streams)
    assert (steps - t <= capacity_rows).all() and len(np.unique(out["actions"])) > 0.6 * min(
        steps, capacity_rows
    ) * streams
    np.testing.assert_array_equal(out["obs"], true_obs[t, e])
    truncated = data["truncated"][t, e]
    # next_obs: the final observation at a time-limit cut, else the next step's observation
    expected_next = np.where(
        truncated[:, None, None, None], true_next[t, e], true_obs[np.minimum(t + 1, steps - 1), e]
    )
    np.testing.assert_array_equal(out["next_obs"], expected_next)
    assert (out["discounts"][truncated] == pytest.approx(0.99)) and truncated.any()


def _synthetic(rewards, terminated, truncated, starts):
    steps = len(rewards)
    frames = np.arange(1, steps + 1, dtype=np.uint8)[:, None, None, None] * np.ones(
        (1, 1, 2, 2), np.uint8
    )
    return {
        "frames": frames,
        "starts": np.asarray(starts, bool)[:, None],
        "actions": np.arange(steps)[:, None],
        "rewards": np.asarray(rewards, np.float32)[:, None],
        "terminated": np.asarray(terminated, bool)[:, None],
        "truncated": np.asarray(truncated, bool)[:, None],
    }


def test_frame_replay_n_step_against_hand_computed_episode():
    # steps 0..7: an episode starts at 0, terminates at 3; the next starts at 4, is cut by the
    # time limit at 6 (final frame 99); step 7 starts a third episode.
    data = _synthetic(
        [1, 2, 4, 8, 16, 32, 64, 128],
        [0, 0, 0, 1, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0, 1, 0],
        [1, 0, 0, 0, 1, 0, 0, 1],
    )
    final = np.full((2, 2), 99, np.uint8)
    buf = FrameReplayBuffer(100, 1, stack=3, n_step=3, gamma=GAMMA)
    buf.add(data, [(6, 0, final)])
    out = buf.sample(4000, np.random.default_rng(0))
    got = {}
    for a, r, d, o, n in zip(
        out["actions"], out["returns"], out["discounts"], out["obs"], out["next_obs"]
    ):
        got[int(a)] = (float(r), float(d), o[:, 0, 0].tolist(), n[:, 0, 0].tolist())
    expected = {  # frame k+1 is step k's newest frame; zeros before an episode's first step
        2: (4 + 0.5 * 8, 0.0, [1, 2, 3], [2, 3, 4]),  # terminal at 3: no bootstrap
        3: (8, 0.0, [2, 3, 4], [2, 3, 4]),
        4: (16 + 0.5 * 32 + 0.25 * 64, 0.0 + 0.125, [0, 0, 5], [6, 7, 99]),  # cut at 6
        5: (32 + 0.5 * 64, 0.25, [0, 5, 6], [6, 7, 99]),
        6: (64, 0.5, [5, 6, 7], [6, 7, 99]),
    }
    # rows 0-1 (stack reaches before the data) and 7 (newest: next obs unknown) are never drawn
    assert set(got) == set(expected)
    for action, (ret, disc, obs, nxt) in expected.items():
        assert got[action] == (pytest.approx(ret), pytest.approx(disc), obs, nxt), action


def test_frame_replay_save_load_round_trip(tmp_path):
    data = _synthetic([1] * 6, [0] * 6, [0, 0, 1, 0, 0, 0], [1, 0, 0, 1, 0, 0])
    buf = FrameReplayBuffer(50, 1, stack=2, n_step=2, gamma=0.9)
    buf.add(data, [(2, 0, np.full((2, 2), 7, np.uint8))])
    with open(tmp_path / "r.npz", "wb") as f:
        buf.save(f)
    other = FrameReplayBuffer(50, 1, stack=2, n_step=2, gamma=0.9)
    other.load(tmp_path / "r.npz")
    a, b = buf.sample(64, np.random.default_rng(3)), other.sample(64, np.random.default_rng(3))
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert other.finals.keys() == buf.finals.keys()


def test_nature_cnn_dqn_acts_on_frames_and_apex_epsilons():
    env = envs.make("ALE/Pong-v5")
    cfg = DQNConfig(apex_epsilons=True, dueling=False)
    agent = make_agent(cfg, env.observation_space, env.action_space)
    assert (
        sum(p.numel() for p in agent.online.parameters()) == 1_687_206
    )  # Nature: conv 8+33+37k, fc 1.6M, 6 actions
    obs = np.stack([env.reset(seed=s)[0] for s in range(3)])
    actions, _, _ = agent.act(obs, None, explore=False)
    assert actions.shape == (3,) and ((actions >= 0) & (actions < 6)).all()
    epsilons = []
    for i in range(4):
        agent.configure_actor(i, 4)
        epsilons.append(agent.actor_epsilon)
    assert epsilons == pytest.approx([0.4 ** (1 + 7 * i / 3) for i in range(4)])
    single = make_agent(cfg, env.observation_space, env.action_space)
    single.configure_actor(0, 1)  # one worker: the epsilon schedule, not Ape-X
    assert single.actor_epsilon is None


def test_pong_through_two_ray_workers_checkpoint_reloads(tmp_path, ray_local):
    import torch

    from rollout.checkpoints import latest_checkpoint, load_checkpoint
    from rollout.config import dump_config, load_config
    from rollout.run_dir import RunDir, read_metrics
    from rollout.trainer import Trainer

    cfg = load_config(
        "configs/dqn_pong_fast.yaml",
        [
            "env.kwargs={repeat_action_probability: 0.0, max_episode_steps: 100}",
            "agent.buffer_size=4000",
            "agent.learning_starts=256",
            "agent.replay_ratio=0.1",
            "rollout.num_workers=2",
            "rollout.envs_per_worker=2",
            "rollout.steps_per_sample=32",
            "run.total_env_steps=640",
            "run.checkpoint_every_steps=320",
            "run.eval_every_steps=0",
            "run.eval_episodes=1",
            "run.save_replay=true",
            f"run.dir={tmp_path}",
        ],
    )
    run = RunDir.create(tmp_path, cfg.run.name, dump_config(cfg))
    trainer = Trainer(cfg, run)
    summary = trainer.train()
    assert summary["env_steps"] >= 640 and trainer.learner.updates >= 30
    assert isinstance(trainer.replay, FrameReplayBuffer) and len(trainer.replay) == 640
    assert trainer.episodes >= 4  # 100-step games, 4 envs: whole games were reported
    rows = read_metrics(run.metrics)
    assert {"t_wait_s", "t_update_s", "t_replay_s", "t_weights_s"} <= rows[-1].keys()

    ckpt = latest_checkpoint(run.checkpoints)
    state = load_checkpoint(ckpt)
    env = envs.make("ALE/Pong-v5")
    fresh = make_agent(cfg.agent, env.observation_space, env.action_space)
    fresh.load_state_dict(state["learner"]["agent"])
    for module in fresh.modules():  # the same precision as the learner's copy
        if hasattr(module, "set_mixed_precision"):
            module.set_mixed_precision(trainer.learner.mixed_precision)
    obs = torch.as_tensor(np.stack([env.reset(seed=s)[0] for s in range(2)]))
    with torch.no_grad():
        torch.testing.assert_close(fresh.q_values(obs), trainer.agent.q_values(obs), atol=0, rtol=0)
    saved = FrameReplayBuffer(4000, 4, stack=4)
    saved.load(ckpt / "replay.npz")
    assert saved.filled == trainer.replay.filled


def test_cut_streams_stop_n_step_returns_at_a_replaced_worker():
    buf = FrameReplayBuffer(100, 1, stack=2, n_step=3, gamma=GAMMA)
    buf.add(_synthetic([1, 2, 4, 8], [0] * 4, [0] * 4, [1, 0, 0, 0]))
    buf.cut_streams([0])  # the worker was replaced: row 3's next observation never came
    second = _synthetic([16, 32, 64, 128], [0] * 4, [0] * 4, [1, 0, 0, 0])
    second["actions"] += 10
    second["frames"] += 10
    buf.add(second)
    out = buf.sample(4000, np.random.default_rng(0))
    got = {
        int(a): (float(r), float(d), n[:, 0, 0].tolist())
        for a, r, d, n in zip(out["actions"], out["returns"], out["discounts"], out["next_obs"])
    }
    expected = {
        1: (2 + 0.5 * 4, 0.25, [3, 4]),  # stops before the cut row 3, bootstraps from its obs
        2: (4, 0.5, [3, 4]),
        10: (16 + 0.5 * 32 + 0.25 * 64, 0.125, [13, 14]),
        11: (32 + 0.5 * 64, 0.25, [13, 14]),
        12: (64, 0.5, [13, 14]),
    }
    assert set(got) == set(expected)  # row 3 itself is never drawn
    for action, (ret, disc, nxt) in expected.items():
        assert got[action] == (pytest.approx(ret), pytest.approx(disc), nxt), action


def test_replay_buffer_cut_streams_truncates_the_newest_transition():
    from rollout.replay import ReplayBuffer

    obs = np.arange(3, dtype=np.float32)[:, None, None]
    batch = {
        "obs": obs,
        "actions": np.arange(3)[:, None],
        "rewards": np.ones((3, 1), np.float32),
        "terminated": np.zeros((3, 1), bool),
        "truncated": np.zeros((3, 1), bool),
        "next_obs": obs + 1,
    }
    buf = ReplayBuffer(10, 1, n_step=3, gamma=GAMMA)
    buf.add(batch)
    buf.cut_streams([0])
    buf.add({**batch, "actions": batch["actions"] + 10, "obs": obs + 50, "next_obs": obs + 51})
    out = buf.sample(2000, np.random.default_rng(0))
    first = out["actions"] == 0
    assert out["returns"][first] == pytest.approx(1 + 0.5 + 0.25)  # stops at row 2, no crossing
    assert (out["next_obs"][first, 0] == 3).all()  # row 2's own next_obs, not the new worker's


def test_pipeline_steps_like_one_vector_env():
    """Two halves stepped alternately give exactly the games of one vector env: same seeds,
    same observation-dependent actions, same results."""
    kwargs = {"repeat_action_probability": 0.0, "max_episode_steps": 50}
    serial = envs.atari.AtariTrainingEnv("ALE/Breakout-v5", 4, **kwargs)
    piped = envs.atari.AtariPipeline("ALE/Breakout-v5", 4, **kwargs)

    def policy(obs):  # depends on each observation, so a mixed-up env or step would show
        return (obs.reshape(len(obs), -1).sum(axis=1) // 7 % 4).astype(np.int64)

    obs_s, _ = serial.reset(seed=3)
    obs_p, _ = piped.reset(seed=3)
    np.testing.assert_array_equal(obs_s, obs_p)
    games = 0
    for _ in range(150):
        actions, (obs_p, rew_p, term_p, trunc_p, info_p) = piped.step(policy, obs_p)
        np.testing.assert_array_equal(actions, policy(obs_s))
        obs_s, rew_s, term_s, trunc_s, info_s = serial.step(actions)
        for a, b in ((obs_s, obs_p), (rew_s, rew_p), (term_s, term_p), (trunc_s, trunc_p)):
            np.testing.assert_array_equal(a, b)
        if "_final_obs" in info_s:
            games += int(info_s["_final_obs"].sum())
            np.testing.assert_array_equal(info_s["_final_obs"], info_p["_final_obs"])
            done = info_s["_final_obs"]
            np.testing.assert_array_equal(info_s["final_obs"][done], info_p["final_obs"][done])
            np.testing.assert_array_equal(info_s["episode"]["r"], info_p["episode"]["r"])
    assert games >= 4  # 50-step games: resets inside the run
    piped.close()
    serial.close()


def test_mixed_precision_convolutions_stay_close_and_learn():
    import torch

    from agents import Learner
    from rollout.config import LearnerConfig

    env = envs.make("ALE/Pong-v5")
    torch.manual_seed(0)
    agent = make_agent(
        DQNConfig(dueling=False, double=False), env.observation_space, env.action_space
    )
    obs = torch.as_tensor(np.stack([env.reset(seed=s)[0] for s in range(8)]))
    with torch.no_grad():
        full = agent.q_values(obs)
        learner = Learner(agent, LearnerConfig(mixed_precision="on", lr=1e-3))
        assert learner.mixed_precision and agent.online.torso.mixed_precision
        half = agent.q_values(obs)
    assert not torch.equal(full, half)  # the convolutions really ran in bfloat16
    torch.testing.assert_close(half, full, atol=2e-3, rtol=2e-2)
    frames = np.random.default_rng(0).integers(0, 256, (8, 4, 84, 84), np.uint8)
    batch = {
        "obs": frames,
        "next_obs": frames,
        "actions": np.arange(8) % 6,
        "returns": np.linspace(-1, 1, 8).astype(np.float32),
        "discounts": np.zeros(8, np.float32),
    }
    losses = [learner.update(batch)["loss"] for _ in range(60)]
    assert losses[-1] < 0.2 * losses[0]
    off = Learner(agent, LearnerConfig(mixed_precision="off"))
    assert not off.mixed_precision and not agent.online.torso.mixed_precision
