"""Why REINFORCE does not solve tape reverse: the exact expected return of a *tabular* policy
over (symbol under the head, previous action) on memrl/TapeReverse-v0, and exact policy-gradient
ascent on it from random starts.

The feed-forward RL-NTM policy for reverse (configs/rl_ntm_reverse.yaml) sees only the symbol
under the head (0, 1 or the blank) and its previous action, so it is one of finitely many
tables pi(move, write, symbol | observation, previous action): 3 observations x 7 previous
actions (start; left/right x no write, wrote 0, wrote 1), or 3 x 5 with `previous_symbol: false`
(the written symbol left out). The env is deterministic given the input, so the expected return
over every input of the curriculum's lengths is a sum over the head position, the write
position and the previous action, propagated step by step (`expected_return`); it is
differentiable in the table's logits. Gradient ascent on it (Adam, with the same entropy bonus as
the agent, summed over the steps) is REINFORCE without sampling noise: if it stops short of the
reverse algorithm, more samples or a better baseline cannot help; the landscape itself has
local optima.

    python benchmarks/rl_ntm_landscape.py [--starts 0 1 2 3] [--lengths 1 2 3] [--iters 150]
        [--blind]   # also: move and write decisions that see only blank or not

Results: benchmarks/results/rl_ntm_landscape.json (each start's final expected return, its greedy
table's return on the training lengths and at length 6, and whether it is the reverse algorithm).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from envs.files import atomic_write_text  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "rl_ntm_landscape.json"
BASE = 2  # TapeReverse's alphabet; the observation `BASE` is the blank
PREVIOUS = 7  # start; (left, right) x (no write, wrote 0, wrote 1)
TIME_EXTRA = 4  # the clock: input length + target length + 4 steps
FACTORS = ("move", "write", "symbol")


def previous_index(move: int, write: int, symbol: int) -> int:
    return 1 + move * 3 + (0 if write == 0 else 1 + symbol)


def tie_symbol() -> torch.Tensor:
    """Row of the 3 x 5 table (`previous_symbol: false`) for each row of the full 3 x 7 table."""
    merged = [0, 1, 2, 2, 3, 4, 4]
    return torch.tensor([o * 5 + merged[p] for o in range(BASE + 1) for p in range(PREVIOUS)])


def expected_return(
    logits: dict[str, torch.Tensor], lengths: list[int], entropy_coef: float = 0.0
) -> torch.Tensor:
    """Mean over `lengths` (each length: the mean over all its inputs) of the expected episode
    return of the table `logits` ({factor: [3 * 7, 2]}), plus `entropy_coef` times the expected
    sum of the per-step entropies (the symbol's only on writing steps, as `write_gated_symbol`)."""
    log_p = {k: torch.log_softmax(v, -1) for k, v in logits.items()}
    p = {k: v.exp() for k, v in log_p.items()}
    h = {k: -(p[k] * log_p[k]).sum(-1) for k in FACTORS}
    entropy = h["move"] + h["write"] + p["write"][:, 1] * h["symbol"]
    total = torch.zeros(())
    for length in lengths:
        data = torch.tensor(list(itertools.product(range(BASE), repeat=length)))
        inputs = data.shape[0]
        limit = 2 * length + TIME_EXTRA
        origin = limit + 2  # head positions -origin .. length + origin
        width = length + 2 * origin + 1
        obs = torch.full((inputs, width), BASE, dtype=torch.long)
        obs[:, origin : origin + length] = data
        target = data.flip(1)
        rows = obs[:, :, None] * PREVIOUS + torch.arange(PREVIOUS)  # [N, H, P]
        pm, pw, ps, ent = p["move"][rows], p["write"][rows], p["symbol"][rows], entropy[rows]
        # probability of (input, head, write position, previous action) among running episodes
        mass = torch.zeros(inputs, width, length, PREVIOUS)
        mass[:, origin, 0, 0] = 1.0
        value = torch.zeros(())
        for t in range(1, limit + 2):
            if entropy_coef:
                value = value + entropy_coef * (mass * ent[:, :, None, :]).sum() / inputs
            if t > limit:  # every episode still running times out: -1
                value = value - mass.sum() / inputs
                break
            new = torch.zeros_like(mass)
            for move, shift in ((0, -1), (1, 1)):
                go = pm[:, :, None, :, move]
                skip = (mass * go * pw[:, :, None, :, 0]).sum(-1)
                new[:, :, :, previous_index(move, 0, 0)] += torch.roll(skip, shift, 1)
                for symbol in range(BASE):
                    flow = mass * go * pw[:, :, None, :, 1] * ps[:, :, None, :, symbol]
                    flow = flow.sum(-1)  # [N, H, write position]
                    right = (target == symbol).to(flow.dtype)[:, None, :]
                    value = (
                        value + ((flow * right).sum() - 0.5 * (flow * (1 - right)).sum()) / inputs
                    )
                    # a right symbol moves the write position on (the last one ends the episode)
                    on = torch.roll(flow * right, shift, 1)[:, :, :-1]
                    new[:, :, 1:, previous_index(move, 1, symbol)] += on
            mass = new
        total = total + value
    return total / len(lengths)


def reverse_algorithm(sharpness: float = 50.0) -> dict[str, torch.Tensor]:
    """The table of the reverse algorithm: right without writing until the blank, then left,
    writing the symbol under the head."""
    table = {k: torch.zeros(3 * PREVIOUS, 2) for k in FACTORS}
    right, left = torch.tensor([-1.0, 1.0]), torch.tensor([1.0, -1.0])
    for o in range(BASE + 1):
        for prev in range(PREVIOUS):
            row = o * PREVIOUS + prev
            came_right = prev == 0 or (prev - 1) // 3 == 1
            if o < BASE and came_right:  # walk right, no write
                table["move"][row], table["write"][row] = right, left
            elif o < BASE:  # walking left: write what is under the head
                table["move"][row], table["write"][row] = left, right
                table["symbol"][row] = right if o == 1 else left
            else:  # the blank: turn left, no write
                table["move"][row], table["write"][row] = left, left
    return {k: v * sharpness for k, v in table.items()}


def blind_interface(index: torch.Tensor) -> torch.Tensor:
    """The same rows with symbols 0 and 1 merged (the move and write decisions see only whether
    the cell is blank): every row of observation 1 reads the row of observation 0."""
    per = len(index) // (BASE + 1)
    merged = index.clone()
    merged[per : 2 * per] = index[:per]
    return merged


def exact_policy_gradient(
    start: int,
    lengths: list[int],
    iters: int,
    previous_symbol: bool,
    lr: float,
    entropy: float,
    blind: bool = False,
) -> dict:
    torch.manual_seed(start)
    rows = 3 * (PREVIOUS if previous_symbol else 5)
    params = {k: (0.5 * torch.randn(rows, 2)).requires_grad_() for k in FACTORS}
    index = torch.arange(3 * PREVIOUS) if previous_symbol else tie_symbol()
    # `blind`: move and write tied across the two symbols; the symbol written keeps its own rows
    indices = {k: blind_interface(index) if blind and k != "symbol" else index for k in FACTORS}
    optimiser = torch.optim.Adam(params.values(), lr=lr)

    def table(scale: float = 1.0) -> dict[str, torch.Tensor]:
        return {k: v[indices[k]] * scale for k, v in params.items()}

    curve = []
    for it in range(iters):
        objective = expected_return(table(), lengths, entropy)
        optimiser.zero_grad()
        (-objective).backward()
        optimiser.step()
        if it % 25 == 0 or it == iters - 1:
            with torch.no_grad():
                curve.append([it + 1, round(float(expected_return(table(), lengths)), 4)])
    with torch.no_grad():
        greedy = table(100.0)  # the argmax of every factor in every state
        best = sum(lengths) / len(lengths)
        greedy_return = float(expected_return(greedy, lengths))
        at_six = float(expected_return(greedy, [6]))
    return {
        "start": start,
        "previous_symbol": previous_symbol,
        "symbol_blind_interface": blind,
        "expected_return": curve[-1][1],
        "greedy_return": round(greedy_return, 4),
        "greedy_return_length_6": round(at_six, 4),
        "perfect_return": best,
        "reverse_algorithm": abs(greedy_return - best) < 1e-3 and abs(at_six - 6) < 1e-3,
        "curve": curve,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", nargs="+", type=int, default=[0, 1, 2, 3])
    parser.add_argument("--lengths", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--iters", type=int, default=150)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--entropy", type=float, default=0.01)
    parser.add_argument(
        "--blind",
        action="store_true",
        help="also: move and write see only blank / not blank (not the symbol), no written symbol",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    check = float(expected_return(reverse_algorithm(), args.lengths))
    print(f"reverse algorithm: expected return {check:.4f} (mean length {args.lengths})")
    runs = []
    variants = [(True, False), (False, False)] + ([(False, True)] if args.blind else [])
    for previous_symbol, blind in variants:
        for start in args.starts:
            run = exact_policy_gradient(
                start, args.lengths, args.iters, previous_symbol, args.lr, args.entropy, blind
            )
            runs.append(run)
            print(
                f"previous_symbol={previous_symbol} blind={blind} start {start}: expected "
                f"{run['expected_return']:.3f}, greedy {run['greedy_return']:.3f} "
                f"(perfect {run['perfect_return']:.1f}), greedy at length 6 "
                f"{run['greedy_return_length_6']:.2f}, algorithm: {run['reverse_algorithm']}",
                flush=True,
            )
    out = {
        "benchmark": "rl_ntm_landscape",
        "task": "memrl/TapeReverse-v0 (base 2), tabular policy over (observation, previous action)",
        "method": f"exact expected return; Adam lr {args.lr}, entropy bonus {args.entropy}, "
        f"{args.iters} steps from logits ~ N(0, 0.5^2)",
        "lengths": args.lengths,
        "reverse_algorithm_return": round(check, 4),
        "date": time.strftime("%Y-%m-%d"),
        "runs": runs,
    }
    atomic_write_text(RESULTS, json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
