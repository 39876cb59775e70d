"""Neural Turing Machine (Graves, Wayne & Danihelka 2014), as made to train reliably by
Collier & Beel 2018 ("Implementing Neural Turing Machines"): constant memory initialisation
(1e-6), learned initial read vectors, tanh-bounded add vectors. Their other choices are options
(`clip` on the head parameters, `key_activation`, `init_weights`, `forget_bias`).

The addressing pipeline (content -> interpolation -> convolutional shift -> sharpening), reads
and erase/add writes are pure functions over batched tensors, unit-tested on hand-computed values
(tests/test_ntm.py). The state is explicit: (controller h, c, memory, read weights, write weights,
read vectors), batch first; the model never keeps a previous state of its own.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import gymnasium as gym
import torch
from torch import nn
from torch._functorch import config as functorch_config

from agents.base import AgentError, error_summary
from agents.sequence import RecurrentCore, SequenceAgent, State, StepFn

log = logging.getLogger(__name__)


def content_weights(key: torch.Tensor, beta: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
    """softmax_i(beta * cosine(key, memory[i])). key [B,H,M], beta [B,H,1], memory [B,N,M] -> [B,H,N]."""
    dot = key @ memory.transpose(1, 2)
    norms = key.norm(dim=-1, keepdim=True) * memory.norm(dim=-1).unsqueeze(1)
    return torch.softmax(beta * dot / (norms + 1e-8), dim=-1)


def key_strength(x: torch.Tensor, bound: float = 0.0) -> torch.Tensor:
    """beta = softplus(x), or with `bound` > 0 bound * tanh(softplus(x) / bound): within 4% of
    softplus up to bound / 3, never above the bound, and its gradient never zero."""
    beta = nn.functional.softplus(x)
    return beta if bound <= 0 else bound * torch.tanh(beta / bound)


def interpolate(w_content: torch.Tensor, w_prev: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
    return gate * w_content + (1.0 - gate) * w_prev


def shift(w: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """Circular convolution: out[i] = sum_k s[k] * w[i - offset_k], offsets -R..R. s [B,H,2R+1].

    One product over circular windows instead of 2R+1 rolls: windows[i, j] = w[i + j - R], and
    offset k - R needs w[i - (k - R)] = windows[i, 2R - k], so the weights go in reversed."""
    radius = (s.shape[-1] - 1) // 2
    if radius == 0:
        return w * s
    padded = torch.cat([w[..., -radius:], w, w[..., :radius]], dim=-1)
    windows = padded.unfold(-1, 2 * radius + 1, 1)  # [B,H,N,2R+1]: windows[i, j] = w[i + j - R]
    return (windows @ s.flip(-1).unsqueeze(-1)).squeeze(-1)


def sharpen(w: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    """w^gamma / sum(w^gamma), computed as softmax(gamma * log w). The direct form underflows in
    float32 once a weighting is spread and gamma is large (uniform over 128 rows: the gradient
    is inf at gamma 20, the output 0/0 = NaN from gamma ~30); gamma = 1 + softplus is unbounded
    and grows after convergence, since sharper addressing always lowers the copy loss."""
    return torch.softmax(gamma * torch.log(w + 1e-12), dim=-1)


def read(memory: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """[B,N,M], [B,H,N] -> [B,H,M]."""
    return w @ memory


def write(
    memory: torch.Tensor, w: torch.Tensor, erase: torch.Tensor, add: torch.Tensor
) -> torch.Tensor:
    """Erase then add, head after head. w [B,H,N], erase/add [B,H,M] (erase in [0,1])."""
    for h in range(w.shape[1]):
        wh = w[:, h].unsqueeze(-1)  # [B,N,1]
        memory = memory * (1.0 - wh * erase[:, h].unsqueeze(1)) + wh * add[:, h].unsqueeze(1)
    return memory


@dataclass
class Config:
    """Neural Turing Machine, Graves et al. 2014; implementation choices of Collier & Beel 2018.

    Paper optimiser: RMSProp lr 1e-4, momentum 0.9 (configs/ntm_copy_paper.yaml); the default
    configs use Adam 1e-3 with batch 8 on copy (16 on associative recall), which converges faster
    and more reliably here.
    """

    name: str = "ntm"
    controller: Literal["lstm", "feedforward"] = "lstm"
    controller_size: int = 100
    # stacked LSTM layers of controller_size each (the paper's priority-sort LSTM controller is
    # 2 x 100, Table 2); the heads and the output read the top layer
    controller_layers: int = 1
    memory_n: int = 128
    memory_m: int = 20
    read_heads: int = 1
    write_heads: int = 1
    shift_radius: int = 1
    # Collier & Beel's choices beyond the defaults: head parameters clipped to [-20, 20] (0 = off;
    # the LSTM's own output is already in [-1, 1]), keys through tanh, learned initial head
    # weightings (softmax of a learned vector) instead of every head on slot 0, forget bias 1
    clip: float = 0.0
    key_activation: Literal["none", "tanh"] = "none"
    init_weights: Literal["first_slot", "learned"] = "first_slot"
    forget_bias: float = 0.0
    # the key strength beta = softplus(.) is unbounded in the paper; > 0 bounds it smoothly,
    # beta = max * tanh(softplus(.) / max) (about softplus below max). On dynamic n-grams a run
    # whose beta had grown to ~20 (healthy runs: <= 11) diverged: sharp content addressing over
    # 200 steps made the gradient explode; capping beta at 10 on those weights cut the median
    # gradient norm from 362 to 16; trained at 10 (seed 1, 200k) it ended 2.97 bits above the
    # optimal cost against 2.13 unbounded (docs/ntm_tasks.md "Seed 1 at 400k diverged")
    key_strength_max: float = 0.0
    # the LSTM controller's state before the first input: zeros, or learned (h0, c0) as in
    # pytorch-ntm, so the first steps need not be special
    controller_init: Literal["zeros", "learned"] = "zeros"
    # the memory before the first input: every cell 1e-6 (Collier & Beel's constant scheme), or
    # a learned N x M matrix shared by all sequences (their "learned" scheme). On constant memory
    # every row looks alike, so content addressing cannot pick a row until something is written
    # there, and the location shifts move a head one row a step: a write cannot land on a row
    # chosen by the current input (priority sort's, Figure 17 of the paper). Learned rows differ,
    # so a key computed from the input can address one of them.
    memory_init: Literal["constant", "learned"] = "constant"
    # within a step: read the previous memory then write (pytorch-ntm's order), or write first and
    # read this step's memory. On copy, write_first left seed 3 at ~1 wrong bit/sequence (the first
    # two outputs); read_first reached 0.1 bits/sequence after 16k sequences and copied length 100.
    order: Literal["write_first", "read_first"] = "read_first"
    batch_size: int = 16  # sequences per training batch
    # training runs the step through torch.compile (fused kernels): ~3x faster updates at batch
    # 8 on the CPU (benchmarks/ntm.py --throughput-only). The first update compiles (~40 s on 2
    # cores, seconds once torch's cache in /tmp holds it); evaluation and acting stay eager. If
    # the compiler fails (no C++ compiler, say), training warns and runs eager.
    compile: bool = True

    def validate(self) -> None:
        for key in (
            "controller_size",
            "controller_layers",
            "memory_n",
            "memory_m",
            "read_heads",
            "write_heads",
            "batch_size",
        ):
            if getattr(self, key) < 1:
                raise ValueError(f"{key} must be >= 1, got {getattr(self, key)}")
        if self.controller_layers > 1 and self.controller != "lstm":
            raise ValueError(
                "controller_layers > 1 stacks LSTM layers; the feed-forward controller is one "
                "layer (use controller: lstm, or controller_layers: 1)"
            )
        if self.memory_init not in ("constant", "learned"):
            raise ValueError(
                f"memory_init must be 'constant' or 'learned', got {self.memory_init!r}"
            )
        if self.controller_init == "learned" and self.controller != "lstm":
            raise ValueError(
                "controller_init: learned is the LSTM controller's initial state; the "
                f"'{self.controller}' controller has none (use controller_init: zeros)"
            )
        if self.clip < 0:
            raise ValueError(f"clip must be >= 0 (0 = off), got {self.clip}")
        if self.key_strength_max < 0:
            raise ValueError(
                f"key_strength_max must be >= 0 (0 = unbounded), got {self.key_strength_max}"
            )
        if not 0 <= self.shift_radius < self.memory_n // 2:
            raise ValueError(f"shift_radius must be in [0, memory_n/2), got {self.shift_radius}")


class NTMCore(RecurrentCore):
    def __init__(self, cfg: Config, input_size: int, output_size: int):
        super().__init__()
        self.cfg = cfg
        m, r, w, c = cfg.memory_m, cfg.read_heads, cfg.write_heads, cfg.controller_size
        self.shifts = 2 * cfg.shift_radius + 1
        in_size = input_size + r * m
        if cfg.controller == "lstm":
            self.controller: nn.Module = nn.LSTMCell(in_size, c)
            with torch.no_grad():  # gate order i, f, g, o; the bias is b_ih + b_hh
                self.controller.bias_ih[c : 2 * c] += cfg.forget_bias
            # layers 2.. beside the first (which keeps its name, so one-layer checkpoints load)
            self.upper = nn.ModuleList(nn.LSTMCell(c, c) for _ in range(cfg.controller_layers - 1))
            with torch.no_grad():
                for cell in self.upper:
                    cell.bias_ih[c : 2 * c] += cfg.forget_bias
            if cfg.controller_init == "learned":
                self.h0 = nn.Parameter(torch.randn(c * cfg.controller_layers) * 0.05)
                self.c0 = nn.Parameter(torch.randn(c * cfg.controller_layers) * 0.05)
        else:
            self.controller = nn.Sequential(nn.Linear(in_size, c), nn.Tanh())
        # per head: key (m), beta, gate, shift weights, gamma; write heads add erase (m) and add (m)
        self.address_size = m + 3 + self.shifts
        self.heads = nn.Linear(c, (r + w) * self.address_size + w * 2 * m)
        self.output = nn.Linear(c + r * m, output_size)
        self.read_init = nn.Parameter(torch.randn(r, m) * 0.01)
        if cfg.memory_init == "learned":  # rows differ from the start (cosine addressing)
            self.memory0 = nn.Parameter(torch.randn(cfg.memory_n, m) * 0.1)
        if cfg.init_weights == "learned":  # logits; softmax gives each head's initial weighting
            self.weight_init = nn.Parameter(torch.randn(r + w, cfg.memory_n) * 0.01)

    def initial_state(self, batch_size: int) -> State:
        cfg = self.cfg
        device = self.read_init.device
        # every LSTM layer's (h, c), side by side: [B, layers * controller_size]
        zeros = torch.zeros(batch_size, cfg.controller_size * cfg.controller_layers, device=device)
        h, c = zeros, zeros
        if cfg.controller == "lstm" and cfg.controller_init == "learned":
            h, c = self.h0.expand(batch_size, -1), self.c0.expand(batch_size, -1)
        if cfg.memory_init == "learned":
            memory = self.memory0.unsqueeze(0).expand(batch_size, -1, -1)
        else:
            memory = torch.full((batch_size, cfg.memory_n, cfg.memory_m), 1e-6, device=device)

        reads = self.read_init.unsqueeze(0).expand(batch_size, -1, -1)
        if cfg.init_weights == "learned":
            w0 = torch.softmax(self.weight_init, dim=-1).unsqueeze(0).expand(batch_size, -1, -1)
        else:  # every head starts attending to slot 0
            w0 = torch.zeros(
                batch_size, cfg.read_heads + cfg.write_heads, cfg.memory_n, device=device
            )
            w0[..., 0] = 1.0
        r = cfg.read_heads
        return h, c, memory, w0[:, :r], w0[:, r:], reads

    def _address(self, p: torch.Tensor, w_prev: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        m = self.cfg.memory_m
        key = torch.tanh(p[..., :m]) if self.cfg.key_activation == "tanh" else p[..., :m]
        beta = key_strength(p[..., m : m + 1], self.cfg.key_strength_max)
        gate = torch.sigmoid(p[..., m + 1 : m + 2])
        s = torch.softmax(p[..., m + 2 : m + 2 + self.shifts], dim=-1)
        gamma = 1.0 + nn.functional.softplus(p[..., m + 2 + self.shifts :])
        w = interpolate(content_weights(key, beta, memory), w_prev, gate)
        return sharpen(shift(w, s), gamma)

    def forward(
        self, inputs: torch.Tensor, state: State | None = None, step: StepFn | None = None
    ) -> tuple[torch.Tensor, State]:
        """As RecurrentCore.forward; with gradients on (training) and `compile`, the steps after
        the first run the compiled `step`, falling back to eager for good if the compiler fails on
        the forward or the backward graph.
        The first step stays eager: its state (zeros) needs no gradient, so compiling it would
        cost a second graph (~25 s on 2 cores) for one step in ~40."""
        compiling = self.cfg.compile and torch.is_grad_enabled() and not _compiler_failed
        if step is not None or not compiling or len(inputs) < 2:
            return super().forward(inputs, state, step)
        state = self.initial_state(inputs.shape[1]) if state is None else state
        first, state = self.step(inputs[0], state)
        try:
            # the backward graph is compiled with the forward, not lazily at loss.backward() in
            # the Learner, so a compiler failure in either lands here (one patch per sequence)
            with _eager_backward_lowering():
                rest, state = super().forward(
                    inputs[1:], state, functools.partial(_compiled_step(), self)
                )
        except torch._dynamo.exc.BackendCompilerFailed as error:
            _give_up_compiling(error)
            rest, state = super().forward(inputs[1:], state)
        return torch.cat([first.unsqueeze(0), rest]), state

    def step(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        cfg = self.cfg
        h, c, memory, w_read, w_write, reads = state
        batch = x.shape[0]
        ctrl_in = torch.cat([x, reads.reshape(batch, -1)], dim=-1)
        if cfg.controller == "lstm":
            h, c = self._lstm(ctrl_in, h, c)
            top = h[:, -cfg.controller_size :]
        else:
            h = top = self.controller(ctrl_in)
        params = self.heads(top)
        if cfg.clip > 0:
            params = params.clamp(-cfg.clip, cfg.clip)
        r, w, m = cfg.read_heads, cfg.write_heads, cfg.memory_m
        address = params[:, : (r + w) * self.address_size].reshape(batch, r + w, self.address_size)
        erase_add = params[:, (r + w) * self.address_size :].reshape(batch, w, 2 * m)
        if cfg.order == "read_first":
            # read the previous memory, then write (pytorch-ntm's order): every head addresses the
            # same memory, so all heads go through the addressing pipeline at once
            weights = self._address(address, torch.cat([w_read, w_write], dim=1), memory)
            w_read, w_write = weights[:, :r], weights[:, r:]
            reads = read(memory, w_read)
        else:
            w_write = self._address(address[:, r:], w_write, memory)
        # tanh bounds the add vector (Collier & Beel): unbounded adds let memory, reads and the
        # controller saturate, and training then collapsed to chance (loss ln 2) after converging
        memory = write(
            memory, w_write, torch.sigmoid(erase_add[..., :m]), torch.tanh(erase_add[..., m:])
        )
        if cfg.order == "write_first":  # the read sees this step's write
            w_read = self._address(address[:, :r], w_read, memory)
            reads = read(memory, w_read)
        # No clamp on the logits: clamp has zero gradient outside its range, so a bit saturated
        # on the wrong side could never be corrected (seeds plateaued at ~1 wrong bit/sequence).
        logits = self.output(torch.cat([top, reads.reshape(batch, -1)], dim=-1))
        return logits, (h, c, memory, w_read, w_write, reads)

    def _lstm(
        self, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The stacked LSTM controller; h and c hold every layer's state side by side."""
        if not len(self.upper):
            return self.controller(x, (h, c))
        size = self.cfg.controller_size
        hs, cs = [], []
        for i, cell in enumerate([self.controller, *self.upper]):
            hi, ci = cell(x, (h[:, i * size : (i + 1) * size], c[:, i * size : (i + 1) * size]))
            hs.append(hi)
            cs.append(ci)
            x = hi
        return torch.cat(hs, dim=-1), torch.cat(cs, dim=-1)


