"""CLEVR program generator (issue 24): program and answer accuracy on held-out questions over
held-out scenes, for K ground-truth programs, after maximum likelihood and after REINFORCE.

Data: memrl/ClevrVQA-v0 as configs/vqa_mle.yaml sets it: memrl's generated questions (19
families) over CLEVR's 1000 real train scenes, split by scene 800 / 100 / 100, so the test
questions are asked over scenes no training question saw. For each K and seed:

1. MLE (configs/vqa_mle.yaml, the dataset source): `--mle-updates` updates on the K programs;
   the weights of the best validation program accuracy are kept (as `memrl train` does).
2. REINFORCE (configs/vqa_reinforce.yaml, one Ray rollout worker executing the programs),
   warm-started from 1 with `run.init_from`, for `--rl-updates` updates of ~64 episodes over all
   training questions; the final weights are measured.

Both are measured on the whole test split with greedy decoding: program accuracy (exact token
match with the ground truth) and answer accuracy (the executed program gives the answer).
Each stage's wall clock is the Trainer's, at `--threads` torch threads.

    python benchmarks/vqa.py [--ks 9 18 270 all] [--seeds 0] [--mle-updates 800]
                             [--rl-updates 400] [--size small|paper] [--label NAME]

Writes benchmarks/results/vqa.json (merging with the rows there, keyed by K, seed and size)
and prints a markdown table. `--label` keeps a variant's rows (e.g. a longer REINFORCE) apart.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.machine import machine_info  # noqa: E402
from envs.clevr.env import ClevrVQA  # noqa: E402
from envs.files import atomic_write_text  # noqa: E402
from rollout.config import dump_config, load_config  # noqa: E402
from rollout.run_dir import RunDir  # noqa: E402
from rollout.trainer import Trainer  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "vqa.json"
SIZES = {  # `paper`: NS-VQA's; `small`: what fits a shared CPU core in minutes
    "paper": ["agent.embed_dim=300", "agent.hidden_size=256", "agent.layers=2"],
    "small": ["agent.embed_dim=64", "agent.hidden_size=128", "agent.layers=1"],
}


@torch.no_grad()
def measure(agent: Any, env: ClevrVQA, split: str = "test") -> dict[str, Any]:
    """Greedy programs for every question of `split`: program and answer accuracy, overall and
    per family."""
    agent = agent.cpu().eval()
    d = env.dataset(split)
    width = d.arrays["program"].shape[1] - 1
    prog_ok, ans_ok = [], []
    for start in range(0, len(d), 256):
        rows = np.arange(start, min(start + 256, len(d)))
        batch = d.take(rows)
        pred = agent.decode(torch.as_tensor(batch["question"]), width).numpy()
        target = batch["program"][:, 1:]
        prog_ok.append((pred == target).all(1))
        ans_ok.append(env.answers_correct(split, batch["question_index"], pred))
    prog, ans = np.concatenate(prog_ok), np.concatenate(ans_ok)
    families = {
        name: {
            "questions": int((d.groups == g).sum()),
            "program_accuracy": float(prog[d.groups == g].mean()),
            "answer_accuracy": float(ans[d.groups == g].mean()),
        }
        for g, name in enumerate(d.group_names)
        if (d.groups == g).any()
    }
    return {
        "questions": len(d),
        "program_accuracy": float(prog.mean()),
        "answer_accuracy": float(ans.mean()),
        "families": families,
    }


def _train(config: str, overrides: list[str], tmp: Path) -> tuple[Trainer, float]:
    cfg = load_config(ROOT / "configs" / config, [*overrides, f"run.dir={tmp}"])
    run = RunDir.create(tmp, cfg.run.name, dump_config(cfg))
    trainer = Trainer(cfg, run)
    start = time.monotonic()
    trainer.train()
    return trainer, time.monotonic() - start


def run_one(k: int, seed: int, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    kwargs = f"env.kwargs.num_programs={k}"
    common = [kwargs, *SIZES[args.size], f"run.seed={seed}", "run.log_every_s=60"]
    common.append(f"learner.torch_threads={args.threads}")
    env = ClevrVQA(**load_config(ROOT / "configs" / "vqa_mle.yaml", [kwargs]).env.kwargs)
    kept = len(env.dataset("train"))
    batch = min(64, kept)
    per_epoch = math.ceil(kept / batch)
    epochs = max(1, round(args.mle_updates / per_epoch))
    mle, mle_s = _train(
        "vqa_mle.yaml",
        [
            *common,
            f"agent.batch_size={batch}",
            f"learner.lr={args.mle_lr}",
            f"run.total_epochs={epochs}",
            f"run.eval_every_epochs={max(1, epochs // 10)}",
        ],
        tmp / f"mle-{k}-{seed}",
    )
    before = measure(mle.best_agent(), env)
    row: dict[str, Any] = {
        "K": "all" if k < 0 else k,
        "programs": kept,
        "seed": seed,
        "size": args.size,
        "label": args.label,
        "mle": {
            **before,
            "updates": mle.learner.updates,
            "epochs": mle.counters.epochs,
            "batch_size": batch,
            "lr": args.mle_lr,
            "wall_s": round(mle_s, 1),
        },
    }
    print(f"K={row['K']} seed {seed}: MLE {_fmt(before)} in {mle_s:.0f} s", flush=True)
    if args.rl_updates > 0:
        steps = args.rl_updates * args.rl_steps
        rl, rl_s = _train(
            "vqa_reinforce.yaml",
            [
                *common,
                f"learner.lr={args.rl_lr}",
                f"rollout.steps_per_sample={args.rl_steps}",
                f"agent.entropy_coef={args.entropy}",
                f"run.total_env_steps={steps}",
                f"run.eval_every_steps={steps // 4}",
                f"run.checkpoint_every_steps={steps}",
                "run.eval_episodes=200",
                f"run.init_from={mle.run_dir.path}",
            ],
            tmp / f"rl-{k}-{seed}",
        )
        after = measure(rl.agent, env)
        row["reinforce"] = {
            **after,
            "updates": rl.learner.updates,
            "episodes": rl.counters.episodes,
            "lr": args.rl_lr,
            "entropy_coef": args.entropy,
            "steps_per_sample": args.rl_steps,
            "wall_s": round(rl_s, 1),
        }
        print(f"K={row['K']} seed {seed}: REINFORCE {_fmt(after)} in {rl_s:.0f} s", flush=True)
    return row


def _key(row: dict[str, Any]) -> tuple:
    return row["K"], row["seed"], row["size"], row.get("label", "")


def _fmt(m: dict[str, Any]) -> str:
    return f"program {100 * m['program_accuracy']:.1f}%, answer {100 * m['answer_accuracy']:.1f}%"


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| K | seed | size | label | MLE program % | MLE answer % | MLE wall s | RL program % | "
        "RL answer % | RL updates | RL wall s |",
        "|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        m, rl = r["mle"], r.get("reinforce")
        rl_cells = (
            f"{100 * rl['program_accuracy']:.1f} | {100 * rl['answer_accuracy']:.1f} | "
            f"{rl['updates']} | {rl['wall_s']:.0f}"
            if rl
            else "- | - | - | -"
        )
        lines.append(
            f"| {r['K']} | {r['seed']} | {r['size']} | {r.get('label', '')} | {100 * m['program_accuracy']:.1f} | "
            f"{100 * m['answer_accuracy']:.1f} | {m['wall_s']:.0f} | {rl_cells} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ks", nargs="+", default=["9", "18", "270", "all"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--size", choices=sorted(SIZES), default="small")
    p.add_argument("--mle-updates", type=int, default=800)
    p.add_argument("--mle-lr", type=float, default=1e-3)
    p.add_argument("--rl-updates", type=int, default=400)
    p.add_argument("--rl-steps", type=int, default=960, help="env steps per REINFORCE update")
    p.add_argument("--rl-lr", type=float, default=1e-4)
    p.add_argument("--entropy", type=float, default=0.0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--label", default="", help="a name for a variant's rows (kept apart)")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    ks = [-1 if k == "all" else int(k) for k in args.ks]
    old = json.loads(args.out.read_text()) if args.out.is_file() else {"rows": []}
    rows = old["rows"]
    command = "python benchmarks/vqa.py " + " ".join(sys.argv[1:] if argv is None else argv)
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            for k in ks:
                row = run_one(k, seed, args, Path(tmp))
                row["command"] = command
                rows = [r for r in rows if _key(r) != _key(row)] + [row]
                out = {"benchmark": "vqa", "machine": machine_info(), "rows": rows}
                atomic_write_text(args.out, json.dumps(out, indent=1) + "\n")
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
