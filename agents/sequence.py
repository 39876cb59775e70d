"""Sequence agents: a recurrent core that maps input vectors to output bits, one step at a time.

The NTM and the LSTM baseline share this: supervised training on whole sequences drawn by the
rollout workers with the task's `sample_batch` (binary cross-entropy on the output steps), and
acting step by step in the same task's Gymnasium env (greedy: threshold at 0.5; exploring:
sample the Bernoulli outputs, as RL-NTM will). The core's state is explicit: a tuple of tensors
with the batch in dimension 0 (DESIGN.md, style rule 7).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from agents.base import Agent, AgentError, SupervisedSpec
from agents.losses import masked_bce, masked_nll, sequence_cross_entropy_loss
from agents.losses import sequence_bce_loss as sequence_loss

State = tuple[torch.Tensor, ...]
StepFn = Callable[[torch.Tensor, State], tuple[torch.Tensor, State]]


class RecurrentCore(nn.Module):
    """Interface of a sequence model: `initial_state(B)`, `step(x, state) -> (logits, state)`."""

    def initial_state(self, batch_size: int) -> State:
        raise NotImplementedError

    def step(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        raise NotImplementedError

    def forward(
        self, inputs: torch.Tensor, state: State | None = None, step: StepFn | None = None
    ) -> tuple[torch.Tensor, State]:
        """inputs [T, B, in] -> logits [T, B, out], one `step` (default `self.step`) per time
        step; cores may override with a fused version."""
        state = self.initial_state(inputs.shape[1]) if state is None else state
        step = self.step if step is None else step
        outputs = []
        for x in inputs:
            logits, state = step(x, state)
            outputs.append(logits)
        return torch.stack(outputs), state


class SequenceAgent(Agent):
    """Base for agents built around a `RecurrentCore`; subclasses set `self.core`."""

    graphable = True
    progress_metrics = ("bit_errors", "token_errors")
    core: RecurrentCore

    def __init__(self, cfg: Any, observation_space: gym.Space, action_space: gym.Space):
        super().__init__(cfg, observation_space, action_space)
        if not (
            isinstance(observation_space, gym.spaces.Box) and len(observation_space.shape) == 1
        ):
            raise AgentError(
                f"{cfg.name} needs vector observations (a 1-D Box), got {observation_space}."
            )
        # bits (MultiBinary: one logit per bit, BCE) or symbols (Discrete: one logit per class,
        # categorical cross-entropy), so the same cores serve bit and symbol tasks
        self.symbols = isinstance(action_space, gym.spaces.Discrete)
        if self.symbols:
            self.output_size = int(action_space.n)
        elif isinstance(action_space, gym.spaces.MultiBinary) and len(action_space.shape) == 1:
            self.output_size = int(action_space.shape[0])
        else:
            raise AgentError(
                f"{cfg.name} outputs bits or symbols: it needs a 1-D MultiBinary or a Discrete "
                f"action space, got {action_space}."
            )
        self.input_size = int(observation_space.shape[0])

    def data_spec(self) -> SupervisedSpec:
        return SupervisedSpec(batch_size=self.cfg.batch_size)

    def check_task(self, task: Any, env_id: str) -> None:
        if not (hasattr(task, "sample_batch") or hasattr(task, "dataset")):
            raise AgentError(
                f"agent '{self.cfg.name}' learns from whole sequences, but env '{env_id}' has "
                "neither a sampler, sample_batch(batch_size, rng), nor splits, dataset(split); "
                "use a memrl sequence task such as memrl/Copy-v0."
            )

    def initial_state(self, batch_size: int) -> State:
        return self.core.initial_state(batch_size)

    def reset_state(self, state: State, done: np.ndarray) -> State:
        if not done.any():
            return state
        fresh = self.core.initial_state(len(done))
        keep = torch.as_tensor(~done)
        return tuple(
            torch.where(keep.view(-1, *([1] * (s.dim() - 1))), s, f) for s, f in zip(state, fresh)
        )

    def action_scores(self, obs: torch.Tensor, state: State) -> tuple[torch.Tensor, State, str]:
        logits, state = self.core.step(obs.float(), state)
        return logits, state, ("categorical" if self.symbols else "bernoulli")

    @torch.no_grad()
    def act(self, obs: np.ndarray, state: State, explore: bool) -> tuple[np.ndarray, State, dict]:
        logits, state = self.core.step(torch.as_tensor(obs, dtype=torch.float32), state)
        if self.symbols:
            dist = torch.distributions.Categorical(logits=logits)
            symbols = dist.sample() if explore else logits.argmax(-1)
            return symbols.numpy().astype(np.int64), state, {}
        bits = torch.bernoulli(torch.sigmoid(logits)) if explore else (logits > 0).float()
        return bits.numpy().astype(np.int8), state, {}

    def loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        logits, _ = self.core(batch["inputs"].float())
        return self.targets_loss(logits, batch)

    def targets_loss(
        self, logits: torch.Tensor, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The masked loss of `logits` [T, B, out] against the batch's targets: cross-entropy
        for symbol tasks, per-bit binary cross-entropy for bit tasks."""
        if self.symbols:
            return sequence_cross_entropy_loss(logits, batch["targets"], batch["mask"])
        return sequence_loss(logits, batch["targets"].float(), batch["mask"])

    @torch.no_grad()
    def score_examples(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Per sequence, [B]: wrong bits (or symbols), whether the whole sequence is right, and
        `cost_bits`, the training loss's cross-entropy summed over the scored steps, in bits."""
        logits, _ = self.core(batch["inputs"].float())
        mask = batch["mask"].float()
        targets = batch["targets"]
        if self.symbols:
            cost = masked_nll(logits, targets, mask).sum(0) / math.log(2.0)
            wrong = (logits.argmax(-1) != targets.long()).float() * mask
            errors = wrong.sum(0)
            return {"token_errors": errors, "correct": (errors == 0).float(), "cost_bits": cost}
        targets = targets.float()
        cost = masked_bce(logits, targets, mask).sum((0, 2)) / math.log(2.0)
        wrong = ((logits > 0).float() != targets).float().sum(-1) * mask
        errors = wrong.sum(0)
        return {"bit_errors": errors, "correct": (errors == 0).float(), "cost_bits": cost}
