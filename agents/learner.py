"""The generic learner and its config: device, optimiser, learning-rate schedules, gradient
clipping and a NaN/inf guard; on a GPU, the whole update as a CUDA graph for agents whose loss
allows it (agents/cuda_graphs.py).

Nothing here is agent-specific: it calls `agent.loss(batch)` and `agent.on_update(step)`
(DESIGN.md, style rule 2), and reads the agent's `graphable` flag. The trainer tells it the
epoch (`set_progress`) and each evaluation's figure (`on_evaluation`) for the schedules that
follow them.
"""

from __future__ import annotations

import bisect
import copy
import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from agents.base import Agent, AgentError
from agents.cuda_graphs import GraphedUpdate


class NonFiniteLossError(RuntimeError):
    """The loss or the gradient norm became NaN/inf; the update was not applied."""


LR_SCHEDULES = ("constant", "cosine", "linear", "piecewise", "plateau", "solved")


@dataclass
class LearnerConfig:
    """Optimisation, shared by every agent (the `learner` section of a run's config)."""

    optimizer: Literal["adam", "rmsprop", "sgd"] = "adam"
    lr: float = 1e-3
    # 'cosine' or 'linear' decay lr to lr * lr_end_ratio over lr_decay_updates updates, then hold
    # it there; a pure function of the update count, so a resumed run continues the schedule.
    # 'piecewise': lr * lr_decay_factor ** (milestones passed), a milestone being passed once
    # that many updates or epochs (lr_milestone_unit) are complete, e.g. MemN2N's "halve every
    # 15 epochs" is [15, 30, 45] in epochs with factor 0.5. 'plateau': lr * lr_decay_factor
    # after lr_patience evaluations in a row without a new best figure (torch's
    # ReduceLROnPlateau without its threshold); its state is saved with the learner's.
    # 'solved': lr * lr_decay_factor at every evaluation that scores at least lr_solved_score
    # (the evaluation's figure: a mean return, -wrong bits per sequence on the NTM tasks), so a
    # model that has learned its task trains on at a lower lr instead of being thrown out of the
    # sharp solution by full-size Adam steps (NTM copy: docs/ntm_tasks.md).
    # piecewise, plateau and solved never go below lr_min.
    lr_schedule: Literal["constant", "cosine", "linear", "piecewise", "plateau", "solved"] = (
        "constant"
    )
    lr_decay_updates: int = 0
    lr_end_ratio: float = 0.1
    lr_milestones: list[int] = field(default_factory=list)
    lr_milestone_unit: Literal["updates", "epochs"] = "updates"
    lr_decay_factor: float = 0.5
    lr_patience: int = 10
    lr_min: float = 0.0
    lr_solved_score: float | None = None
    eps: float = 1e-8
    # Adam's decay of its squared-gradient average (torch's betas[1]); beta1 is 0.9
    beta2: float = 0.999
    # Adam's AMSGrad variant: steps are scaled by the largest squared-gradient average so far,
    # so a quiet stretch (near convergence) cannot shrink it and make the next gradient's step huge
    amsgrad: bool = False
    momentum: float = 0.0
    alpha: float = 0.95
    # RMSProp: True is the centered variant of Nature DQN (eps inside the root; agents/learner.py)
    centered: bool = False
    weight_decay: float = 0.0
    grad_clip: float = 10.0
    # 'norm': scale the whole gradient down to norm grad_clip; 'value': clamp every component to
    # [-grad_clip, grad_clip] (the NTM paper's "all gradient components are clipped elementwise
    # to the range (-10, 10)", with RMSProp); an agent that clips its own gradients (MemN2N) needs
    # 'norm'; 'adaptive': 'norm', and also at grad_clip_ratio x the running average of the
    # (clipped) norms of the updates before (decay grad_clip_decay), so a rare batch whose
    # gradient is 100x the usual cannot move the weights much more than a usual one does (the
    # NTM's collapses after learning copy: docs/ntm_tasks.md)
    grad_clip_mode: Literal["norm", "value", "adaptive"] = "norm"
    grad_clip_ratio: float = 3.0
    grad_clip_decay: float = 0.99
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # 0 = automatic: 1 for models under 1M parameters, else the cores the workers leave free.
    torch_threads: int = 0
    # bfloat16 convolutions on the learner (Nature CNN): 'auto' = where the hardware has native
    # bf16 (CUDA; CPUs with AVX512-BF16 or AMX), 'on', 'off'. Rollout workers act in float32.
    mixed_precision: Literal["auto", "on", "off"] = "auto"
    # the whole update (forward, backward, clip, Adam) replayed as one CUDA graph per batch shape:
    # 'auto' = on a CUDA learner for agents that allow it (NTM, LSTM) with adam and a constant lr
    # (9x faster NTM updates at batch 8 on an H200); 'on' insists, 'off' never
    cuda_graphs: Literal["auto", "on", "off"] = "auto"

    def errors(self) -> list[str]:
        """What is out of range, one message per problem naming the key as `learner.<key>`
        (rollout.config raises the first as a ConfigError naming the file; `Learner` raises it
        as an AgentError for a config built in Python)."""
        schedule = self.lr_schedule
        milestones = list(self.lr_milestones)
        rules = [
            (self.lr > 0, "'learner.lr' must be > 0"),
            (
                schedule not in ("cosine", "linear") or self.lr_decay_updates >= 1,
                f"'learner.lr_schedule: {schedule}' needs 'learner.lr_decay_updates' "
                ">= 1 (the updates over which lr decays)",
            ),
            (
                0 <= self.lr_end_ratio <= 1,
                "'learner.lr_end_ratio' must be in [0, 1] (the final lr as a fraction of "
                "'learner.lr')",
            ),
            (
                schedule != "piecewise" or len(milestones) >= 1,
                "'learner.lr_schedule: piecewise' needs 'learner.lr_milestones', a list of "
                f"{self.lr_milestone_unit} after which lr is multiplied by "
                "'learner.lr_decay_factor', e.g. [15, 30, 45]",
            ),
            (
                all(m >= 1 for m in milestones)
                and all(a < b for a, b in zip(milestones, milestones[1:])),
                f"'learner.lr_milestones' must be increasing counts >= 1, got {milestones}",
            ),
            (
                schedule == "piecewise" or not milestones,
                f"'learner.lr_milestones' is set but 'learner.lr_schedule' is '{schedule}'; "
                "only 'piecewise' reads it (set the schedule, or drop the milestones)",
            ),
            (
                0 < self.lr_decay_factor < 1,
                "'learner.lr_decay_factor' must be in (0, 1) (what lr is multiplied by at a "
                "milestone or a plateau)",
            ),
            (
                (schedule == "solved") == (self.lr_solved_score is not None),
                "'learner.lr_schedule: solved' and 'learner.lr_solved_score' go together (the "
                "evaluation score from which each evaluation multiplies lr by "
                "'learner.lr_decay_factor')"
                + ("" if schedule == "solved" else f"; the schedule is '{schedule}'"),
            ),
            (
                self.lr_patience >= 1,
                "'learner.lr_patience' must be >= 1 (evaluations without improvement before "
                "lr drops)",
            ),
            (
                0 <= self.lr_min < self.lr,
                f"'learner.lr_min' must be in [0, 'learner.lr' = {self.lr:g}) (the floor of "
                "the piecewise, plateau and solved schedules)",
            ),
            (
                self.grad_clip >= 0,
                "'learner.grad_clip' must be >= 0 (0 turns clipping off)",
            ),
            (
                self.grad_clip_ratio > 1,
                "'learner.grad_clip_ratio' must be > 1 (the norm limit as a multiple of the "
                "running average norm, with grad_clip_mode: adaptive)",
            ),
            (
                0 < self.grad_clip_decay < 1,
                "'learner.grad_clip_decay' must be in (0, 1) (the running average's decay per "
                "update, with grad_clip_mode: adaptive)",
            ),
            (self.eps > 0, "'learner.eps' must be > 0"),
            (0 <= self.momentum < 1, "'learner.momentum' must be in [0, 1)"),
            (0 < self.alpha < 1, "'learner.alpha' must be in (0, 1) (RMSProp's decay)"),
            (self.weight_decay >= 0, "'learner.weight_decay' must be >= 0"),
            (self.lr_decay_updates >= 0, "'learner.lr_decay_updates' must be >= 0"),
            (
                0 <= self.torch_threads <= 1024,
                "'learner.torch_threads' must be in 0..1024 (0 = automatic)",
            ),
            (
                0 < self.beta2 < 1,
                "'learner.beta2' must be in (0, 1) (Adam's decay of the squared gradients)",
            ),
            (
                not self.amsgrad or self.optimizer == "adam",
                "'learner.amsgrad' is an Adam option: set 'learner.optimizer: adam' or drop it",
            ),
            (
                self.cuda_graphs != "on" or (self.optimizer == "adam" and schedule == "constant"),
                "'learner.cuda_graphs: on' needs 'learner.optimizer: adam' and a constant lr "
                "('learner.lr_schedule: constant'); use 'auto' to fall back to ordinary updates",
            ),
        ]
        return [message for ok, message in rules if not ok]


