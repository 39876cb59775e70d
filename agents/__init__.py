"""memrl agents: models, their losses and the generic learner. No Ray, no env imports."""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from agents import dqn, lstm, memn2n, ntm, program_generator, reinforce, stack_rnn
from agents.base import Agent, AgentError, DataSpec, EpisodeSpec, ReplaySpec, SupervisedSpec
from agents.learner import Learner, NonFiniteLossError

# name -> (Config dataclass, Agent class). One file per agent; register it here.
AGENTS: dict[str, tuple[type, type[Agent]]] = {
    "dqn": (dqn.Config, dqn.DQNAgent),
    "lstm": (lstm.Config, lstm.LSTMAgent),
    "memn2n": (memn2n.Config, memn2n.MemN2NAgent),
    "ntm": (ntm.Config, ntm.NTMAgent),
    "program_generator": (program_generator.Config, program_generator.ProgramGenerator),
    "reinforce": (reinforce.Config, reinforce.ReinforceAgent),
    "stack_rnn": (stack_rnn.Config, stack_rnn.StackRNNAgent),
}


def agent_config_class(name: str) -> type:
    return AGENTS[name][0]


def make_agent(cfg: Any, observation_space: gym.Space, action_space: gym.Space) -> Agent:
    """Build the agent named by `cfg.name` for these spaces."""
    if cfg.name not in AGENTS:
        raise AgentError(f"unknown agent '{cfg.name}'; valid agents: {', '.join(AGENTS)}.")
    return AGENTS[cfg.name][1](cfg, observation_space, action_space)


__all__ = [
    "AGENTS",
    "Agent",
    "AgentError",
    "DataSpec",
    "EpisodeSpec",
    "Learner",
    "NonFiniteLossError",
    "ReplaySpec",
    "SupervisedSpec",
    "make_agent",
]
