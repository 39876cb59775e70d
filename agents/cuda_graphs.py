"""The whole learner update (forward, backward, clipping, optimiser step) as one CUDA graph.

A recurrent core such as the NTM makes an update of many small kernels, one set per time step: on
a GPU at the batch sizes it trains with, launching them costs far more than running them (an NTM
copy update at batch 8 took 77 ms on an H200 launched one by one, 8.7 ms replayed as one graph:
`throughput_gpu` in benchmarks/results/ntm.json).
Capturing the update once and replaying it removes that cost.

One graph per batch shape (sequences of another length are another shape), all sharing one
memory pool: only one graph runs at a time and its outputs are read before the next one runs.
The first batch of each shape is an ordinary update, which also compiles the NTM's step and
creates the optimiser's state; the graph is captured right after it and replayed from the next
batch of that shape on. The non-finite guard stays exact: the graph keeps copies of the weights
and the optimiser's state and puts them back when the loss or the gradient norm is not finite.

With `capture=False` the same update runs without a graph (on any device): the tests compare it
with the learner's ordinary update on the CPU, and the graph with it on a GPU.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from agents.base import error_summary

log = logging.getLogger(__name__)


class GraphedUpdate:
    def __init__(
        self, agent: Any, optimizer: torch.optim.Optimizer, grad_clip: float, capture: bool
    ):
        self.agent = agent
        self.optimizer = optimizer
        self.grad_clip = grad_clip
        self.capture = capture
        self.failed = False  # a capture failed: the learner goes on with ordinary updates
        self.reset()

    def reset(self) -> None:
        """Forget every graph (after the optimiser's state tensors were replaced, say)."""
        self.graphs: dict[tuple, tuple[Any, dict[str, torch.Tensor], tuple]] = {}
        self.grads: list[torch.Tensor] = []
        self.pool = torch.cuda.graph_pool_handle() if self.capture else None

    @staticmethod
    def key(batch: dict[str, torch.Tensor]) -> tuple:
        return tuple(sorted((k, tuple(v.shape), v.dtype) for k, v in batch.items()))

    def ready(self, batch: dict[str, torch.Tensor]) -> bool:
        """Whether this batch's shape has a graph (else the caller makes an ordinary update and
        then calls `prepare`)."""
        return not self.failed and self.key(batch) in self.graphs

    def prepare(self, batch: dict[str, torch.Tensor]) -> None:
        """Capture the graph for this batch's shape (after an ordinary update of that shape)."""
        if self.failed or self.key(batch) in self.graphs:
            return
        static = {k: v.clone() for k, v in batch.items()}
        params = self._params()
        for p in params:  # gradients at fixed addresses, outside the graph's pool
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        if not self.capture:
            self.graphs[self.key(batch)] = (None, static, ())
            return
        # the graph writes these gradients: keep them alive whatever later sets p.grad to
        self.grads = [p.grad for p in params]
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph, pool=self.pool):
                outputs = self._body(static, params)
        except Exception as error:  # e.g. an op that syncs with the host, which a graph can't hold
            self.failed = True
            log.warning(
                "the learner could not capture its update as a CUDA graph (%s); it goes on "
                "with ordinary updates. learner.cuda_graphs=off skips the attempt.",
                error_summary(error),
            )
            return
        self.graphs[self.key(batch)] = (graph, static, outputs)

    def update(
        self, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict, torch.Tensor, torch.Tensor]:
        """One update: (loss, metrics, grad norm, finite) as device tensors; the weights and the
        optimiser's state are untouched unless `finite`."""
        graph, static, outputs = self.graphs[self.key(batch)]
        for k, v in batch.items():
            static[k].copy_(v, non_blocking=True)
        if graph is None:
            return self._body(static, self._params())
        graph.replay()
        return outputs

    def _params(self) -> list[torch.Tensor]:
        return [p for g in self.optimizer.param_groups for p in g["params"]]

    def _body(
        self, batch: dict[str, torch.Tensor], params: list[torch.Tensor]
    ) -> tuple[torch.Tensor, dict, torch.Tensor, torch.Tensor]:
        for p in params:
            p.grad.zero_()
        loss, metrics = self.agent.loss(batch)
        loss.backward()
        if self.grad_clip > 0:
            norm = torch.nn.utils.clip_grad_norm_(params, self.grad_clip)
            finite = torch.isfinite(loss) & torch.isfinite(norm)
        else:
            norm = torch.zeros((), device=loss.device)
            finite = torch.isfinite(loss)
        state = [t for p in params for t in self.optimizer.state[p].values() if torch.is_tensor(t)]
        with torch.no_grad():
            kept = [t.clone() for t in params + state]
        self.optimizer.step()
        with torch.no_grad():
            for t, old in zip(params + state, kept):
                t.copy_(torch.where(finite, t, old))
        return loss.detach(), metrics, norm, finite