def resolve_device(name: str) -> torch.device:
    """'auto' -> cuda when available, else cpu. Asking for cuda without one is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise AgentError(
            "learner.device is 'cuda' but torch sees no CUDA GPU; use 'auto' or 'cpu'."
        )
    return torch.device(name)


def use_mixed_precision(setting: str, device: torch.device) -> bool:
    """'auto': bfloat16 where the hardware computes it natively (CUDA, or a CPU with
    AVX512-BF16/AMX); elsewhere bf16 is emulated and slower than float32."""
    if setting == "auto":
        if device.type == "cuda":
            return True
        return device.type == "cpu" and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return setting == "on"


class CenteredRMSprop(torch.optim.Optimizer):
    """Centered RMSProp as DQN used it (Mnih et al. 2015; Graves 2013, eq. 38-40), eps inside the
    root: p -= lr * g / sqrt(E[g^2] - E[g]^2 + eps). torch's `RMSprop(centered=True)` adds eps
    after the root, and its E[g^2] - E[g]^2 rounds below zero (a NaN) when gradients repeat."""

    def __init__(self, params: Any, lr: float, alpha: float, eps: float, momentum: float = 0.0):
        super().__init__(params, {"lr": lr, "alpha": alpha, "eps": eps, "momentum": momentum})

    @torch.no_grad()
    def step(self, closure: Any = None) -> None:
        for group in self.param_groups:
            alpha, lr, momentum = group["alpha"], group["lr"], group["momentum"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["square_avg"] = torch.zeros_like(p)
                    state["grad_avg"] = torch.zeros_like(p)
                    state["momentum_buffer"] = torch.zeros_like(p)
                g = p.grad
                square_avg, grad_avg = state["square_avg"], state["grad_avg"]
                square_avg.mul_(alpha).addcmul_(g, g, value=1 - alpha)
                grad_avg.mul_(alpha).add_(g, alpha=1 - alpha)
                variance = square_avg.addcmul(grad_avg, grad_avg, value=-1).clamp_min_(0.0)
                denom = variance.add_(group["eps"]).sqrt_()
                if momentum:
                    buf = state["momentum_buffer"]
                    buf.mul_(momentum).addcdiv_(g, denom)
                    p.add_(buf, alpha=-lr)
                else:
                    p.addcdiv_(g, denom, value=-lr)


def use_cuda_graphs(cfg: Any, device: torch.device, agent: Agent) -> bool:
    """learner.cuda_graphs: 'auto' captures the update as CUDA graphs where it can, 'on' insists
    (an AgentError says why it can't), 'off' never."""
    setting = getattr(cfg, "cuda_graphs", "off")
    if setting == "off":
        return False
    reasons = []
    if device.type != "cuda":
        reasons.append(f"the learner runs on {device.type}")
    if not agent.graphable:
        reasons.append(f"agent '{agent.cfg.name}' has no graph-safe loss (the NTM and LSTM do)")
    if cfg.optimizer != "adam" or getattr(cfg, "lr_schedule", "constant") != "constant":
        reasons.append("it needs learner.optimizer adam with a constant lr")
    if getattr(cfg, "grad_clip_mode", "norm") != "norm":
        reasons.append("it clips by a fixed norm only (learner.grad_clip_mode: norm)")
    if setting == "on" and reasons:
        raise AgentError(
            f"learner.cuda_graphs is 'on' but {'; '.join(reasons)}; use 'auto' or 'off'."
        )
    return not reasons


def make_optimizer(params: Any, cfg: Any, capturable: bool = False) -> torch.optim.Optimizer:
    if cfg.optimizer == "adam":
        adam = dict(
            lr=cfg.lr,
            betas=(0.9, getattr(cfg, "beta2", 0.999)),
            eps=cfg.eps,
            weight_decay=cfg.weight_decay,
            amsgrad=getattr(cfg, "amsgrad", False),
        )
        if capturable:  # its step counts live on the GPU
            return torch.optim.Adam(params, **adam, foreach=True, capturable=True)
        # the fused kernel: 16% faster DQN updates on CPU than the per-tensor loop
        return torch.optim.Adam(params, **adam, fused=True)
    if cfg.optimizer == "rmsprop" and getattr(cfg, "centered", False):
        if cfg.weight_decay:
            raise AgentError("learner.centered RMSProp takes no weight_decay; set it to 0.")
        return CenteredRMSprop(params, cfg.lr, cfg.alpha, cfg.eps, cfg.momentum)
    if cfg.optimizer == "rmsprop":
        return torch.optim.RMSprop(
            params,
            lr=cfg.lr,
            alpha=cfg.alpha,
            eps=cfg.eps,
            momentum=cfg.momentum,
            weight_decay=cfg.weight_decay,
        )
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def scheduled_lr(cfg: Any, updates: int, epochs: int | None = None) -> float:
    """The learning rate for update number `updates` + 1, made in epoch `epochs` + 1 (the
    epochs completed before it), for the schedules that are a function of these counters
    (every learner.lr_schedule but 'plateau', which follows evaluations: PlateauSchedule)."""
    schedule = getattr(cfg, "lr_schedule", "constant")
    if schedule in ("constant", "plateau", "solved"):
        return cfg.lr
    if schedule == "piecewise":
        counter = updates if cfg.lr_milestone_unit == "updates" else epochs
        if counter is None:
            raise AgentError(
                "'learner.lr_milestone_unit: epochs' needs the epoch count, which this run's "
                "data source does not report (RL and generated data count updates); use "
                "'learner.lr_milestone_unit: updates'."
            )
        passed = bisect.bisect_right(list(cfg.lr_milestones), counter)
        return max(cfg.lr * cfg.lr_decay_factor**passed, cfg.lr_min)
    progress = min(updates / cfg.lr_decay_updates, 1.0)
    fraction = 0.5 * (1.0 + math.cos(math.pi * progress)) if schedule == "cosine" else 1 - progress
    return cfg.lr * (cfg.lr_end_ratio + (1.0 - cfg.lr_end_ratio) * fraction)


class PlateauSchedule:
    """Step-on-plateau (learner.lr_schedule: plateau): after `lr_patience` evaluations in a row
    without a new best figure, lr is multiplied by `lr_decay_factor`, down to `lr_min`.
    `solved` multiplies it at every evaluation scoring at least `lr_solved_score` instead.

    Its state (best figure, evaluations since it, drops so far) is a few numbers saved with the
    learner, so a resumed run continues where it stopped."""

    def __init__(self, cfg: Any):
        self.cfg = cfg
        self.best: float | None = None
        self.higher_is_better: bool | None = None
        self.bad = 0  # evaluations since the best one
        self.drops = 0

    @property
    def lr(self) -> float:
        return max(self.cfg.lr * self.cfg.lr_decay_factor**self.drops, self.cfg.lr_min)

    def step(self, value: float, higher_is_better: bool = True) -> float:
        """Take one evaluation's figure; return the lr from now on. A NaN never improves."""
        if self.higher_is_better is None:
            self.higher_is_better = higher_is_better
        elif self.higher_is_better != higher_is_better:
            raise AgentError(
                "Learner.on_evaluation was called with higher_is_better="
                f"{higher_is_better} after {self.higher_is_better}: one plateau schedule "
                "follows one figure"
            )
        value = float(value)
        sign = 1.0 if higher_is_better else -1.0
        if self.cfg.lr_schedule == "solved":  # every evaluation at the score drops lr once
            solved = not math.isnan(value) and sign * (value - self.cfg.lr_solved_score) >= 0
            if solved and self.lr > self.cfg.lr_min:
                self.drops += 1
            return self.lr
        improved = not math.isnan(value) and (self.best is None or sign * (value - self.best) > 0)
        if improved:
            self.best, self.bad = value, 0
            return self.lr
        self.bad += 1
        if self.bad >= self.cfg.lr_patience:
            self.bad = 0
            if self.lr > self.cfg.lr_min:  # at the floor further drops change nothing
                self.drops += 1
        return self.lr

    def state_dict(self) -> dict[str, Any]:
        return {
            "best": self.best,
            "higher_is_better": self.higher_is_better,
            "bad": self.bad,
            "drops": self.drops,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = state["best"]
        self.higher_is_better = state["higher_is_better"]
        self.bad = int(state["bad"])
        self.drops = int(state["drops"])


def load_optimizer_state(optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    """Load optimiser state saved by a learner that may have run another implementation (fused on
    a CPU, capturable for CUDA graphs on a GPU): the moments and step counts carry over; this
    optimiser's hyperparameters (lr, betas, eps, ...: the config, with a resumed run's overrides)
    and implementation stay (torch would take the saved ones: an override on resume would be
    ignored, and a capturable Adam refuses CPU tensors, a fused one a CUDA graph). The tensors are
    copied: torch keeps those already on the right device, which would then be shared with the
    state's source."""
    groups = [
        {**saved, **{k: v for k, v in own.items() if k != "params"}}
        for saved, own in zip(state["param_groups"], optimizer.param_groups)
    ]
    optimizer.load_state_dict({"state": copy.deepcopy(state["state"]), "param_groups": groups})


def check_clipping(cfg: Any, agent: Agent) -> None:
    """AgentError when learner.grad_clip_mode is not 'norm' for an agent that clips its own
    gradients (Agent.clip_gradients overridden: MemN2N's per-table clipping)."""
    mode = getattr(cfg, "grad_clip_mode", "norm")
    own_clip = getattr(type(agent), "clip_gradients", Agent.clip_gradients)
    if mode != "norm" and own_clip is not Agent.clip_gradients:
        raise AgentError(
            f"agent '{agent.cfg.name}' clips its own gradients by norm; "
            f"'learner.grad_clip_mode: {mode}' is for agents that leave clipping to the "
            "learner (use learner.grad_clip_mode: norm)."
        )


def floats(metrics: dict[str, Any]) -> dict[str, float]:
    """Metrics as floats; the tensors among them are read with one device sync."""
    out = {k: float(v) for k, v in metrics.items() if not torch.is_tensor(v)}
    tensors = {k: v for k, v in metrics.items() if torch.is_tensor(v)}
    if tensors:
        values = torch.stack([v.detach().reshape(()).float() for v in tensors.values()]).tolist()
        out.update(zip(tensors, values))
    return out


class Learner:
    """Owns the agent on its device and its optimiser; `update(batch)` is one SGD step."""

    def __init__(self, agent: Agent, cfg: Any):
        problems = cfg.errors() if isinstance(cfg, LearnerConfig) else []
        if problems:
            raise AgentError(problems[0] + ".")
        check_clipping(cfg, agent)
        mode = getattr(cfg, "grad_clip_mode", "norm")
        self.clip_values = mode == "value" and cfg.grad_clip > 0
        # grad_clip_mode 'adaptive': the running average of the clipped gradient norms
        self.adaptive_clip = mode == "adaptive"
        self.norm_average: float | None = None
        self.cfg = cfg
        self.device = resolve_device(cfg.device)
        self.agent = agent.to(self.device)
        graphs = use_cuda_graphs(cfg, self.device, agent)
        params = [p for p in agent.parameters() if p.requires_grad]
        self.optimizer = make_optimizer(params, cfg, capturable=graphs)
        self.graphed = GraphedUpdate(agent, self.optimizer, cfg.grad_clip, True) if graphs else None
        self.updates = 0
        self.epochs: int | None = None  # completed epochs, where the trainer counts them
        schedule = getattr(cfg, "lr_schedule", "constant")
        self.lr_scheduled = schedule != "constant"
        self.plateau = PlateauSchedule(cfg) if schedule in ("plateau", "solved") else None
        # bf16 convolutions (no loss scaling needed) in modules that offer it (the Nature CNN)
        self.mixed_precision = use_mixed_precision(
            getattr(cfg, "mixed_precision", "off"), self.device
        )
        for module in agent.modules():
            if hasattr(module, "set_mixed_precision"):
                module.set_mixed_precision(self.mixed_precision)

    def to_tensors(self, batch: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
        # arrays from Ray's object store are read-only; torch wants writable memory
        pin = self.device.type == "cuda"
        out = {}
        for k, v in batch.items():
            t = torch.as_tensor(v if v.flags.writeable else v.copy())
            # pinned host memory lets the copy to the GPU run asynchronously
            out[k] = (t.pin_memory() if pin else t).to(self.device, non_blocking=pin)
        return out

    def update(self, batch: dict[str, np.ndarray]) -> dict[str, float]:
        tensors = self.to_tensors(batch)
        if self.graphed is not None and self.graphed.ready(tensors):
            loss, metrics, grad_norm, finite = self.graphed.update(tensors)
            figures = floats({**metrics, "grad_norm": grad_norm, "finite": finite, "loss": loss})
            if not figures.pop("finite"):  # the graph put the weights and optimiser state back
                self._non_finite(figures["loss"], figures["grad_norm"])
            if self.cfg.grad_clip <= 0:
                del figures["grad_norm"]
        else:
            figures = self._ordinary_update(tensors)
            if self.graphed is not None:  # this shape's graph, replayed from its next batch on
                self.graphed.prepare(tensors)
        self.updates += 1
        self.agent.on_update(self.updates)
        return figures

    def _ordinary_update(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        loss, metrics = self.agent.loss(batch)
        if not torch.isfinite(loss):
            self._non_finite(float(loss.detach()), 0.0)
        # gradients stay where a CUDA graph of the update reads them
        self.optimizer.zero_grad(set_to_none=self.graphed is None)
        loss.backward()
        # an agent's own clipping (Agent.clip_gradients), else None: the learner's global clip
        own_clip = getattr(self.agent, "clip_gradients", None)
        grad_norm = own_clip(self.cfg.grad_clip) if own_clip is not None else None
        if grad_norm is None and (self.cfg.grad_clip > 0 or self.adaptive_clip):
            # without clipping the norm is not computed (4% of a DQN update)
            params = [
                p for g in self.optimizer.param_groups for p in g["params"] if p.grad is not None
            ]
            if self.adaptive_clip:
                grad_norm, metrics["grad_norm_limit"] = self._clip_adaptive(params)
            elif self.clip_values:  # the norm before clamping, as 'norm' reports it
                grad_norm = torch.nn.utils.get_total_norm([p.grad for p in params])
                torch.nn.utils.clip_grad_value_(params, self.cfg.grad_clip)
            else:
                grad_norm = torch.nn.utils.clip_grad_norm_(params, self.cfg.grad_clip)
        if grad_norm is not None:
            if not torch.isfinite(grad_norm):
                self._non_finite(float(loss.detach()), float(grad_norm))
            metrics["grad_norm"] = grad_norm
        if self.lr_scheduled:
            metrics["lr"] = self.lr
            for group in self.optimizer.param_groups:
                group["lr"] = metrics["lr"]
        self.optimizer.step()
        metrics["loss"] = loss.detach()
        return floats(metrics)

    def _clip_adaptive(self, params: list[torch.Tensor]) -> tuple[torch.Tensor, float]:
        """Clip the gradient's norm at grad_clip (0: no fixed limit) and at grad_clip_ratio x the
        running average of the norms after clipping; the first update sets the average.
        Returns the norm before clipping and the limit applied."""
        cfg = self.cfg
        limit = cfg.grad_clip if cfg.grad_clip > 0 else math.inf
        if self.norm_average is not None:
            limit = min(limit, cfg.grad_clip_ratio * self.norm_average)
        norm = torch.nn.utils.clip_grad_norm_(params, limit)
        clipped = min(float(norm), limit)
        if math.isfinite(clipped):  # a non-finite norm stops the update (the caller raises)
            decay = cfg.grad_clip_decay
            self.norm_average = (
                clipped
                if self.norm_average is None
                else decay * self.norm_average + (1 - decay) * clipped
            )
        return norm, limit

    @property
    def lr(self) -> float:
        """The learning rate of the next update."""
        if self.plateau is not None:
            return self.plateau.lr
        return scheduled_lr(self.cfg, self.updates, self.epochs)

    def set_progress(self, epochs: int) -> None:
        """The trainer's count of completed epochs (data sources with epochs), which
        `learner.lr_milestone_unit: epochs` reads; call it before each update."""
        if isinstance(epochs, bool) or not isinstance(epochs, int | np.integer) or epochs < 0:
            raise AgentError(f"Learner.set_progress: epochs must be an int >= 0, got {epochs!r}")
        self.epochs = int(epochs)

    def on_evaluation(self, value: float, higher_is_better: bool = True) -> float:
        """One evaluation's figure (a mean return, an accuracy: higher_is_better; an error
        rate: not), which `learner.lr_schedule: plateau` and `solved` follow; other schedules
        ignore it.
        Returns the lr of the next update."""
        if self.plateau is not None:
            self.plateau.step(value, higher_is_better)
        return self.lr

    def _non_finite(self, loss: float, grad_norm: float) -> None:
        what = (
            f"the loss is {loss}"
            if not math.isfinite(loss)
            else f"the gradient norm is {grad_norm}"
        )
        raise NonFiniteLossError(
            f"{what} at update {self.updates + 1}; no update was applied (try a lower "
            "learner.lr or a smaller learner.grad_clip)."
        )

    def state_dict(self) -> dict[str, Any]:
        return {
            "agent": self.agent.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "updates": self.updates,
            "schedule": {
                "epochs": self.epochs,
                "plateau": None if self.plateau is None else self.plateau.state_dict(),
            },
            "grad_norm_average": self.norm_average,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.agent.load_state_dict(state["agent"])
        load_optimizer_state(self.optimizer, state["optimizer"])  # new tensors: graphs go stale
        if self.graphed is not None:
            self.graphed.reset()
        self.updates = int(state["updates"])
        # a checkpoint from before the schedules had state, or from another schedule: the
        # counters it has carry over, a plateau schedule without saved state starts afresh
        schedule = state.get("schedule") or {}
        if schedule.get("epochs") is not None:
            self.epochs = int(schedule["epochs"])
        if self.plateau is not None and schedule.get("plateau") is not None:
            self.plateau.load_state_dict(schedule["plateau"])
        # grad_clip_mode 'adaptive' (a checkpoint without it: the next update sets it afresh)
        self.norm_average = state.get("grad_norm_average")
