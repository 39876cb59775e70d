"""memrl's Python API (docs/python_api.md).

    import memrl

    run = memrl.train("configs/dqn_cartpole.yaml", {"run.total_env_steps": 20_000})
    policy = memrl.load_policy(run.path)              # the best checkpoint
    env = policy.make_env()
    obs, _ = env.reset(seed=0)
    state = policy.initial_state()
    action, state = policy.act(obs, state)
    figures = memrl.evaluate(run.path, episodes=10)

A thin facade: the import packages stay `agents`, `envs` and `rollout`, and each call here runs
the same code as the matching `memrl` command.
"""

from __future__ import annotations

from agents import AgentError
from envs import EnvSpecError
from memrl.api import Policy, Run, evaluate, load_policy, make_env, train
from rollout.config import ConfigError
from rollout.evaluation import EvaluationError
from rollout.trainer import TrainingError

__all__ = [
    "AgentError",
    "ConfigError",
    "EnvSpecError",
    "EvaluationError",
    "Policy",
    "Run",
    "TrainingError",
    "evaluate",
    "load_policy",
    "make_env",
    "train",
]
