"""Learning to Execute: how fast a bare 2-layer LSTM learns n-digit addition alone, per optimiser.

A stand-alone loop (no Ray, no curriculum) over `LearnToExecute(task="addition")` batches of 100
fresh programs at exactly `length` digits, teacher forced, gradient norm clipped at 5; the
per-character accuracy on 500 fresh programs every 250 updates. Optimisers:
`adam` (PyTorch's default init, loss = mean over output characters), `sgd` (the reference
code's: init uniform +-0.08, loss summed over output characters / batch size) and `sgdmean`
(that init, the per-character mean loss memrl's learner uses).

    python benchmarks/l2e_optimizer_probe.py LENGTH UPDATES LR HIDDEN [adam|sgd|sgdmean] [SEED]

The figures in benchmarks/results/l2e_optimizer_probe.json were printed by this script
(2026-12-07, 2-core AMD EPYC, one torch thread, beside other training runs).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from envs.learn_to_execute import LearnToExecute  # noqa: E402

OPTIMISERS = ("adam", "sgd", "sgdmean")


def main() -> None:
    if len(sys.argv) < 5 or (len(sys.argv) > 5 and sys.argv[5] not in OPTIMISERS):
        sys.exit(__doc__)
    length, updates, lr, hidden = (
        int(sys.argv[1]),
        int(sys.argv[2]),
        float(sys.argv[3]),
        int(sys.argv[4]),
    )
    opt_name = sys.argv[5] if len(sys.argv) > 5 else "adam"
    seed = int(sys.argv[6]) if len(sys.argv) > 6 else 0
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    task = LearnToExecute(
        task="addition",
        length=length,
        nesting=0,
        target_length=length,
        target_nesting=0,
        strategy="baseline",
    )
    rng = np.random.default_rng(seed)
    n_in = task._generate(1, rng)[0].shape[-1]
    vocab = n_in - 1
    lstm, out = nn.LSTM(n_in, hidden, 2), nn.Linear(hidden, vocab)
    model = nn.ModuleList([lstm, out])
    if opt_name == "adam":
        opt: torch.optim.Optimizer = torch.optim.Adam(model.parameters(), lr)
    else:
        for p in model.parameters():
            nn.init.uniform_(p, -0.08, 0.08)
        opt = torch.optim.SGD(model.parameters(), lr)

    def batch(size: int = 100) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x, y, mask, _ = task._generate(size, rng)
        return torch.tensor(x), torch.tensor(y), torch.tensor(mask)

    start = time.time()
    for u in range(1, updates + 1):
        x, y, mask = batch()
        logits = out(lstm(x)[0])
        nll = nn.functional.cross_entropy(
            logits.reshape(-1, vocab), y.reshape(-1), reduction="none"
        )
        total = (nll * mask.reshape(-1)).sum()
        loss = total / (mask.shape[1] if opt_name == "sgd" else mask.sum())
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        if u % 250 == 0:
            with torch.no_grad():
                x, y, mask = batch(500)
                right = (out(lstm(x)[0]).argmax(-1) == y).float() * mask
                acc = (right.sum() / mask.sum()).item()
            print(
                f"L={length} upd {u} loss {loss.item():.3f} char acc {acc:.3f} "
                f"t {time.time() - start:.0f}s",
                flush=True,
            )


if __name__ == "__main__":
    main()
