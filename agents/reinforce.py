"""REINFORCE with a learned value baseline and an entropy bonus.

`discounted_returns` and `reinforce_loss` are pure functions over time-major tensors, written once
and shared by every agent that learns from reward: this policy-gradient agent, the RL-NTM on the
algorithmic tasks and the VQA program generator (DESIGN.md, style rule 8). Nothing sampled is
stashed on a module: the caller passes log-probabilities, returns, mask and baseline in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from agents.base import Agent, AgentError
from agents.networks import encode_observation, masked_mean, mlp, observation_size


def discounted_returns(rewards: torch.Tensor, mask: torch.Tensor, gamma: float) -> torch.Tensor:
    """Reward-to-go G_t = r_t + gamma * G_{t+1} over time-major [T, B] padded episodes.

    `mask` is 1 on real steps and 0 on padding after an episode ended; G is 0 on padding.
    """
    returns = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[0])
    for t in range(rewards.shape[0] - 1, -1, -1):
        running = (rewards[t] + gamma * running) * mask[t]
        returns[t] = running
    return returns


def reinforce_loss(
    log_probs: torch.Tensor,
    returns: torch.Tensor,
    mask: torch.Tensor,
    baseline: torch.Tensor | None = None,
    entropy: torch.Tensor | None = None,
    *,
    value_coef: float = 0.5,
    entropy_coef: float = 0.0,
    normalize_advantages: bool = False,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The REINFORCE objective, as a loss to minimise.

    loss = -E[log pi(a|s) * A] + value_coef * E[(b - G)^2] - entropy_coef * E[H],
    with A = G - b (b detached, so the baseline only learns from its own regression term).
    All tensors share one shape (e.g. [T, B]); means are over `mask`.
    """
    mask = mask.to(log_probs.dtype)
    advantages = returns if baseline is None else returns - baseline.detach()
    if normalize_advantages:
        mean = masked_mean(advantages, mask)
        std = masked_mean((advantages - mean) ** 2, mask).sqrt()
        advantages = (advantages - mean) / (std + 1e-8)
    policy_loss = -masked_mean(log_probs * advantages.detach(), mask)
    loss = policy_loss
    metrics = {
        "policy_loss": float(policy_loss.detach()),
        "return_mean": float(masked_mean(returns, mask)),
    }
    if baseline is not None:
        value_loss = masked_mean((baseline - returns) ** 2, mask)
        loss = loss + value_coef * value_loss
        metrics["value_loss"] = float(value_loss.detach())
    if entropy is not None:
        mean_entropy = masked_mean(entropy, mask)
        loss = loss - entropy_coef * mean_entropy
        metrics["entropy"] = float(mean_entropy.detach())
    return loss, metrics


class PolicyHead(nn.Module):
    """Logits -> distribution for Discrete (categorical) or MultiBinary (independent Bernoullis)."""

    SUPPORTED = "Discrete, MultiBinary"

    def __init__(self, action_space: gym.Space):
        super().__init__()
        if isinstance(action_space, gym.spaces.Discrete):
            self.kind, self.num_logits = "discrete", int(action_space.n)
            self.start = int(action_space.start)
        elif isinstance(action_space, gym.spaces.MultiBinary):
            self.kind, self.num_logits = "multibinary", int(np.prod(action_space.shape))
            self.shape = tuple(action_space.shape)
        else:
            raise AgentError(
                f"action space {action_space} is not supported by this policy; "
                f"supported action spaces: {self.SUPPORTED}."
            )

    def distribution(self, logits: torch.Tensor) -> torch.distributions.Distribution:
        if self.kind == "discrete":
            return torch.distributions.Categorical(logits=logits)
        return torch.distributions.Independent(torch.distributions.Bernoulli(logits=logits), 1)

    def to_env(self, sample: torch.Tensor) -> np.ndarray:
        """Distribution samples [B, ...] -> actions the env accepts."""
        if self.kind == "discrete":
            return sample.numpy().astype(np.int64) + self.start
        return sample.numpy().astype(np.int8).reshape((-1, *self.shape))

    def from_env(self, actions: torch.Tensor) -> torch.Tensor:
        if self.kind == "discrete":
            return actions.reshape(-1).long() - self.start
        return actions.reshape(actions.shape[0], -1).float()

    def greedy(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.argmax(-1) if self.kind == "discrete" else (logits > 0).float()


@dataclass
class Config:
    """REINFORCE (Williams 1992) with a learned state-value baseline and entropy bonus.

    The defaults solve CartPole-v1; the same loss serves RL-NTM (Zaremba & Sutskever 2015).
    """

    name: str = "reinforce"
    hidden: list[int] = field(default_factory=lambda: [64, 64])
    gamma: float = 0.99
    baseline: bool = True
    value_coef: float = 0.5
    entropy_coef: float = 0.01
    normalize_advantages: bool = True

    def validate(self) -> None:
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"gamma must be in [0, 1], got {self.gamma}")
        if any(h <= 0 for h in self.hidden):
            raise ValueError(f"hidden sizes must be > 0, got {self.hidden}")


class ReinforceAgent(Agent):
    batch_kind = "episodes"

    def __init__(self, cfg: Config, observation_space: gym.Space, action_space: gym.Space):
        super().__init__(cfg, observation_space, action_space)
        in_dim = observation_size(observation_space)
        self.head = PolicyHead(action_space)
        self.policy = mlp(in_dim, cfg.hidden, self.head.num_logits)
        self.value = mlp(in_dim, cfg.hidden, 1) if cfg.baseline else None

    def _encode(self, obs: torch.Tensor) -> torch.Tensor:
        return encode_observation(obs, self.observation_space)

    @torch.no_grad()
    def act(self, obs: np.ndarray, state: Any, explore: bool) -> tuple[np.ndarray, Any, dict]:
        logits = self.policy(self._encode(torch.as_tensor(obs)))
        sample = self.head.distribution(logits).sample() if explore else self.head.greedy(logits)
        return self.head.to_env(sample), state, {}

    def loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        obs, mask = batch["obs"], batch["mask"]
        steps, width = mask.shape
        flat_obs = self._encode(obs.reshape(steps * width, *obs.shape[2:]))
        dist = self.head.distribution(self.policy(flat_obs))
        actions = self.head.from_env(
            batch["actions"].reshape(steps * width, *batch["actions"].shape[2:])
        )
        log_probs = dist.log_prob(actions).reshape(steps, width)
        entropy = dist.entropy().reshape(steps, width)
        baseline = self.value(flat_obs).reshape(steps, width) if self.value is not None else None
        returns = discounted_returns(batch["rewards"], mask, self.cfg.gamma)
        return reinforce_loss(
            log_probs,
            returns,
            mask,
            baseline,
            entropy,
            value_coef=self.cfg.value_coef,
            entropy_coef=self.cfg.entropy_coef,
            normalize_advantages=self.cfg.normalize_advantages,
        )
