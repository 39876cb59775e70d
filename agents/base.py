"""The agent interface every memrl agent implements (DESIGN.md, "Core interfaces").

An agent is a torch module that acts on CPU rollout workers (`act`, no grad) and is trained by
the generic `agents.Learner` through its pure `loss(batch)`. Agents know nothing about Ray.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch
from torch import nn


class AgentError(ValueError):
    """An agent cannot be built for this config or these spaces (the message says why)."""


# What an agent learns from, returned by `Agent.data_spec()`: the trainer picks the data source
# by the spec's type (rollout/sources.py), so a new kind of data is a new spec and a new source,
# not a string compared in several places.


@dataclass(frozen=True)
class ReplaySpec:
    """Transitions into a replay buffer (off-policy, e.g. DQN): workers step envs, the trainer
    stores [T, N] transitions and samples the learner's batches from the buffer."""

    capacity: int
    batch_size: int
    learning_starts: int
    replay_ratio: float  # learner updates per env step
    n_step: int
    gamma: float


@dataclass(frozen=True)
class EpisodeSpec:
    """Whole episodes (on-policy, e.g. REINFORCE): time-major, padded, with a mask, the agent's
    `act` extras and `info["target"]` where the env gives one."""


@dataclass(frozen=True)
class SupervisedSpec:
    """Input/target examples, `batch_size` per update: drawn by the workers from the task's
    sampler (`sample_batch`, generated tasks such as the NTM's) or, for tasks with fixed splits
    (`dataset(split)`), from the train split by a dataset source in the driver."""

    batch_size: int


DataSpec = ReplaySpec | EpisodeSpec | SupervisedSpec


def error_summary(error: BaseException) -> str:
    """'Type: first line of the message', for a one-line warning."""
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else 'no message'}"


class Agent(nn.Module):
    """Base class. Subclasses implement `data_spec`, `act` and `loss`."""

    # State-dict prefixes the workers never need (e.g. a DQN target network).
    learner_only: ClassVar[tuple[str, ...]] = ()
    # True when `loss` never waits on the device (no .item(), no data-dependent shapes), so a
    # CUDA learner can capture its whole update as one graph (learner.cuda_graphs)
    graphable: ClassVar[bool] = False
    # loss metrics the progress line shows beside the loss, e.g. the NTM's bit errors
    progress_metrics: ClassVar[tuple[str, ...]] = ()

    def __init__(self, cfg: Any, observation_space: gym.Space, action_space: gym.Space):
        super().__init__()
        self.cfg = cfg
        self.observation_space = observation_space
        self.action_space = action_space

    def initial_state(self, batch_size: int) -> Any:
        """Recurrent state for `batch_size` envs; None for feed-forward agents."""
        return None

    def reset_state(self, state: Any, done: np.ndarray) -> Any:
        """Reset the recurrent state of the envs whose episode just ended."""
        return state

    def act(self, obs: np.ndarray, state: Any, explore: bool) -> tuple[np.ndarray, Any, dict]:
        raise NotImplementedError

    def loss(
        self, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, float | torch.Tensor]]:
        """(loss, metrics); a metric is a float or a 0-d tensor (the learner reads the tensors
        with one device sync)."""
        raise NotImplementedError

    def configure_actor(self, worker_index: int, num_workers: int) -> None:
        """Called once on each rollout worker (e.g. a per-worker exploration rate)."""

    def action_scores(self, obs: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any, str] | None:
        """This agent's action scores for a batch of observations, for evaluation with sampling
        (epsilon, temperature) and recorded episodes: (scores [B, K], state, kind) with kind
        "categorical" (over Discrete actions) or "bernoulli" (one logit per output bit); greedy
        actions from them must equal `act(obs, state, explore=False)`. None: act through `act`."""
        return None

    def clip_gradients(self, max_norm: float) -> torch.Tensor | None:
        """Clip (or otherwise adjust) this agent's gradients before the optimiser step, in its
        own way (e.g. MemN2N clips each embedding table on its own, as its reference code does);
        returns the gradient norm before clipping. None (the default): the learner clips all
        parameters together at `max_norm` (learner.grad_clip; 0: no clipping)."""
        return None

    def on_update(self, updates: int) -> None:
        """Called by the learner after each optimiser step (e.g. target network sync)."""

    def on_env_steps(self, env_steps: int) -> None:
        """Called by the trainer before weights are broadcast (e.g. the epsilon schedule)."""

    def data_spec(self) -> DataSpec:
        """What this agent learns from (see the spec classes above)."""
        raise NotImplementedError

    def check_task(self, task: Any, env_id: str) -> None:
        """Refuse a task this agent cannot learn (raise AgentError saying why); `task` is the
        unwrapped env. Default: anything goes."""

    def on_evaluation(self, result: dict[str, float]) -> None:
        """Called by the trainer with each evaluation's figures (e.g. linear start, lr drops)."""

    @torch.no_grad()
    def score_examples(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Per-example figures of a supervised batch for full-pass evaluation, each [B]; must
        include `correct` (1.0 where the whole answer is right)."""
        raise NotImplementedError(f"{type(self).__name__} cannot score dataset examples")

    def acting_state_dict(self) -> dict[str, torch.Tensor]:
        """The weights a rollout worker needs, on the CPU."""
        return {
            k: v.detach().cpu()
            for k, v in self.state_dict().items()
            if not k.startswith(self.learner_only)
        }

    def load_acting_state_dict(self, weights: dict[str, torch.Tensor]) -> None:
        missing, unexpected = self.load_state_dict(weights, strict=False)
        missing = [k for k in missing if not k.startswith(self.learner_only)]
        if missing or unexpected:
            raise AgentError(
                f"weights do not fit this agent: missing {missing}, unexpected {unexpected}"
            )
