"""Catch an NTM training collapse and show what the heads did (issue 22).

Trains an NTM config (`--config`, default configs/ntm_copy.yaml) in this process (the learner `memrl train` uses, on the task's own sampler),
scores a fixed batch every `--every` updates, keeps the last `--keep` snapshots (weights and
optimiser state) and saves them when the score jumps by more than `--jump` wrong bits per
sequence. For each saved snapshot it prints the median head parameters over the fixed batch:
key strength beta, interpolation gate g (1 = content addressing, 0 = the previous weighting),
sharpening gamma, the largest shift weight, the mean shift (rows a step: +1 = one row forward,
0 = stay), and the entropy of the final weighting (0 = one row, ln N = spread over all N rows),
with Adam's median |m| / sqrt(v). OUT/seed<S>/curve.json keeps the scores and every update's
batch loss and gradient norm (before clipping).

`--store LABEL` records the run's scores and a summary (the first score <= 0.1 wrong bits, the
worst after it, how many after it were above 1 and above 10) under LABEL, seed by seed, in
benchmarks/results/ntm_collapse.json; `--from DIR --store LABEL` records the curve.json files of
runs already made in DIR/seed<S>/ (name their config and overrides the same way).

`--run RUN_DIR` prints the same for a `memrl train` run's checkpoint instead (`--checkpoint`,
default latest), on a batch of the run's task with `--env KEY=VALUE` laid over its env kwargs:
e.g. whether the write head walks (mean shift ~1) or stays on a row (~0) on repeat copy's first
curriculum level.

    python benchmarks/ntm_collapse.py --seed 2 --updates 1500
    python benchmarks/ntm_collapse.py --seed 2 --updates 3000 learner.lr_schedule=solved \\
        learner.lr_solved_score=-0.1 learner.lr_decay_factor=0.5 learner.lr_min=1e-4
    python benchmarks/ntm_collapse.py --seed 2 --updates 4000 --store "adaptive clipping" \
        learner.grad_clip_mode=adaptive
    python benchmarks/ntm_collapse.py --analyse runs/collapse/seed2/collapse_u725.pt
    python benchmarks/ntm_collapse.py --run runs/ntm_repeat_copy-... --env max_repeats=1

Snapshots are tensors, numbers and lists only, read back with torch.load(weights_only=True):
a file that holds anything else is refused, never unpickled.
"""

from __future__ import annotations

import argparse
import collections
import copy
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import envs  # noqa: E402
from agents import make_agent  # noqa: E402
from agents.learner import Learner  # noqa: E402
from agents.ntm import NTMAgent  # noqa: E402
from benchmarks.machine import machine_info  # noqa: E402
from benchmarks.ntm_summary import after_reaching  # noqa: E402
from benchmarks.results_store import update_json  # noqa: E402
from rollout.config import load_config  # noqa: E402

STATISTICS = ("beta", "gate", "gamma", "shift_max", "shift_mean", "entropy")
RESULTS = ROOT / "benchmarks" / "results" / "ntm_collapse.json"


def collapse_summary(scores: list[dict[str, float]]) -> dict[str, Any]:
    """A run's scores (update, bit_errors) in one line: the first update scoring <= 0.1 wrong bits
    per sequence, and of the scores after it the worst and how many were above 1 and above 10
    (10: a collapse; chance on copy is ~40)."""
    first, later = after_reaching([s["bit_errors"] for s in scores])
    return {
        "first_reached_update": None if first is None else scores[first]["update"],
        "scores_after": len(later),
        "worst_after": max(later, default=None),
        "above_1_after": sum(b > 1 for b in later),
        "above_10_after": sum(b > 10 for b in later),
        "last": scores[-1]["bit_errors"] if scores else None,
    }


def store(label: str, seed: int, scores: list[dict[str, float]], meta: dict[str, Any]) -> None:
    """Record one seed's scores under `label` (its config, overrides and score spacing must be
    the label's: a label names one protocol)."""

    def change(stored: dict[str, Any]) -> None:
        entry = stored.setdefault(label, {**meta, "runs": {}})
        clash = [k for k in meta if k not in ("machine", "date") and entry.get(k) != meta[k]]
        if clash:
            raise SystemExit(
                f"label {label!r} in {RESULTS} was stored with {clash[0]}={entry.get(clash[0])!r}, "
                f"not {meta[clash[0]]!r}: use another label"
            )
        entry["runs"][str(seed)] = {
            **collapse_summary(scores),
            "scores": [[s["update"], round(s["bit_errors"], 4)] for s in scores],
        }

    update_json(RESULTS, change)
    print(f"stored seed {seed} under {label!r} in {RESULTS}")


def protocol(args: argparse.Namespace) -> dict[str, Any]:
    """What a stored label's runs share (config, overrides, score spacing), and where and when."""
    config = Path(args.config).resolve()
    return {
        "config": str(config.relative_to(ROOT) if config.is_relative_to(ROOT) else args.config),
        "overrides": list(args.overrides),
        "every": args.every,
        "batch": "64 sequences of the task, seed 12345 (fixed_batch)",
        "machine": machine_info(),
        "date": time.strftime("%Y-%m-%d"),
    }


