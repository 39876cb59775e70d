"""DQN (Mnih et al. 2015) with the common extensions: double Q-learning (van Hasselt et al. 2016),
dueling heads (Wang et al. 2016), n-step returns and a target network; epsilon-greedy exploration
on a linear schedule over env steps.

The replay buffer lives in the trainer (rollout.replay_buffer); it hands `loss` batches that already
hold the n-step return and the bootstrap discount, so the loss below is the whole algorithm.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from agents.base import Agent, AgentError, ReplaySpec
from agents.losses import td_loss
from agents.networks import encode_observation, is_image, torso


@dataclass
class Config:
    """DQN, Mnih et al. 2015 ("Human-level control through deep RL"), plus double/dueling/n-step.

    Defaults are a fast CartPole setting; the Nature Atari values live in configs/dqn_pong.yaml.
    """

    name: str = "dqn"
    hidden: list[int] = field(default_factory=lambda: [128, 128])
    gamma: float = 0.99
    double: bool = True
    dueling: bool = True
    n_step: int = 3
    huber: bool = True
    target_update_every: int = 500  # learner updates between target syncs
    tau: float = 1.0  # 1.0 = hard copy; < 1 = Polyak averaging at every sync
    epsilon_start: float = 1.0
    epsilon_end: float = 0.05
    epsilon_decay_steps: int = 10_000  # env steps
    # With rollout.num_workers > 1, worker i explores with a fixed epsilon
    # apex_base ** (1 + apex_alpha * i / (N - 1)) as in Ape-X (Horgan et al. 2018), not the schedule.
    apex_epsilons: bool = False
    apex_base: float = 0.4
    apex_alpha: float = 7.0
    buffer_size: int = 50_000
    batch_size: int = 64
    learning_starts: int = 1_000  # env steps before the first update
    replay_ratio: float = 1.0  # learner updates per env step

    def validate(self) -> None:
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"gamma must be in [0, 1], got {self.gamma}")
        if self.n_step < 1:
            raise ValueError(f"n_step must be >= 1, got {self.n_step}")
        if not 0.0 < self.tau <= 1.0:
            raise ValueError(f"tau must be in (0, 1], got {self.tau}")
        if not (0.0 <= self.epsilon_end <= 1.0 and 0.0 <= self.epsilon_start <= 1.0):
            raise ValueError("epsilon_start and epsilon_end must be in [0, 1]")
        if self.batch_size < 1 or self.buffer_size < self.batch_size:
            raise ValueError(
                f"need 1 <= batch_size <= buffer_size, got {self.batch_size}, {self.buffer_size}"
            )
        if self.replay_ratio <= 0 or self.target_update_every < 1:
            raise ValueError("replay_ratio must be > 0 and target_update_every >= 1")


class QNetwork(nn.Module):
    def __init__(self, space: gym.Space, hidden: list[int], num_actions: int, dueling: bool):
        super().__init__()
        self.image = is_image(space)
        self.space = space
        self.torso, width = torso(space, hidden)
        self.dueling = dueling
        self.advantage = nn.Linear(width, num_actions)
        self.value = nn.Linear(width, 1) if dueling else None

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        h = self.torso(obs if self.image else encode_observation(obs, self.space))
        adv = self.advantage(h)
        if self.value is None:
            return adv
        return self.value(h) + adv - adv.mean(dim=-1, keepdim=True)


class DQNAgent(Agent):
    learner_only = ("target.",)

    def __init__(self, cfg: Config, observation_space: gym.Space, action_space: gym.Space):
        super().__init__(cfg, observation_space, action_space)
        if not isinstance(action_space, gym.spaces.Discrete):
            raise AgentError(f"DQN needs a Discrete action space, got {action_space}.")
        self.num_actions = int(action_space.n)
        self.action_start = int(action_space.start)
        self.online = QNetwork(observation_space, cfg.hidden, self.num_actions, cfg.dueling)
        self.target = QNetwork(observation_space, cfg.hidden, self.num_actions, cfg.dueling)
        self.target.load_state_dict(self.online.state_dict())
        self.target.requires_grad_(False)
        # A buffer, so the current epsilon travels to the workers with the weights.
        self.register_buffer("epsilon", torch.tensor(float(cfg.epsilon_start)))
        self.actor_epsilon: float | None = None  # a worker's fixed Ape-X epsilon

    def configure_actor(self, worker_index: int, num_workers: int) -> None:
        cfg = self.cfg
        if cfg.apex_epsilons and num_workers > 1:
            power = 1 + cfg.apex_alpha * worker_index / (num_workers - 1)
            self.actor_epsilon = cfg.apex_base**power

    def q_values(self, obs: torch.Tensor, net: nn.Module | None = None) -> torch.Tensor:
        return (net or self.online)(obs)

    @torch.no_grad()
    def action_scores(self, obs: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any, str]:
        return self.q_values(obs), state, "categorical"

    def act(self, obs: np.ndarray, state: Any, explore: bool) -> tuple[np.ndarray, Any, dict]:
        greedy = self.q_values(torch.as_tensor(obs)).argmax(dim=1)
        if explore:
            random_actions = torch.randint(self.num_actions, greedy.shape)
            epsilon = self.epsilon if self.actor_epsilon is None else self.actor_epsilon
            use_random = torch.rand(greedy.shape) < epsilon
            greedy = torch.where(use_random, random_actions, greedy)
        return greedy.numpy() + self.action_start, state, {}

    def loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        obs, next_obs = batch["obs"], batch["next_obs"]
        q_next_online = None
        if self.cfg.double:  # one forward pass of the online net over obs and next_obs together
            q_both = self.q_values(torch.cat([obs, next_obs]))
            q_online, q_next_online = q_both[: len(obs)], q_both[len(obs) :].detach()
        else:
            q_online = self.q_values(obs)
        with torch.no_grad():
            q_next_target = self.q_values(next_obs, self.target)
        actions = batch["actions"].long() - self.action_start
        return td_loss(
            q_online,
            q_next_online,
            q_next_target,
            actions,
            batch["returns"],
            batch["discounts"],
            self.cfg.huber,
        )

    def on_update(self, updates: int) -> None:
        if updates % self.cfg.target_update_every:
            return
        with torch.no_grad():
            for t, o in zip(self.target.parameters(), self.online.parameters()):
                t.lerp_(o, self.cfg.tau)

    def on_env_steps(self, env_steps: int) -> None:
        cfg = self.cfg
        frac = min(1.0, env_steps / max(1, cfg.epsilon_decay_steps))
        self.epsilon.fill_(cfg.epsilon_start + frac * (cfg.epsilon_end - cfg.epsilon_start))

    def data_spec(self) -> ReplaySpec:
        cfg = self.cfg
        return ReplaySpec(
            cfg.buffer_size,
            cfg.batch_size,
            cfg.learning_starts,
            cfg.replay_ratio,
            cfg.n_step,
            cfg.gamma,
        )
