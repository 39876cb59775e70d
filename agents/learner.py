"""The generic learner: device, optimiser, gradient clipping and a NaN/inf guard; on a GPU, the
whole update as a CUDA graph for agents whose loss allows it (agents/cuda_graphs.py).

Nothing here is agent-specific: it calls `agent.loss(batch)` and `agent.on_update(step)`
(DESIGN.md, style rule 2), and reads the agent's `graphable` flag.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import torch

from agents.base import Agent, AgentError
from agents.cuda_graphs import GraphedUpdate


class NonFiniteLossError(RuntimeError):
    """The loss or the gradient norm became NaN/inf; the update was not applied."""


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
    if setting == "on" and reasons:
        raise AgentError(
            f"learner.cuda_graphs is 'on' but {'; '.join(reasons)}; use 'auto' or 'off'."
        )
    return not reasons


def make_optimizer(params: Any, cfg: Any, capturable: bool = False) -> torch.optim.Optimizer:
    betas = (0.9, getattr(cfg, "beta2", 0.999))
    if cfg.optimizer == "adam" and capturable:  # its step counts live on the GPU
        return torch.optim.Adam(
            params,
            lr=cfg.lr,
            betas=betas,
            eps=cfg.eps,
            weight_decay=cfg.weight_decay,
            foreach=True,
            capturable=True,
        )
    if cfg.optimizer == "adam":
        # the fused kernel: 16% faster DQN updates on CPU than the per-tensor loop
        return torch.optim.Adam(
            params, lr=cfg.lr, betas=betas, eps=cfg.eps, weight_decay=cfg.weight_decay, fused=True
        )
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


def scheduled_lr(cfg: Any, updates: int) -> float:
    """The learning rate for update number `updates` + 1 (learner.lr_schedule)."""
    schedule = getattr(cfg, "lr_schedule", "constant")
    if schedule == "constant":
        return cfg.lr
    progress = min(updates / cfg.lr_decay_updates, 1.0)
    fraction = 0.5 * (1.0 + math.cos(math.pi * progress)) if schedule == "cosine" else 1 - progress
    return cfg.lr * (cfg.lr_end_ratio + (1.0 - cfg.lr_end_ratio) * fraction)


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
        self.cfg = cfg
        self.device = resolve_device(cfg.device)
        self.agent = agent.to(self.device)
        graphs = use_cuda_graphs(cfg, self.device, agent)
        params = [p for p in agent.parameters() if p.requires_grad]
        self.optimizer = make_optimizer(params, cfg, capturable=graphs)
        self.graphed = GraphedUpdate(agent, self.optimizer, cfg.grad_clip, True) if graphs else None
        self.updates = 0
        self.lr_scheduled = getattr(cfg, "lr_schedule", "constant") != "constant"
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
        if self.cfg.grad_clip > 0:  # without clipping the norm is not computed (4% of a DQN update)
            params = [
                p for g in self.optimizer.param_groups for p in g["params"] if p.grad is not None
            ]
            grad_norm = torch.nn.utils.clip_grad_norm_(params, self.cfg.grad_clip)
            if not torch.isfinite(grad_norm):
                self._non_finite(float(loss.detach()), float(grad_norm))
            metrics["grad_norm"] = grad_norm
        if self.lr_scheduled:
            metrics["lr"] = scheduled_lr(self.cfg, self.updates)
            for group in self.optimizer.param_groups:
                group["lr"] = metrics["lr"]
        self.optimizer.step()
        metrics["loss"] = loss.detach()
        return floats(metrics)

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
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.agent.load_state_dict(state["agent"])
        load_optimizer_state(self.optimizer, state["optimizer"])  # new tensors: graphs go stale
        if self.graphed is not None:
            self.graphed.reset()
        self.updates = int(state["updates"])
