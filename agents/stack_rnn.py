"""Stack-augmented recurrent net of Joulin & Mikolov (2015), "Inferring Algorithmic Patterns with
Stack-Augmented Recurrent Nets" (NIPS 2015): a small sigmoid recurrent layer that talks to K
differentiable stacks.

At step t, with x_t the input and s^k_{t-1} the k-th stack (top at index 0):

    h_t = sigmoid(U x_t + sum_k P_k s^k_{t-1}[0:depth] (+ R h_{t-1}))
    a^k_t = softmax(A_k h_t)                      over (push, pop[, no-op])
    s^k_t[0] = push * sigmoid(D_k h_t) + pop * s^k_{t-1}[1] (+ no-op * s^k_{t-1}[0])
    s^k_t[i] = push * s^k_{t-1}[i-1] + pop * s^k_{t-1}[i+1] (+ no-op * s^k_{t-1}[i])
    y_t = softmax(V h_t)

An empty cell holds -1; what falls off the bottom is lost. The paper's toy-task runs recur
through the stacks only (its `-mod 1`; `recurrent_hidden` adds R h_{t-1}, its `-mod 2`), train
with soft actions and may discretise them (argmax, "-hard") at test time: `hard_actions` does
that whenever no gradient is being taken (acting, evaluation, the report), never in the loss.
The state is explicit: (h [B, H], stacks [B, K, capacity, width], last actions [B, K, A]).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import gymnasium as gym
import torch
from torch import nn

from agents.sequence import RecurrentCore, SequenceAgent, State

EMPTY = -1.0  # the value of an empty stack cell (the paper's EMPTY_STACK_VALUE)
PUSH, POP, NOOP = 0, 1, 2


@dataclass
class Config:
    """Stack RNN, Joulin & Mikolov 2015: 40 hidden units, 10 stacks, the top 2 cells read (100
    hidden units for memorisation); stack capacity 200 as in the paper's code."""

    name: str = "stack_rnn"
    hidden_size: int = 40
    stacks: int = 10
    depth: int = 2  # top cells of each stack read into the hidden layer
    capacity: int = 200  # cells per stack
    width: int = 1  # values per cell (the paper's stacks hold scalars)
    noop: bool = True  # a third action that leaves the stack as it is
    recurrent_hidden: bool = False  # also h_{t-1} -> h_t (the paper's toy tasks: through stacks)
    hard_actions: bool = False  # argmax actions when no gradient is taken (test time)
    # weight of the stack actions' mean entropy (nats) in the loss: pushes the soft actions
    # towards 0/1, so the soft and the argmax stacks agree (the paper's code has an entropy
    # regulariser, `reg`, switched off). 0 = none, the paper's setting
    action_entropy_cost: float = 0.0
    # the action softmax's temperature, annealed during training: softmax(logits / tau), tau
    # going geometrically from 1 at update action_anneal[0] to action_temperature_end at update
    # action_anneal[1], then held. At a small tau the soft actions are nearly 0/1, so a counter
    # learned with them is a discrete one (what argmax actions and long sequences need). The
    # temperature is part of the model: evaluation, the report and acting use it too.
    # 1.0 = none (the paper's setting)
    action_temperature_end: float = 1.0
    action_anneal: list[int] = field(default_factory=list)  # [start, end] in updates
    # None: action_anneal counts from the first update. A score: it counts from the update of
    # the first evaluation during training scoring at least this (the trainer's evaluation
    # figure, e.g. 0 = no wrong symbol on env.eval_kwargs' sequences): the anneal begins once
    # the training range is fitted, whenever that is for a seed
    action_anneal_score: float | None = None
    # from this update on the training forward pass takes the argmax actions while the
    # gradient flows through the softmax (straight-through): the loss is the argmax model's.
    # -1 = never (the paper's setting)
    straight_through_from: int = -1
    batch_size: int = 32  # sequences per training batch

    def validate(self) -> None:
        for key in ("hidden_size", "stacks", "depth", "capacity", "width", "batch_size"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key} must be >= 1, got {getattr(self, key)}")
        if self.action_entropy_cost < 0:
            raise ValueError(f"action_entropy_cost must be >= 0, got {self.action_entropy_cost}")
        if self.depth > self.capacity:
            raise ValueError(f"depth={self.depth} must be <= capacity={self.capacity}")
        if not 0 < self.action_temperature_end <= 1:
            raise ValueError(
                f"action_temperature_end must be in (0, 1], got {self.action_temperature_end}"
            )
        anneal = list(self.action_anneal)
        if self.action_temperature_end < 1 and not (
            len(anneal) == 2 and 0 <= anneal[0] < anneal[1]
        ):
            raise ValueError(
                "action_temperature_end < 1 needs action_anneal: [start, end] in updates with "
                f"0 <= start < end, got {anneal}"
            )
        if self.action_anneal_score is not None and self.action_temperature_end == 1:
            raise ValueError(
                f"action_anneal_score is set ({self.action_anneal_score}) but "
                "action_temperature_end is 1 (no annealing)"
            )
        if anneal and self.action_temperature_end == 1:
            raise ValueError(
                f"action_anneal is set ({anneal}) but action_temperature_end is 1 (no annealing)"
            )
        if self.straight_through_from < -1:
            raise ValueError(
                "straight_through_from must be -1 (never) or an update count >= 0, got "
                f"{self.straight_through_from}"
            )

    def temperature(self, updates: int, origin: float = 0.0) -> float:
        """The action softmax's temperature after `updates` optimiser steps, the anneal counted
        from update `origin` (< 0: not begun, see action_anneal_score)."""
        if self.action_temperature_end == 1 or origin < 0:
            return 1.0
        start, end = (origin + u for u in self.action_anneal)
        progress = min(max((updates - start) / (end - start), 0.0), 1.0)
        return float(self.action_temperature_end**progress)


