"""REINFORCE with a baseline (learned value, moving average or none) and an entropy bonus.

The loss itself (`discounted_returns`, `reinforce_loss`, `MovingAverageBaseline`) lives in
agents.losses, shared with every agent that learns from reward (DESIGN.md, style rule 8); it is
imported here so `from agents.reinforce import reinforce_loss` keeps working.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from agents.base import Agent, AgentError, EpisodeSpec
from agents.losses import REDUCTIONS, MovingAverageBaseline, discounted_returns, reinforce_loss
from agents.networks import encode_observation, mlp, observation_size


class MultiCategorical(torch.distributions.Distribution):
    """Independent categoricals over logits split into `sizes` groups (a MultiDiscrete action)."""

    arg_constraints: ClassVar[dict] = {}

    def __init__(self, logits: torch.Tensor, sizes: list[int]):
        self.parts = [
            torch.distributions.Categorical(logits=chunk, validate_args=False)
            for chunk in logits.split(sizes, -1)
        ]
        super().__init__(logits.shape[:-1], validate_args=False)

    def sample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:  # noqa: B008
        return torch.stack([p.sample(sample_shape) for p in self.parts], -1)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        return sum(p.log_prob(value[..., i]) for i, p in enumerate(self.parts))

    def entropy(self) -> torch.Tensor:
        return sum(p.entropy() for p in self.parts)


class PolicyHead(nn.Module):
    """Logits -> distribution for Discrete (categorical), MultiBinary (independent Bernoullis) or
    MultiDiscrete (independent categoricals, one per component)."""

    SUPPORTED = "Discrete, MultiBinary, MultiDiscrete"

    def __init__(self, action_space: gym.Space):
        super().__init__()
        if isinstance(action_space, gym.spaces.Discrete):
            self.kind, self.num_logits = "discrete", int(action_space.n)
            self.start = int(action_space.start)
        elif isinstance(action_space, gym.spaces.MultiBinary):
            self.kind, self.num_logits = "multibinary", int(np.prod(action_space.shape))
            self.shape = tuple(action_space.shape)
        elif isinstance(action_space, gym.spaces.MultiDiscrete):
            self.kind, self.shape = "multidiscrete", tuple(action_space.shape)
            self.sizes = [int(n) for n in action_space.nvec.reshape(-1)]
            self.num_logits = sum(self.sizes)
            self.register_buffer(
                "start", torch.as_tensor(action_space.start.reshape(-1), dtype=torch.int64)
            )
        else:
            raise AgentError(
                f"action space {action_space} is not supported by this policy; "
                f"supported action spaces: {self.SUPPORTED}."
            )

    def distribution(self, logits: torch.Tensor) -> torch.distributions.Distribution:
        if self.kind == "discrete":
            return torch.distributions.Categorical(logits=logits)
        if self.kind == "multidiscrete":
            return MultiCategorical(logits, self.sizes)
        return torch.distributions.Independent(torch.distributions.Bernoulli(logits=logits), 1)

    def to_env(self, sample: torch.Tensor) -> np.ndarray:
        """Distribution samples [B, ...] -> actions the env accepts."""
        if self.kind == "discrete":
            return sample.numpy().astype(np.int64) + self.start
        if self.kind == "multidiscrete":
            return (sample + self.start).numpy().astype(np.int64).reshape((-1, *self.shape))
        return sample.numpy().astype(np.int8).reshape((-1, *self.shape))

    def from_env(self, actions: torch.Tensor) -> torch.Tensor:
        if self.kind == "discrete":
            return actions.reshape(-1).long() - self.start
        if self.kind == "multidiscrete":
            return actions.reshape(actions.shape[0], -1).long() - self.start
        return actions.reshape(actions.shape[0], -1).float()

    def one_hot(self, sample: torch.Tensor) -> torch.Tensor:
        """Distribution samples [N, ...] -> [N, num_logits] float (the previous-action input)."""
        if self.kind == "discrete":
            return nn.functional.one_hot(sample.reshape(-1).long(), self.num_logits).float()
        if self.kind == "multidiscrete":
            values = sample.reshape(sample.shape[0], -1).long()
            return torch.cat(
                [nn.functional.one_hot(values[:, i], n).float() for i, n in enumerate(self.sizes)],
                -1,
            )
        return sample.reshape(sample.shape[0], -1).float()

    def greedy(self, logits: torch.Tensor) -> torch.Tensor:
        if self.kind == "discrete":
            return logits.argmax(-1)
        if self.kind == "multidiscrete":
            return torch.stack([c.argmax(-1) for c in logits.split(self.sizes, -1)], -1)
        return (logits > 0).float()


BASELINES = ("learned", "moving_average", "none")
SYMBOL_LOSSES = ("reinforce", "likelihood")


@dataclass
class Config:
    """REINFORCE (Williams 1992) with a baseline and an entropy bonus.

    The defaults (a learned state-value baseline, the per-token mean) solve CartPole-v1; the
    same loss serves RL-NTM (Zaremba & Sutskever 2015).
    `baseline`: `learned` (a value head regressed on the returns with weight `value_coef`),
    `moving_average` (a scalar, b <- baseline_decay * b + (1 - baseline_decay) * the batch's mean
    episode return, with no value loss, as Zaremba & Sutskever 2015 and Johnson et al. 2017) or
    `none`. The booleans of older configs still load: true is `learned`, false is `none`.
    `reduction`: `token` averages the loss over every real step of the batch (the step shrinks
    as episodes grow longer); `sequence` sums over each episode's steps and averages over the
    episodes (the gradient of the expected episode return, whatever the episode lengths).
    `torso: lstm` puts an LSTM (`lstm_size` units) after the `hidden` MLP layers, so the policy
    and the baseline see the whole episode so far: the recurrent policy for memory tasks
    (e.g. the T-maze of Bakker 2002, examples/plugin_env), trained on whole padded episodes.
    `previous_action` feeds the action taken at the last step (one-hot) to the network with
    the observation (the LSTM, or the MLP, whose only state it then is): a sampled policy cannot
    otherwise tell which of its moves it made.

    RL-NTM (Zaremba & Sutskever 2015) on the tape tasks (envs/tape.py), whose MultiDiscrete
    actions end with (write flag, symbol): `write_gated_symbol` counts the symbol's
    log-probability and entropy only on steps that write (the env ignores it elsewhere, so it
    would only add noise to the gradient). `symbol_loss: likelihood` is the paper's mixed
    objective: the symbol is trained by cross-entropy against the correct one
    (info["target"], weight `symbol_coef`) on the steps that write, and chosen greedily when
    acting, while the interface actions (head move, write flag) are trained by REINFORCE;
    `reinforce` learns everything from reward alone.
    `previous_symbol: false` leaves the symbol out of the previous-action input altogether
    (only the head move and the write flag): the symbol just written is a one-step memory that
    feed-forward tape policies exploit for shortcuts that do not scale (reverse, repeat copy:
    docs/rl_ntm.md).
    `entropy_coef_end` with `entropy_decay_steps`: the entropy bonus goes linearly from
    `entropy_coef` to `entropy_coef_end` over that many env steps (exploration early; a
    near-deterministic policy later, which gym's curriculum needs to promote).
    """

    name: str = "reinforce"
    hidden: list[int] = field(default_factory=lambda: [64, 64])
    torso: Literal["mlp", "lstm"] = "mlp"
    lstm_size: int = 64
    gamma: float = 0.99
    baseline: Literal["learned", "moving_average", "none"] | bool = "learned"
    baseline_decay: float = 0.9
    reduction: Literal["sequence", "token"] = "token"
    value_coef: float = 0.5
    entropy_coef: float = 0.01
    entropy_coef_end: float | None = None
    entropy_decay_steps: int = 0
    normalize_advantages: bool = True
    previous_action: bool = False
    previous_symbol: bool = True
    write_gated_symbol: bool = False
    symbol_loss: Literal["reinforce", "likelihood"] = "reinforce"
    symbol_coef: float = 1.0

    def __post_init__(self) -> None:
        if isinstance(self.baseline, bool):  # `baseline: true/false` in configs before the modes
            self.baseline = "learned" if self.baseline else "none"

    def validate(self) -> None:
        if self.baseline not in BASELINES:
            raise ValueError(
                f"baseline must be one of {', '.join(BASELINES)}, got {self.baseline!r}"
            )
        if self.reduction not in REDUCTIONS:
            raise ValueError(
                f"reduction must be one of {', '.join(REDUCTIONS)}, got {self.reduction!r}"
            )
        if not 0.0 <= self.baseline_decay < 1.0:
            raise ValueError(f"baseline_decay must be in [0, 1), got {self.baseline_decay}")
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"gamma must be in [0, 1], got {self.gamma}")
        if any(h <= 0 for h in self.hidden):
            raise ValueError(f"hidden sizes must be > 0, got {self.hidden}")
        if self.lstm_size < 1:
            raise ValueError(f"lstm_size must be >= 1, got {self.lstm_size}")
        if self.symbol_loss not in SYMBOL_LOSSES:
            raise ValueError(
                f"symbol_loss must be one of {', '.join(SYMBOL_LOSSES)}, got {self.symbol_loss!r}"
            )
        if self.symbol_loss == "likelihood" and not self.write_gated_symbol:
            raise ValueError("symbol_loss: likelihood needs write_gated_symbol: true")
        if self.symbol_coef < 0:
            raise ValueError(f"symbol_coef must be >= 0, got {self.symbol_coef}")
        if self.entropy_coef_end is not None and self.entropy_decay_steps < 1:
            raise ValueError("entropy_coef_end needs entropy_decay_steps >= 1 (env steps)")
        if not self.previous_symbol and not self.write_gated_symbol:
            raise ValueError("previous_symbol: false needs write_gated_symbol: true (tape actions)")
        if self.entropy_decay_steps < 0:
            raise ValueError(f"entropy_decay_steps must be >= 0, got {self.entropy_decay_steps}")


# (h, c), each [B, lstm_size], and with `previous_action` the last action one-hot [B, logits]
LSTMState = tuple[torch.Tensor, ...]


class ReinforceAgent(Agent):
    """Feed-forward (`policy`/`value` are MLPs over the observation) or recurrent (`torso` MLP
    -> `lstm` -> linear `policy`/`value` heads; the (h, c) state is explicit, batch first)."""

    learner_only = ("moving_baseline.",)  # the workers act without it

    def __init__(self, cfg: Config, observation_space: gym.Space, action_space: gym.Space):
        super().__init__(cfg, observation_space, action_space)
        in_dim = observation_size(observation_space)
        self.head = PolicyHead(action_space)
        if cfg.write_gated_symbol and not (
            self.head.kind == "multidiscrete"
            and len(self.head.sizes) >= 2
            and self.head.sizes[-2] == 2
        ):
            raise AgentError(
                f"write_gated_symbol needs MultiDiscrete actions ending with (write flag of 2, "
                f"symbol), as the tape tasks' (move, write, symbol); got {action_space}"
            )
        self.lstm: nn.LSTM | None = None
        learned = cfg.baseline == "learned"
        if cfg.previous_action:
            in_dim += self.head.num_logits
        if cfg.torso == "lstm":
            self.torso = mlp(in_dim, cfg.hidden)
            self.lstm = nn.LSTM(cfg.hidden[-1] if cfg.hidden else in_dim, cfg.lstm_size)
            self.policy = nn.Linear(cfg.lstm_size, self.head.num_logits)
            self.value = nn.Linear(cfg.lstm_size, 1) if learned else None
        else:
            self.policy = mlp(in_dim, cfg.hidden, self.head.num_logits)
            self.value = mlp(in_dim, cfg.hidden, 1) if learned else None
        self.moving_baseline = (
            MovingAverageBaseline(cfg.baseline_decay) if cfg.baseline == "moving_average" else None
        )
        self.entropy_coef = float(cfg.entropy_coef)  # follows the schedule (on_env_steps)

    def data_spec(self) -> EpisodeSpec:
        return EpisodeSpec()

    def _encode(self, obs: torch.Tensor) -> torch.Tensor:
        return encode_observation(obs, self.observation_space)

    def initial_state(self, batch_size: int) -> LSTMState | None:
        device = next(self.policy.parameters()).device
        previous = (
            (torch.zeros(batch_size, self.head.num_logits, device=device),)
            if self.cfg.previous_action
            else ()
        )
        if self.lstm is None:
            return previous or None
        zeros = torch.zeros(batch_size, self.cfg.lstm_size, device=device)
        return zeros, zeros.clone(), *previous

    def reset_state(self, state: LSTMState | None, done: np.ndarray) -> LSTMState | None:
        if state is None or not done.any():
            return state
        keep = torch.as_tensor(~done, device=state[0].device).unsqueeze(-1)
        return tuple(torch.where(keep, s, torch.zeros_like(s)) for s in state)

    def _recurrent(
        self, obs: torch.Tensor, state: LSTMState | None, previous: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, LSTMState]:
        """obs [T, B, ...] (and with `previous_action` the one-hot previous actions [T, B, K])
        -> LSTM features [T, B, lstm_size] and the (h, c) state after the last step."""
        steps, width = obs.shape[:2]
        x = self._encode(obs.reshape(steps * width, *obs.shape[2:]))
        if previous is not None:
            x = torch.cat([x, previous.reshape(steps * width, -1)], -1)
        x = self.torso(x)
        h, c = (state if state is not None else self.initial_state(width))[:2]
        out, (h, c) = self.lstm(x.reshape(steps, width, -1), (h.unsqueeze(0), c.unsqueeze(0)))
        return out, (h[0], c[0])

    def action_scores(self, obs: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any, str] | None:
        if self.initial_state(1) is not None or self.head.kind not in ("discrete", "multibinary"):
            return None
        logits = self.policy(self._encode(obs))
        return logits, state, ("categorical" if self.head.kind == "discrete" else "bernoulli")

    @torch.no_grad()
    def act(self, obs: np.ndarray, state: Any, explore: bool) -> tuple[np.ndarray, Any, dict]:
        obs_t = torch.as_tensor(obs)
        if self.lstm is None:
            x = self._encode(obs_t)
            if self.cfg.previous_action:
                x, state = torch.cat([x, state[-1]], -1), ()
            logits = self.policy(x)
        else:
            previous = state[-1].unsqueeze(0) if self.cfg.previous_action else None
            features, state = self._recurrent(obs_t.unsqueeze(0), state, previous)
            logits = self.policy(features[0])
        sample = self.head.distribution(logits).sample() if explore else self.head.greedy(logits)
        if explore and self.cfg.symbol_loss == "likelihood":  # the symbol is not explored
            sample[:, -1] = self.head.greedy(logits)[:, -1]
        if self.cfg.previous_action:
            state = (*state, self._previous(sample))
        return self.head.to_env(sample), state, {}

    def on_env_steps(self, env_steps: int) -> None:
        """The entropy bonus's linear schedule: `entropy_coef` at step 0 to `entropy_coef_end`
        at `entropy_decay_steps` env steps, then constant."""
        cfg = self.cfg
        if cfg.entropy_coef_end is None:
            return
        frac = min(1.0, env_steps / cfg.entropy_decay_steps)
        self.entropy_coef = cfg.entropy_coef + frac * (cfg.entropy_coef_end - cfg.entropy_coef)

    def _previous(self, sample: torch.Tensor) -> torch.Tensor:
        """The previous-action input: the action one-hot, and with `write_gated_symbol` the
        symbol's block zeroed where nothing was written (the symbol did not happen; left in,
        it is a one-step memory the policy learns to lean on, e.g. writing the last input
        symbol from it on reverse, a shortcut that does not scale)."""
        encoded = self.head.one_hot(sample)
        if not self.cfg.write_gated_symbol:
            return encoded
        wrote = (sample[:, -2] == 1).to(encoded.dtype).unsqueeze(-1)
        if not self.cfg.previous_symbol:
            wrote = torch.zeros_like(wrote)
        symbol = self.head.sizes[-1]
        return torch.cat([encoded[:, :-symbol], encoded[:, -symbol:] * wrote], -1)

    def _log_probs(
        self, logits: torch.Tensor, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(log-prob, entropy) per step of what REINFORCE trains, and the symbol's logits where
        the symbol is trained by likelihood instead (else None)."""
        dist = self.head.distribution(logits)
        if not self.cfg.write_gated_symbol:
            return dist.log_prob(actions), dist.entropy(), None
        parts = dist.parts
        writes = (actions[:, -2] == 1).to(logits.dtype)
        log_probs = sum(p.log_prob(actions[:, i]) for i, p in enumerate(parts[:-1]))
        entropy = sum(p.entropy() for p in parts[:-1])
        if self.cfg.symbol_loss == "likelihood":
            return log_probs, entropy, parts[-1].logits
        log_probs = log_probs + writes * parts[-1].log_prob(actions[:, -1])
        return log_probs, entropy + writes * parts[-1].entropy(), None

    def loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        # Episodes start at step 0 of the batch (the workers send complete episodes), so the
        # recurrent torso replays each one from a zero state; padding after the end is masked.
        obs, mask = batch["obs"], batch["mask"]
        steps, width = mask.shape
        actions = self.head.from_env(
            batch["actions"].reshape(steps * width, *batch["actions"].shape[2:])
        )
        previous = None
        if self.cfg.previous_action:  # the action before each step; zeros at step 0
            taken = self._previous(actions).reshape(steps, width, -1)
            previous = torch.cat([torch.zeros_like(taken[:1]), taken[:-1]])
        if self.lstm is None:
            features = self._encode(obs.reshape(steps * width, *obs.shape[2:]))
            if previous is not None:
                features = torch.cat([features, previous.reshape(steps * width, -1)], -1)
        else:
            features = self._recurrent(obs, None, previous)[0].reshape(steps * width, -1)
        log_probs, entropy, symbol_logits = self._log_probs(self.policy(features), actions)
        baseline = self.moving_baseline
        if self.value is not None:
            baseline = self.value(features).reshape(steps, width)
        returns = discounted_returns(batch["rewards"], mask, self.cfg.gamma)
        loss, metrics = reinforce_loss(
            log_probs.reshape(steps, width),
            returns,
            mask,
            baseline,
            entropy.reshape(steps, width),
            reduction=self.cfg.reduction,
            value_coef=self.cfg.value_coef,
            entropy_coef=self.entropy_coef,
            normalize_advantages=self.cfg.normalize_advantages,
        )
        if self.cfg.entropy_coef_end is not None:
            metrics["entropy_coef"] = torch.tensor(self.entropy_coef)
        if symbol_logits is not None:
            symbol_loss, symbol_metrics = self._symbol_likelihood(symbol_logits, actions, batch)
            loss = loss + self.cfg.symbol_coef * symbol_loss
            metrics.update(symbol_metrics)
        return loss, metrics

    def _symbol_likelihood(
        self, logits: torch.Tensor, actions: torch.Tensor, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Cross-entropy of the correct symbol (batch["targets"], info["target"]) on the real
        steps that wrote, as RL-NTM trains its outputs."""
        if "targets" not in batch:
            raise AgentError(
                "symbol_loss: likelihood needs the env's info['target'] (the correct symbol at "
                "each step) in the episode batches; this env gives none"
            )
        targets = batch["targets"].reshape(-1).long()
        written = (actions[:, -2] == 1) & (batch["mask"].reshape(-1) > 0) & (targets >= 0)
        weight = written.to(logits.dtype)
        safe = torch.where(written, targets, torch.zeros_like(targets))
        nll = nn.functional.cross_entropy(logits, safe, reduction="none")
        loss = (nll * weight).sum() / weight.sum().clamp_min(1.0)
        with torch.no_grad():
            right = ((logits.argmax(-1) == safe).to(logits.dtype) * weight).sum()
            accuracy = right / weight.sum().clamp_min(1.0)
        return loss, {"symbol_loss": loss.detach(), "symbol_accuracy": accuracy}
