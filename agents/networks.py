"""Small building blocks shared by agents: observation encoding and MLPs.

Models know nothing about tasks: they see spaces and tensors only.
"""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from agents.base import AgentError

SUPPORTED_OBSERVATIONS = "Box (vector), Discrete, MultiBinary"


def observation_size(space: gym.Space) -> int:
    """Length of the flat float vector `encode_observation` makes from this space."""
    if isinstance(space, gym.spaces.Box):
        if len(space.shape) > 1 and space.dtype == np.uint8:
            raise AgentError(
                f"observation space {space} looks like images; this agent has an MLP torso "
                f"(supported observations: {SUPPORTED_OBSERVATIONS})."
            )
        return int(np.prod(space.shape))
    if isinstance(space, gym.spaces.Discrete):
        return int(space.n)
    if isinstance(space, gym.spaces.MultiBinary):
        return int(np.prod(space.shape))
    raise AgentError(
        f"observation space {space} is not supported; supported observations: {SUPPORTED_OBSERVATIONS}."
    )


def encode_observation(obs: torch.Tensor, space: gym.Space) -> torch.Tensor:
    """[B, ...] raw observations -> [B, observation_size] float32."""
    if isinstance(space, gym.spaces.Discrete):
        return nn.functional.one_hot(
            (obs.long() - int(space.start)).flatten(), int(space.n)
        ).float()
    return obs.reshape(obs.shape[0], -1).float()


def mlp(in_dim: int, hidden: Sequence[int], out_dim: int | None = None) -> nn.Sequential:
    """Linear+ReLU layers; a final linear layer to `out_dim` when given."""
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(in_dim, width), nn.ReLU()]
        in_dim = width
    if out_dim is not None:
        layers.append(nn.Linear(in_dim, out_dim))
    return nn.Sequential(*layers)


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (x * mask).sum() / mask.sum().clamp_min(1.0)
