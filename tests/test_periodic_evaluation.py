"""Evaluation during training on a separate Ray actor: launched without waiting, collected when
ready, the same figures as the in-process evaluator, and the `best` checkpoint it keeps."""

from __future__ import annotations

import time

import pytest
import torch

import envs
from agents import make_agent
from rollout.checkpoints import load_checkpoint
from rollout.config import dump_config, load_config
from rollout.periodic_evaluation import PeriodicEvaluator
from rollout.run_dir import RunDir, read_metrics
from rollout.trainer import Trainer


def cartpole_config(tmp_path, workers: int, extra: list[str] = ()):
    return load_config(
        "configs/dqn_cartpole.yaml",
        [
            f"rollout.num_workers={workers}",
            "rollout.envs_per_worker=2",
            "run.eval_episodes=4",
            f"run.dir={tmp_path}",
            *extra,
        ],
    )


def test_remote_evaluator_runs_beside_the_caller_and_matches_in_process(tmp_path, ray_local):
    env = envs.make("CartPole-v1")
    torch.manual_seed(1)
    cfg = cartpole_config(tmp_path, workers=1)
    agent = make_agent(cfg.agent, env.observation_space, env.action_space)
    weights = {k: v.clone() for k, v in agent.acting_state_dict().items()}

    remote = PeriodicEvaluator(cfg, torch_threads=1)
    local = PeriodicEvaluator(cartpole_config(tmp_path, workers=0), torch_threads=1)
    try:
        assert remote.actor is not None and local.local is not None
        start = time.monotonic()
        assert remote.submit(weights, env_steps=1000)
        submitted_in = time.monotonic() - start
        assert remote.busy and not remote.submit(weights, env_steps=2000)  # one at a time
        # the caller's copy may change at once: the evaluator took a snapshot
        with torch.no_grad():
            for v in weights.values():
                v.add_(1.0)
        (result,) = remote.poll(block=True)
        assert not remote.busy and remote.poll() == []
        assert result.env_steps == 1000 and len(result.returns) == 4

        assert local.submit(agent.acting_state_dict(), env_steps=1000)
        (expected,) = local.poll()
        assert result.returns == expected.returns  # the same seeded episodes, greedy
        assert submitted_in < 0.5  # submit only queues the work
    finally:
        remote.close()
        local.close()


def test_training_through_ray_evaluates_on_an_actor_and_keeps_the_best(tmp_path, ray_local):
    cfg = cartpole_config(
        tmp_path,
        1,
        [
            "agent.learning_starts=200",
            "run.total_env_steps=2400",
            "run.eval_every_steps=400",
            "run.stop_return=null",
            "run.checkpoint_every_steps=0",
        ],
    )
    run = RunDir.create(tmp_path, cfg.run.name, dump_config(cfg))
    trainer = Trainer(cfg, run)
    assert trainer.evaluator.actor is not None
    summary = trainer.train()
    evals = [r for r in read_metrics(run.metrics) if "eval_return_mean" in r]
    assert len(evals) >= 3
    assert all(r["eval_env_steps"] <= r["env_steps"] for r in evals)
    best = load_checkpoint(run.checkpoints / "best")["best"]
    assert best["eval_return_mean"] == pytest.approx(summary["best_eval_return"])
    assert best["eval_return_mean"] == pytest.approx(max(r["eval_return_mean"] for r in evals))
    # the best weights load into a fresh agent and give the trainer's best agent's Q-values
    env = envs.make("CartPole-v1")
    fresh = make_agent(cfg.agent, env.observation_space, env.action_space)
    fresh.load_acting_state_dict(best["agent"])
    obs = torch.randn(8, 4)
    torch.testing.assert_close(fresh.q_values(obs), trainer.best_agent().q_values(obs))