def head_statistics(agent: NTMAgent, batch: dict[str, torch.Tensor]) -> dict[str, dict]:
    """Median head parameters of the read and the write heads over the live steps of `batch`."""
    core = agent.core
    m, shifts, r = core.cfg.memory_m, core.shifts, core.cfg.read_heads
    calls: list[torch.Tensor] = []
    address = core._address
    offsets = torch.arange(-(shifts // 2), shifts // 2 + 1, dtype=torch.float32)

    def spy(p: torch.Tensor, w_prev: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        w = address(p, w_prev, memory)
        f = torch.nn.functional
        s = torch.softmax(p[..., m + 2 : m + 2 + shifts], -1)
        calls.append(
            torch.stack(
                [
                    f.softplus(p[..., m]),
                    torch.sigmoid(p[..., m + 1]),
                    1.0 + f.softplus(p[..., m + 2 + shifts]),
                    s.max(-1).values,
                    s @ offsets.to(s.device),
                    -(w * torch.log(w + 1e-12)).sum(-1),
                ],
                -1,
            )
        )  # [B, heads, len(STATISTICS)]
        return w

    core._address = spy  # the instance's attribute shadows the method for this pass only
    try:
        with torch.no_grad():
            core(batch["inputs"].float())
    finally:
        del core._address
    steps = batch["inputs"].shape[0]
    if core.cfg.order == "read_first":  # one call per step: read heads, then write heads
        per_step = torch.stack(calls)
        read, write = per_step[:, :, :r], per_step[:, :, r:]
    else:  # write_first: the write heads' call, then the read heads', every step
        write, read = torch.stack(calls[0::2]), torch.stack(calls[1::2])
    assert read.shape[0] == steps
    live = (batch["inputs"].abs().sum(-1) > 0) | (batch["mask"] > 0)  # [T, B]
    out = {}
    for name, values in (("read", read), ("write", write)):
        v = values[live].reshape(-1, len(STATISTICS))
        out[name] = {s: round(float(v[:, i].median()), 3) for i, s in enumerate(STATISTICS)}
    return out


def adam_ratio(optimizer_state: dict[str, Any]) -> float | None:
    """Median |m| / sqrt(v) over every parameter: near 0 when steps cancel, near 1 when Adam
    moves every weight a whole lr the same way step after step."""
    states = [s for s in optimizer_state["state"].values() if "exp_avg" in s]
    if not states:
        return None
    m = torch.cat([s["exp_avg"].flatten() for s in states])
    v = torch.cat([s["exp_avg_sq"].flatten() for s in states])
    return round(float((m.abs() / (v.sqrt() + 1e-8)).median()), 3)


def setup(config: Path, overrides: list[str], seed: int) -> tuple[Any, Any, NTMAgent]:
    cfg = load_config(config, [f"run.seed={seed}", *overrides])
    env = envs.make(cfg.env.id, **cfg.env.kwargs)
    agent = make_agent(cfg.agent, env.observation_space, env.action_space)
    if not isinstance(agent, NTMAgent):
        raise SystemExit(f"ntm_collapse: the config's agent is {cfg.agent.name!r}, not the NTM")
    return cfg, env.unwrapped, agent


def fixed_batch(task: Any, size: int = 64, seed: int = 12345) -> dict[str, torch.Tensor]:
    arrays = task.sample_batch(size, np.random.default_rng(seed))
    return {k: torch.as_tensor(v) for k, v in zip(("inputs", "targets", "mask"), arrays)}


def analyse(path: Path, config: Path, overrides: list[str]) -> None:
    if not path.is_file():
        raise SystemExit(f"ntm_collapse: no snapshot file {path}")
    try:
        snapshots = torch.load(path, weights_only=True)
    except Exception as error:  # a pickle of anything but tensors and plain containers
        reason = str(error).strip().splitlines()[0]
        raise SystemExit(
            f"ntm_collapse: {path} is not a snapshot file of this script ({reason})"
        ) from error
    _, task, agent = setup(config, overrides, 0)
    batch = fixed_batch(task)
    for update, weights, optimizer in snapshots:
        agent.load_state_dict(weights)
        print(f"update {update}: {describe(agent, batch)} | adam {adam_ratio(optimizer)}")


def describe(agent: NTMAgent, batch: dict[str, torch.Tensor]) -> str:
    """Wrong bits per sequence on `batch` and the heads' median statistics, as one line."""
    agent.eval()
    errors = float(agent.score_examples(batch)["bit_errors"].mean())
    heads = head_statistics(agent, batch)
    cells = " | ".join(
        f"{k}: " + " ".join(f"{s}={v[s]:.2f}" for s in STATISTICS) for k, v in heads.items()
    )
    return f"{errors:.2f} wrong bits | {cells}"


def analyse_run(run_dir: Path, checkpoint: str, env_overrides: list[str]) -> str:
    """`describe` for a `memrl train` run's checkpoint, on a fixed batch of its task with
    `env_overrides` (KEY=VALUE, YAML values) laid over the run's env kwargs."""
    from rollout.evaluation import (
        EvaluationError,
        load_agent,
        open_run,
        resolve_checkpoint,
        run_config,
    )

    extra = {}
    for item in env_overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"ntm_collapse: --env takes KEY=VALUE (got {item!r})")
        extra[key] = yaml.safe_load(value)
    try:
        run = open_run(run_dir)
        cfg = run_config(run, trust=False)
        path = resolve_checkpoint(run, checkpoint)
        kwargs = {**cfg.env.kwargs, **extra}
        task = envs.make(cfg.env.id, **kwargs).unwrapped
        agent, step = load_agent(cfg, path, kwargs)
    except (EvaluationError, TypeError, ValueError) as error:
        raise SystemExit(f"ntm_collapse: {error}") from None
    if not isinstance(agent, NTMAgent):
        raise SystemExit(f"ntm_collapse: {run_dir} trained {cfg.agent.name!r}, not the NTM")
    return f"{run_dir} at env step {step}, env {extra or 'as trained'}: " + describe(
        agent, fixed_batch(task)
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("overrides", nargs="*", help="config overrides")
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "ntm_copy.yaml")
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--updates", type=int, default=1500)
    parser.add_argument("--every", type=int, default=25, help="updates between scores")
    parser.add_argument("--keep", type=int, default=6, help="snapshots kept before a collapse")
    parser.add_argument("--jump", type=float, default=10.0, help="wrong bits that make a collapse")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "collapse")
    parser.add_argument("--analyse", type=Path, help="print a saved file's snapshots and exit")
    parser.add_argument("--run", type=Path, help="print a memrl train run's heads and exit")
    parser.add_argument("--checkpoint", default="latest", help="with --run: N, latest or best")
    parser.add_argument(
        "--env", action="append", default=[], help="with --run: KEY=VALUE over its env kwargs"
    )
    parser.add_argument("--store", metavar="LABEL", help="record the scores under LABEL")
    parser.add_argument("--from", dest="source", type=Path, help="with --store: DIR/seed<S>/")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.source is not None:
        if args.store is None:
            parser.error("--from needs --store LABEL")
        found = sorted(args.source.glob("seed*/curve.json"))
        if not found:
            parser.error(f"no seed*/curve.json in {args.source}")
        for path in found:
            scores = json.loads(path.read_text())["scores"]
            store(args.store, int(path.parent.name.removeprefix("seed")), scores, protocol(args))
        return
    if args.run is not None:
        print(analyse_run(args.run, args.checkpoint, args.env))
        return
    if args.analyse is not None:
        analyse(args.analyse, args.config, args.overrides)
        return
    torch.manual_seed(args.seed)
    cfg, task, agent = setup(args.config, args.overrides, args.seed)
    learner = Learner(agent, cfg.learner)
    rng = np.random.default_rng(args.seed)
    batch = fixed_batch(task)
    out = args.out / f"seed{args.seed}"
    out.mkdir(parents=True, exist_ok=True)
    snapshots: collections.deque = collections.deque(maxlen=args.keep)
    curve, steps, previous, start = [], [], None, time.time()
    for update in range(1, args.updates + 1):
        inputs, targets, mask = task.sample_batch(cfg.agent.batch_size, rng)
        metrics = learner.update({"inputs": inputs, "targets": targets, "mask": mask})
        steps.append({"loss": metrics["loss"], "grad_norm": metrics.get("grad_norm")})
        if update % args.every:
            continue
        agent.eval()
        errors = float(agent.score_examples(batch)["bit_errors"].mean())
        agent.train()
        lr = learner.on_evaluation(-errors)
        state = copy.deepcopy((agent.state_dict(), learner.optimizer.state_dict()))
        snapshots.append((update, *state))
        curve.append({"update": update, "bit_errors": errors, "loss": metrics["loss"], "lr": lr})
        print(
            f"update {update} ({update * cfg.agent.batch_size} sequences, "
            f"{time.time() - start:.0f} s): {errors:.2f} wrong bits, lr {lr:.2g}",
            flush=True,
        )
        if previous is not None and errors > previous + args.jump:
            path = out / f"collapse_u{update}.pt"
            torch.save(list(snapshots), path)
            print(f"collapse: {previous:.2f} -> {errors:.2f}; snapshots in {path}", flush=True)
            analyse(path, args.config, args.overrides)
        previous = errors
    record = {"scores": curve, "updates": steps}  # every update's batch loss and gradient norm
    (out / "curve.json").write_text(json.dumps(record) + "\n")
    summary = collapse_summary(curve)
    print("summary: " + ", ".join(f"{k} {v}" for k, v in summary.items()))
    if args.store is not None:
        store(args.store, args.seed, curve, protocol(args))


if __name__ == "__main__":
    main()