def stack_update(stack: torch.Tensor, actions: torch.Tensor, pushed: torch.Tensor) -> torch.Tensor:
    """One soft stack step. stack [B, K, N, W], actions [B, K, 2 or 3] (push, pop[, no-op]),
    pushed [B, K, W] -> [B, K, N, W]: the mixture of pushing `pushed`, popping the top (an
    empty cell enters at the bottom) and, with a third action, leaving the stack unchanged."""
    push = torch.cat([pushed.unsqueeze(2), stack[:, :, :-1]], dim=2)
    bottom = torch.full_like(stack[:, :, :1], EMPTY)
    pop = torch.cat([stack[:, :, 1:], bottom], dim=2)
    w = actions.unsqueeze(-1).unsqueeze(-1)
    out = w[:, :, PUSH] * push + w[:, :, POP] * pop
    if actions.shape[-1] > 2:
        out = out + w[:, :, NOOP] * stack
    return out


class StackRNNCore(RecurrentCore):
    def __init__(self, cfg: Config, input_size: int, output_size: int):
        super().__init__()
        self.cfg = cfg
        k, h, w = cfg.stacks, cfg.hidden_size, cfg.width
        self.actions = 3 if cfg.noop else 2
        self.input = nn.Linear(input_size, h)
        self.read = nn.Linear(k * cfg.depth * w, h, bias=False)
        self.recurrent = nn.Linear(h, h, bias=False) if cfg.recurrent_hidden else None
        self.act_head = nn.Linear(h, k * self.actions)
        self.push_head = nn.Linear(h, k * w)
        self.output = nn.Linear(h, output_size)
        # the straight-through switch (training forward only): set by the agent's on_update
        self.straight_through = False
        if cfg.action_temperature_end < 1:  # part of the weights: workers and checkpoints
            self.register_buffer("action_temperature", torch.ones(()))
        else:
            self.action_temperature = None
        if cfg.action_anneal_score is not None:  # the update the anneal counts from (-1: not yet)
            self.register_buffer("anneal_origin", torch.tensor(-1.0))
        else:
            self.anneal_origin = None

    def initial_state(self, batch_size: int, capacity: int | None = None) -> State:
        cfg, device = self.cfg, self.output.weight.device
        h = torch.zeros(batch_size, cfg.hidden_size, device=device)
        cells = cfg.capacity if capacity is None else capacity
        stack = torch.full((batch_size, cfg.stacks, cells, cfg.width), EMPTY, device=device)
        actions = torch.zeros(batch_size, cfg.stacks, self.actions, device=device)
        return h, stack, actions

    def _advance(self, pre: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """`pre` = U x_t (+ bias): the rest of one step."""
        h_prev, stack, _ = state
        batch, k = stack.shape[0], self.cfg.stacks
        pre = pre + self.read(stack[:, :, : self.cfg.depth].reshape(batch, -1))
        if self.recurrent is not None:
            pre = pre + self.recurrent(h_prev)
        h = torch.sigmoid(pre)
        scores = self.act_head(h).view(batch, k, self.actions)
        if self.action_temperature is not None:
            scores = scores / self.action_temperature
        actions = torch.softmax(scores, dim=-1)
        if torch.is_grad_enabled():
            if self.straight_through:  # argmax forward, the softmax's gradient backward
                hard = nn.functional.one_hot(actions.argmax(-1), self.actions).to(h.dtype)
                actions = hard + actions - actions.detach()
        elif self.cfg.hard_actions:
            actions = nn.functional.one_hot(actions.argmax(-1), self.actions).to(h.dtype)
        pushed = torch.sigmoid(self.push_head(h)).view(batch, k, self.cfg.width)
        stack = stack_update(stack, actions, pushed)
        return self.output(h), (h, stack, actions)

    def step(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        return self._advance(self.input(x), state)

    def forward(
        self, inputs: torch.Tensor, state: State | None = None, step=None
    ) -> tuple[torch.Tensor, State]:
        """inputs [T, B, in] -> logits [T, B, out]; the input projection of every step in one
        matrix product, then the recurrence step by step. From empty stacks, T steps can bring
        back at most the top T + depth cells, so only those are kept: the same outputs as the
        full capacity, at a fraction of the cost."""
        if step is not None:
            return super().forward(inputs, state, step)
        logits, state, _ = self.run(inputs, state)
        return logits, state

    def run(
        self, inputs: torch.Tensor, state: State | None = None
    ) -> tuple[torch.Tensor, State, torch.Tensor]:
        """forward() that also returns the actions of every step, [T, B, K, A]."""
        if state is None:
            cells = min(self.cfg.capacity, len(inputs) + self.cfg.depth)
            state = self.initial_state(inputs.shape[1], cells)
        projected = self.input(inputs)
        outputs, actions = [], []
        for pre in projected:
            logits, state = self._advance(pre, state)
            outputs.append(logits)
            actions.append(state[2])
        return torch.stack(outputs), state, torch.stack(actions)


class StackRNNAgent(SequenceAgent):
    # sequence lengths vary batch to batch and the recurrence is a Python loop: no CUDA graph
    graphable = False

    def __init__(self, cfg: Config, observation_space: gym.Space, action_space: gym.Space):
        super().__init__(cfg, observation_space, action_space)
        self.core = StackRNNCore(cfg, self.input_size, self.output_size)

    def on_update(self, updates: int) -> None:
        """The action temperature and the straight-through switch follow the update count."""
        core = self.core
        self.updates = updates
        if core.action_temperature is not None:
            origin = 0.0 if core.anneal_origin is None else float(core.anneal_origin)
            core.action_temperature.fill_(self.cfg.temperature(updates, origin))
        start = self.cfg.straight_through_from
        core.straight_through = start >= 0 and updates >= start

    def on_evaluation(self, result: dict[str, float]) -> None:
        """With action_anneal_score: the first evaluation scoring at least that starts the
        anneal's clock at the current update."""
        threshold, origin = self.cfg.action_anneal_score, self.core.anneal_origin
        if threshold is None or origin is None or float(origin) >= 0:
            return
        if result["score"] >= threshold:
            origin.fill_(float(getattr(self, "updates", 0)))

    def loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The symbols' cross-entropy, plus `action_entropy_cost` times the mean entropy of the
        stack actions over the steps each sequence has (a step with an input symbol)."""
        if self.cfg.action_entropy_cost == 0:
            return super().loss(batch)
        logits, _, a = self.core.run(batch["inputs"].float())
        loss, figures = self.targets_loss(logits, batch)
        entropy = -(a * torch.log(a.clamp_min(1e-12))).sum(-1).mean(-1)  # [T, B]
        steps = (batch["inputs"].float().sum(-1) > 0).to(entropy.dtype)
        entropy = (entropy * steps).sum() / steps.sum().clamp_min(1.0)
        loss = loss + self.cfg.action_entropy_cost * entropy
        return loss, {**figures, "action_entropy": entropy.detach()}

    @torch.no_grad()
    def trace(self, inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        """Run [T, B, in] inputs and keep what the pictures show: logits [T, B, out], the
        actions [T, B, K, A] and the stacks after each step [T, B, K, capacity, width]."""
        state = self.core.initial_state(inputs.shape[1])
        logits, actions, stacks = [], [], []
        for x in inputs:
            y, state = self.core.step(x, state)
            logits.append(y)
            stacks.append(state[1])
            actions.append(state[2])
        return {
            "logits": torch.stack(logits),
            "actions": torch.stack(actions),
            "stacks": torch.stack(stacks),
        }

    def trace_panels(self, traced: dict[str, torch.Tensor], shown: int = 3) -> list:
        """(name, [T, rows] in [0, 1]) pictures of sequence 0 for the `shown` stacks whose
        actions vary most: the push/pop(/no-op) probabilities, and the cells in use (top row
        first; an empty cell 0, a value v in [0, 1] as (v + 1) / 2)."""
        actions = traced["actions"][:, 0]  # [T, K, A]
        stacks = traced["stacks"][:, 0, :, :, 0]  # [T, K, N], first value of each cell
        busiest = actions.var(0).sum(-1).argsort(descending=True)[:shown]
        used = (
            int((stacks > EMPTY + 1e-3).any(0).any(0).nonzero().max().item() + 1)
            if (stacks > EMPTY + 1e-3).any()
            else self.cfg.depth
        )
        names = ["push", "pop", "no-op"][: actions.shape[-1]]
        panels = []
        for k in busiest.tolist():
            panels.append((f"stack {k} actions\n({', '.join(names)})", actions[:, k].numpy()))
            cells = ((stacks[:, k, :used] - EMPTY) / 2.0).clamp(0, 1)
            panels.append((f"stack {k} cells\n(top first)", cells.numpy()))
        return panels