_compiler_failed = False


def _eager_backward_lowering() -> contextlib.AbstractContextManager:
    """Lower the backward graph with the forward. The switch is torch's (2.13 has it); a torch
    without it (an older one, as on some GPU images) compiles the backward lazily instead."""
    if hasattr(functorch_config, "force_non_lazy_backward_lowering"):
        return functorch_config.patch(force_non_lazy_backward_lowering=True)
    return contextlib.nullcontext()


@functools.cache
def _compiled_step() -> Callable[..., tuple[torch.Tensor, State]]:
    """NTMCore.step through torch.compile, called as f(core, x, state). One per process: the
    graph depends on the config and the batch size, not on the core, so cores share it."""
    return torch.compile(NTMCore.step, dynamic=False)


def _give_up_compiling(error: Exception) -> None:
    global _compiler_failed
    _compiler_failed = True
    log.warning(
        "torch.compile failed (%s); the NTM trains eager from here, ~3x slower on the CPU. "
        "Set agent.compile=false to skip the attempt.",
        error_summary(getattr(error, "inner_exception", None) or error),
    )


class NTMAgent(SequenceAgent):
    def __init__(self, cfg: Config, observation_space: gym.Space, action_space: gym.Space):
        super().__init__(cfg, observation_space, action_space)
        self.core = NTMCore(cfg, self.input_size, self.output_size)

    def check_task(self, task: Any, env_id: str) -> None:
        super().check_task(task, env_id)
        needed = getattr(task, "memory_slots_needed", None)
        if needed is not None and needed > self.cfg.memory_n:
            raise AgentError(
                f"env '{env_id}' needs {needed} memory rows to hold its input, but "
                f"agent.memory_n is {self.cfg.memory_n}: raise agent.memory_n or shorten the task."
            )

    @torch.no_grad()
    def trace(self, inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        """Run [T, B, in] inputs and keep what the pictures show: logits and read/write weights."""
        state = self.core.initial_state(inputs.shape[1])
        logits, reads, writes = [], [], []
        for x in inputs:
            y, state = self.core.step(x, state)
            logits.append(y)
            reads.append(state[3])
            writes.append(state[4])
        return {
            "logits": torch.stack(logits),
            "read_weights": torch.stack(reads),
            "write_weights": torch.stack(writes),
        }
