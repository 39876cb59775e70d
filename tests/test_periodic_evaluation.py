"""Evaluation during training on a separate Ray actor: launched without waiting, collected when
ready, the same figures as the in-process evaluator, and the `best` checkpoint it keeps."""

from __future__ import annotations

import time

import numpy as np
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


def sort_config(tmp_path, workers: int, extra: list[str] = ()):
    """A tiny LSTM on a short priority sort, scored on the cost (`run.eval_metric: cost`)."""
    return load_config(
        "configs/lstm_priority_sort.yaml",
        [
            "env.kwargs={bits: 3, num_inputs: 4, num_outputs: 3}",
            "agent.hidden_size=8",
            "agent.layers=1",
            "agent.batch_size=4",
            f"rollout.num_workers={workers}",
            "run.eval_episodes=6",
            "run.eval_metric=cost",
            "run.log_every_s=0",
            f"run.dir={tmp_path}",
            *extra,
        ],
    )


def test_cost_metric_scores_the_loss_on_sampled_sequences_remote_and_local(tmp_path, ray_local):
    """With `run.eval_metric: cost` the score is minus the mean cost in bits of eval_episodes
    sequences from the task's sampler (seeded as the evaluator's episodes): the training loss's
    own figure on those sequences, the same on the actor as in process; the wrong bits of the
    episodes are still logged."""
    from agents.losses import sequence_bce_loss

    cfg = sort_config(tmp_path, workers=1)
    env = envs.make(cfg.env.id, **cfg.env.kwargs)
    torch.manual_seed(3)
    agent = make_agent(cfg.agent, env.observation_space, env.action_space)
    remote = PeriodicEvaluator(cfg, torch_threads=1)
    local = PeriodicEvaluator(sort_config(tmp_path, workers=0), torch_threads=1)
    try:
        assert remote.submit(agent.acting_state_dict(), env_steps=10)
        (result,) = remote.poll(block=True)
        assert local.submit(agent.acting_state_dict(), env_steps=10)
        (expected,) = local.poll()
    finally:
        remote.close()
        local.close()
    inputs, targets, mask = env.unwrapped.sample_batch(6, np.random.default_rng(remote.seed))
    with torch.no_grad():
        logits, _ = agent.core(torch.as_tensor(inputs))
        _, figures = sequence_bce_loss(logits, torch.as_tensor(targets), torch.as_tensor(mask))
    cost = float(figures["cost_bits"])
    assert result.figures["eval_cost_bits"] == pytest.approx(cost, rel=1e-5)
    assert result.score == pytest.approx(-cost, rel=1e-5)
    assert result.score == pytest.approx(expected.score, rel=1e-6)
    assert result.returns == expected.returns and len(result.returns) == 6
    assert result.figures["eval_return_mean"] == pytest.approx(np.mean(result.returns))
    assert result.score != result.figures["eval_return_mean"]


def test_cost_metric_picks_the_best_weights_on_cost(tmp_path):
    """In process (num_workers 0: every due evaluation runs at once, so the count is fixed):
    every evaluation is logged with its cost and wrong bits, and `best` is the lowest cost."""
    cfg = sort_config(
        tmp_path,
        0,
        ["run.total_sequences=160", "run.eval_every_steps=200", "run.checkpoint_every_steps=0"],
    )
    run = RunDir.create(tmp_path, cfg.run.name, dump_config(cfg))
    trainer = Trainer(cfg, run)
    summary = trainer.train()
    evals = [r for r in read_metrics(run.metrics) if "eval_cost_bits" in r]
    assert len(evals) >= 3 and all("eval_return_mean" in r for r in evals)
    best = load_checkpoint(run.checkpoints / "best")["best"]
    assert best["eval_return_mean"] == pytest.approx(summary["best_eval_return"])
    assert best["eval_return_mean"] == pytest.approx(-min(r["eval_cost_bits"] for r in evals))
    assert all(r["eval_score"] == pytest.approx(-r["eval_cost_bits"]) for r in evals)


@pytest.mark.parametrize(
    ("config", "words"),
    [
        ("configs/dqn_cartpole.yaml", "needs a sequence agent"),
        ("configs/memn2n_babi_generated.yaml", "needs a sequence agent"),
    ],
)
def test_cost_metric_is_refused_where_there_is_no_sequence_cost(config, words):
    from agents import AgentError
    from rollout.trainer import probe_and_check

    cfg = load_config(config, ["run.eval_metric=cost"])
    with pytest.raises(AgentError, match=words) as info:
        probe_and_check(cfg)
    assert "run.eval_metric: return" in str(info.value)


def test_evaluations_that_come_back_at_the_end_each_get_a_row(tmp_path):
    """Evaluations still out when the budget is reached (here: every result held back until the
    final blocking poll) are each logged with their own eval_env_steps before the final one, so
    the best weights are always among the logged evaluations; none is dropped or made up."""
    cfg = sort_config(
        tmp_path,
        0,
        ["run.total_sequences=64", "run.eval_every_steps=100", "run.checkpoint_every_steps=0"],
    )
    run = RunDir.create(tmp_path, cfg.run.name, dump_config(cfg))
    trainer = Trainer(cfg, run)
    poll = trainer.evaluator.poll
    submitted = []
    submit = trainer.evaluator.submit

    def held_submit(weights, env_steps, *args):
        submitted.append(env_steps)
        return submit(weights, env_steps, *args)

    trainer.evaluator.submit = held_submit
    trainer.evaluator.poll = lambda block=False: poll() if block else []
    trainer.train()
    rows = [r for r in read_metrics(run.metrics) if "eval_cost_bits" in r]
    assert len(submitted) >= 3
    assert [r["eval_env_steps"] for r in rows] == submitted  # the last one is the final weights'
    assert len({r["env_steps"] for r in rows}) == 1  # all logged in the last iteration
    best = load_checkpoint(run.checkpoints / "best")["best"]
    assert best["eval_return_mean"] == pytest.approx(-min(r["eval_cost_bits"] for r in rows))


def test_cost_metric_stops_on_the_cost(tmp_path):
    cfg = sort_config(
        tmp_path,
        0,
        ["run.total_sequences=400", "run.eval_every_steps=100", "run.stop_return=-1000"],
    )
    run = RunDir.create(tmp_path, cfg.run.name, dump_config(cfg))
    summary = Trainer(cfg, run).train()
    assert summary["stop_reason"].startswith("evaluation score (minus the cost in bits)")
    assert summary["sequences"] < 400
