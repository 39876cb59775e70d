"""Losses shared between agents, written once as pure functions over tensors.

- `discounted_returns` and `reinforce_loss`: the policy gradient of every agent that learns from
  reward (the REINFORCE agent, RL-NTM on the algorithmic tasks, the VQA program generator;
  DESIGN.md, style rule 8). The caller passes log-probabilities, returns, mask and baseline in;
  nothing sampled is stashed on a module.
- `MovingAverageBaseline`: the non-learned scalar baseline of Zaremba & Sutskever (2015) and of
  Johnson et al. (2017)'s program generator, with no value loss.
- `td_loss`: DQN's one-step (or n-step) temporal-difference loss.
- `sequence_bce_loss` and `sequence_cross_entropy_loss`: supervised losses on time-major output
  sequences (bits for the NTM tasks, tokens for seq2seq), with the per-sequence figures papers
  report.

Every metric is a detached 0-d tensor, never a Python float: reading a float waits for the
device, and a loss that never waits can be captured with the rest of the update as one CUDA
graph (agents.cuda_graphs). The learner reads all the metrics with one sync.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

from agents.networks import masked_mean

Reduction = Literal["sequence", "token"]
REDUCTIONS = ("sequence", "token")


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


class MovingAverageBaseline(nn.Module):
    """A scalar baseline that is not learned by gradient: b <- decay * b + (1 - decay) * R, with
    R the batch's mean episode return (`reinforce_loss` updates it after using it).

    Any baseline that does not depend on the current batch's actions leaves the policy gradient
    unbiased, and a scalar one needs no value network and adds no value loss. The value is a
    buffer, so it is checkpointed with the agent and moves with it to the learner's device.
    Johnson et al. (2017, clevr-iep) use decay 0.9 and fold the current batch in *before*
    centring its rewards; here the batch is centred with the value from earlier batches only,
    which keeps the estimate exactly unbiased.
    """

    def __init__(self, decay: float = 0.9, initial: float = 0.0):
        super().__init__()
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"moving-average baseline decay must be in [0, 1), got {decay}")
        self.decay = float(decay)
        self.register_buffer("value", torch.tensor(float(initial)))

    @torch.no_grad()
    def update(self, batch_return: torch.Tensor) -> None:
        """Fold one batch's mean episode return (a 0-d tensor) in, on the device, without a sync;
        a non-finite return leaves the value as it was (one bad batch must not poison it)."""
        new = self.value * self.decay + (1.0 - self.decay) * batch_return.to(self.value.dtype)
        self.value.copy_(torch.where(torch.isfinite(new), new, self.value))

    def extra_repr(self) -> str:
        return f"decay={self.decay}"


def _reducer(mask: torch.Tensor, reduction: str):
    """x -> one number: the masked mean per token, or the sum over each sequence's steps averaged
    over the sequences that have at least one real step."""
    if reduction == "token":
        return lambda x: masked_mean(x, mask)
    present = mask.reshape(mask.shape[0], -1).amax(dim=0) > 0
    num_sequences = present.sum().clamp_min(1).to(mask.dtype)
    return lambda x: (x * mask).sum() / num_sequences


def reinforce_loss(
    log_probs: torch.Tensor,
    returns: torch.Tensor,
    mask: torch.Tensor,
    baseline: torch.Tensor | MovingAverageBaseline | None = None,
    entropy: torch.Tensor | None = None,
    *,
    reduction: Reduction = "sequence",
    value_coef: float = 0.5,
    entropy_coef: float = 0.0,
    normalize_advantages: bool = False,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The REINFORCE objective (Williams 1992), as a loss to minimise.

    loss = -R[log pi(a|s) * A] + value_coef * R[(b - G)^2] - entropy_coef * R[H], A = G - b.

    Tensors are time-major, [T, B] (or [T] for one sequence); each column is one episode from
    its first step at row 0, padded after its end where `mask` is 0. R is the `reduction`:
    - "sequence": the sum over each episode's steps, averaged over the episodes. This is the
      gradient of the expected episode return, so the step does not depend on how long the
      episodes are or on how much padding the batch carries.
    - "token": the masked mean over all real steps (the step shrinks as episodes get longer).

    `baseline` is one of
    - a tensor shaped like `returns` (a learned value, e.g. a value head): detached in A, and
      trained by its own regression term `value_loss`;
    - a `MovingAverageBaseline`: its current value is subtracted, no value loss is added, and
      it is then updated with this batch's `episode_return_mean` (the one side effect here);
    - None: A = G.
    `normalize_advantages` standardises A over the batch's real steps.

    Metrics (detached 0-d tensors): `policy_loss` and `value_loss` as they enter the loss;
    `entropy`, the mean entropy per real step (a diagnostic that does not depend on episode
    lengths; the loss term uses the reduction); `episode_return_mean`, the mean over episodes
    of the return from each episode's first step, G_0 (the undiscounted sum of the rewards
    when gamma is 1); `baseline` for a moving-average baseline (its value before the update).
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {', '.join(REDUCTIONS)}, got {reduction!r}")
    for name, tensor in (("returns", returns), ("mask", mask), ("entropy", entropy)):
        if tensor is not None and tensor.shape != log_probs.shape:
            raise ValueError(
                f"reinforce_loss: {name} has shape {tuple(tensor.shape)}, log_probs "
                f"{tuple(log_probs.shape)}; they must match (time-major [T, B])"
            )
    learned = isinstance(baseline, torch.Tensor)
    if learned and baseline.shape != log_probs.shape:
        raise ValueError(
            f"reinforce_loss: a learned baseline must be shaped like log_probs "
            f"{tuple(log_probs.shape)}, got {tuple(baseline.shape)}"
        )
    mask = mask.to(log_probs.dtype)
    reduce = _reducer(mask, reduction)
    with torch.no_grad():
        per_episode = _reducer(mask, "sequence")
        first_step = torch.zeros_like(mask)
        first_step[0] = 1.0
        episode_return_mean = per_episode(returns * first_step)
    metrics: dict[str, torch.Tensor] = {"episode_return_mean": episode_return_mean}
    if baseline is None:
        advantages = returns
    elif learned:
        advantages = returns - baseline.detach()
    elif isinstance(baseline, MovingAverageBaseline):
        value = baseline.value.detach().clone()  # the update below must not change A
        advantages = returns - value.to(returns.dtype)
        metrics["baseline"] = value
    else:
        raise TypeError(
            "reinforce_loss: baseline must be a tensor (learned), a MovingAverageBaseline or "
            f"None, got {type(baseline).__name__}"
        )
    if normalize_advantages:
        mean = masked_mean(advantages, mask)
        std = masked_mean((advantages - mean) ** 2, mask).sqrt()
        advantages = (advantages - mean) / (std + 1e-8)
    policy_loss = -reduce(log_probs * advantages.detach())
    loss = policy_loss
    metrics["policy_loss"] = policy_loss.detach()
    if learned:
        value_loss = reduce((baseline - returns) ** 2)
        loss = loss + value_coef * value_loss
        metrics["value_loss"] = value_loss.detach()
    if entropy is not None:
        loss = loss - entropy_coef * reduce(entropy)
        metrics["entropy"] = masked_mean(entropy.detach(), mask)
    if isinstance(baseline, MovingAverageBaseline):
        baseline.update(episode_return_mean)
    return loss, metrics


def td_loss(
    q_online: torch.Tensor,
    q_next_online: torch.Tensor | None,
    q_next_target: torch.Tensor,
    actions: torch.Tensor,
    returns: torch.Tensor,
    discounts: torch.Tensor,
    huber: bool = True,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """TD loss on Q-values [B, A]. Double DQN picks the next action with `q_next_online`;
    plain DQN (q_next_online None) takes the target network's max. `discounts` is
    gamma^k * (1 - terminal) for the k-step return in `returns`."""
    q = q_online.gather(1, actions.long().unsqueeze(1)).squeeze(1)
    with torch.no_grad():
        if q_next_online is None:
            next_q = q_next_target.max(dim=1).values
        else:
            next_q = q_next_target.gather(1, q_next_online.argmax(dim=1, keepdim=True)).squeeze(1)
        target = returns + discounts * next_q
    error = q - target
    loss = nn.functional.smooth_l1_loss(q, target) if huber else (error**2).mean()
    return loss, {"q_mean": q.detach().mean(), "td_abs": error.detach().abs().mean()}


def masked_bce(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy (nats) of every output bit, 0 off the scored steps: [T, B, K] from
    logits/targets [T, B, K] and mask [T, B]."""
    bce = nn.functional.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    return bce * mask.unsqueeze(-1).to(logits.dtype)


