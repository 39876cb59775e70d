"""Learning: the agents actually learn. CartPole to >= 475 is slow (`make test-slow`)."""

from __future__ import annotations

import pytest

from rollout.config import dump_config, load_config
from rollout.run_dir import RunDir
from rollout.trainer import Trainer


def make_trainer(tmp_path, config: str, overrides: list[str]) -> Trainer:
    cfg = load_config(config, [*overrides, f"run.dir={tmp_path}"])
    run = RunDir.create(tmp_path, cfg.run.name, dump_config(cfg))
    return Trainer(cfg, run)


@pytest.mark.parametrize("config", ["configs/dqn_cartpole.yaml", "configs/reinforce_cartpole.yaml"])
def test_agents_learn_the_corridor_in_process(config, tmp_path):
    # optimal return for length 8: 6 steps at -0.01, then +1
    trainer = make_trainer(
        tmp_path,
        config,
        [
            "env.id=tests.fakes:Corridor",
            "env.kwargs={length: 8, max_steps: 30}",
            "rollout.num_workers=0",
            "rollout.steps_per_sample=128",
            "agent.epsilon_decay_steps=2000" if "dqn" in config else "agent.entropy_coef=0.0",
            "run.total_env_steps=20000",
            "run.eval_every_steps=1000",
            "run.stop_return=0.94",
            "run.eval_episodes=4",
        ],
    )
    assert trainer.evaluate() < 0  # untrained, the greedy policy does not reach the goal
    summary = trainer.train()
    assert summary["eval_return_mean"] == pytest.approx(0.94)
    assert summary["env_steps"] < 20000


@pytest.mark.slow
@pytest.mark.parametrize("config", ["configs/dqn_cartpole.yaml", "configs/reinforce_cartpole.yaml"])
def test_agents_solve_cartpole_through_ray(config, tmp_path, ray_local):
    summary = make_trainer(tmp_path, config, []).train()
    print(f"\n{config}: {summary}")
    assert summary["stop_reason"].startswith("evaluation return")
    assert summary["eval_return_mean"] >= 475  # mean of 20 greedy evaluation episodes