def masked_nll(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Categorical cross-entropy (nats) of every step, 0 off the scored steps (whose targets may
    hold anything, e.g. padding): [T, B] from logits [T, B, C], targets and mask [T, B]."""
    safe = torch.where(mask > 0, targets.long(), torch.zeros_like(targets, dtype=torch.long))
    nll = nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), safe.reshape(-1), reduction="none"
    ).reshape(targets.shape)
    return nll * mask.to(logits.dtype)


def sequence_bce_loss(
    logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Mean binary cross-entropy over the output steps, plus the paper's per-sequence figures:
    `cost_bits` (cross-entropy in bits per sequence) and `bit_errors` (wrong bits per sequence
    after thresholding at 0.5), as 0-d tensors (no wait on the device). logits/targets [T, B, K],
    mask [T, B]."""
    m = mask.unsqueeze(-1).to(logits.dtype)
    bce = masked_bce(logits, targets, mask)
    width = logits.shape[-1]
    loss = bce.sum() / (m.sum() * width).clamp_min(1.0)
    batch = logits.shape[1]
    with torch.no_grad():
        errors = (((logits > 0).to(targets.dtype) != targets).to(logits.dtype) * m).sum() / batch
        cost = bce.sum() / batch / math.log(2.0)
    return loss, {"bit_errors": errors, "cost_bits": cost}


def sequence_cross_entropy_loss(
    logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Mean categorical cross-entropy (nats) over the masked tokens of time-major sequences, for
    token outputs (Learning to Execute, a program generator's maximum-likelihood stage, bAbI
    answers). logits [T, B, C], targets [T, B] class indices (any value where `mask` is 0, e.g.
    a padding index), mask [T, B].

    Per-sequence figures, as 0-d tensors over the B sequences: `cost_bits` (cross-entropy in
    bits per sequence), `token_errors` (wrong argmax tokens per sequence) and
    `sequence_accuracy` (the fraction of sequences whose every masked token is right).
    """
    if logits.dim() != 3 or targets.shape != logits.shape[:2] or mask.shape != targets.shape:
        raise ValueError(
            "sequence_cross_entropy_loss: need logits [T, B, C], targets and mask [T, B]; got "
            f"logits {tuple(logits.shape)}, targets {tuple(targets.shape)}, "
            f"mask {tuple(mask.shape)}"
        )
    m = mask.to(logits.dtype)
    real = mask > 0
    nll = masked_nll(logits, targets, mask)
    loss = nll.sum() / m.sum().clamp_min(1.0)
    batch = logits.shape[1]
    with torch.no_grad():
        wrong = (logits.argmax(-1) != targets.long()) & real  # off the mask: never wrong
        errors = wrong.to(logits.dtype).sum() / batch
        all_right = (~wrong.any(dim=0)).to(logits.dtype).mean()
        cost = nll.sum() / batch / math.log(2.0)
    return loss, {"cost_bits": cost, "token_errors": errors, "sequence_accuracy": all_right}
