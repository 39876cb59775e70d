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
match with the ground truth) and answer accuracy (the executed program gives the answer), per
question type and family, with examples of wrong programs (wrong answers, and other programs
that give the right answer). `guided` (with `--beam` > 0) is execution-guided decoding beside
it: the most probable of the beam's programs that runs on the scene (the answer unseen).
Each stage's wall clock is the Trainer's, at `--threads` torch threads.

    python benchmarks/vqa.py [--ks 9 18 270 all] [--seeds 0] [--mle-updates 800]
                             [--mle-dropout 0.5] [--word-dropout 0] [--rl-updates 400]
                             [--size small|paper] [--label NAME] [--runs DIR] [--beam 8]
    python benchmarks/vqa.py --ks 270 --seeds 0 --mle-from DIR/mle-270-0/vqa_mle-TIME ...

`--runs DIR` keeps the run folders (the MLE one with its figures), and `--mle-from` starts
REINFORCE from such a kept MLE run instead of training one. Writes
benchmarks/results/vqa.json and prints a markdown table: a new row joins the stored ones, and
a stored row of the same K, seed, size and label stays, marked `superseded` (the table leaves
it out). `--label` keeps a variant's rows (e.g. a longer REINFORCE) apart.
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

from agents import make_agent  # noqa: E402
from benchmarks.machine import machine_info  # noqa: E402
from benchmarks.results_store import read_json, update_json  # noqa: E402
from envs.clevr.env import ClevrVQA  # noqa: E402
from envs.clevr.executor import ExecutionError, execute  # noqa: E402
from envs.clevr.question_generator import TEMPLATES  # noqa: E402
from envs.clevr.tokens import prefix_to_program, program_to_prefix  # noqa: E402
from envs.files import atomic_write_text  # noqa: E402
from rollout.config import dump_config, load_config  # noqa: E402
from rollout.run_dir import RunDir  # noqa: E402
from rollout.trainer import Trainer  # noqa: E402
from rollout.warm_start import warm_start  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "vqa.json"
FAMILY_TYPE = {t.name: t.question_type for t in TEMPLATES}
MLE_ROW = "vqa_mle_row.json"  # the MLE stage's figures, kept in its run folder for --mle-from
SIZES = {  # `paper`: NS-VQA's; `small`: what fits a shared CPU core in minutes
    "paper": ["agent.embed_dim=300", "agent.hidden_size=256", "agent.layers=2"],
    "small": ["agent.embed_dim=64", "agent.hidden_size=128", "agent.layers=1"],
}


def family_type(name: str) -> str:
    """A family's question type: memrl's templates by name; CLEVR's question files by their
    template file, e.g. '1_compare_integer#2' -> 'compare_integer' (CLEVR's own groups)."""
    if name in FAMILY_TYPE:
        return FAMILY_TYPE[name]
    return name.split("#")[0].lstrip("0123456789_") or name


def wrong_example(env: ClevrVQA, split: str, row: int, pred: np.ndarray) -> dict[str, Any]:
    """One test question the generator got wrong: its text, the ground-truth and the predicted
    program (prefix tokens), the right answer and what the predicted program gives."""
    q = env.data.splits[split].questions[row]
    pv = env.data.program_vocab
    tokens = pv.decode(int(i) for i in pred)
    program = prefix_to_program(tokens)
    got = (
        program
        if isinstance(program, ExecutionError)
        else execute(program, env.data.scenes[q.image_index])
    )
    return {
        "question": q.question,
        "program": " ".join(program_to_prefix(q.program or ())),
        "predicted": " ".join(tokens),
        "answer": str(q.answer),
        "predicted_answer": f"error: {got}" if isinstance(got, ExecutionError) else str(got),
    }


def _decode(
    agent: Any, env: ClevrVQA, split: str, batch: dict[str, np.ndarray], width: int, beam: int
) -> np.ndarray:
    """Greedy programs [N, width]; with `beam` > 0, execution-guided decoding (Wang et al.
    2018): the most probable of the beam search's `beam` programs that runs on the question's
    scene without an execution error (the answer is not looked at), else the most probable."""
    question = torch.as_tensor(batch["question"])
    if beam <= 0:
        return agent.decode(question, width).numpy()
    beams = agent.decode_beam(question, width, beam).numpy()  # [N, beam, width]
    rows = batch["question_index"]
    runs = np.stack([env.programs_run(split, rows, beams[:, k]) for k in range(beam)], 1)
    first = np.where(runs.any(1), runs.argmax(1), 0)
    return beams[np.arange(len(beams)), first]


@torch.no_grad()
def measure(
    agent: Any, env: ClevrVQA, split: str = "test", wrong_per_family: int = 3, beam: int = 0
) -> dict[str, Any]:
    """Programs for every question of `split` (greedy; with `beam` > 0 execution-guided, see
    `_decode`): program and answer accuracy, overall and per family (question type and
    template), with up to `wrong_per_family` wrong answers' programs per family."""
    agent = agent.cpu().eval()
    d = env.dataset(split)
    width = d.arrays["program"].shape[1] - 1
    prog_ok, ans_ok, preds = [], [], []
    for start in range(0, len(d), 256):
        rows = np.arange(start, min(start + 256, len(d)))
        batch = d.take(rows)
        pred = _decode(agent, env, split, batch, width, beam)
        target = batch["program"][:, 1:]
        prog_ok.append((pred == target).all(1))
        ans_ok.append(env.answers_correct(split, batch["question_index"], pred))
        preds.append(pred)
    prog, ans, pred = np.concatenate(prog_ok), np.concatenate(ans_ok), np.concatenate(preds)
    qrows = d.arrays["question_index"]
    families = {}
    for g, name in enumerate(d.group_names):
        here = d.groups == g
        if not here.any():
            continue
        wrong = np.flatnonzero(here & ~ans)
        other = np.flatnonzero(here & ans & ~prog)  # another program, the right answer
        families[name] = {
            "type": family_type(name),
            "questions": int(here.sum()),
            "program_accuracy": float(prog[here].mean()),
            "answer_accuracy": float(ans[here].mean()),
            "wrong_answers": len(wrong),
            "wrong_examples": [
                wrong_example(env, split, int(qrows[i]), pred[i]) for i in wrong[:wrong_per_family]
            ],
            "other_program_right_answer": [
                wrong_example(env, split, int(qrows[i]), pred[i]) for i in other[:wrong_per_family]
            ],
        }
    types: dict[str, dict[str, Any]] = {}
    for f in families.values():
        t = types.setdefault(f["type"], {"questions": 0, "program_right": 0, "answer_right": 0})
        t["questions"] += f["questions"]
        t["program_right"] += round(f["program_accuracy"] * f["questions"])
        t["answer_right"] += round(f["answer_accuracy"] * f["questions"])
    question_types = {
        t: {
            "questions": v["questions"],
            "program_accuracy": v["program_right"] / v["questions"],
            "answer_accuracy": v["answer_right"] / v["questions"],
        }
        for t, v in types.items()
    }
    return {
        "decoding": f"beam {beam}, first that runs" if beam > 0 else "greedy",
        "questions": len(d),
        "program_accuracy": float(prog.mean()),
        "answer_accuracy": float(ans.mean()),
        "wrong_answers": int((~ans).sum()),
        "question_types": question_types,
        "families": families,
    }


def _train(config: str, overrides: list[str], tmp: Path) -> tuple[Trainer, float]:
    cfg = load_config(ROOT / "configs" / config, [*overrides, f"run.dir={tmp}"])
    run = RunDir.create(tmp, cfg.run.name, dump_config(cfg))
    trainer = Trainer(cfg, run)
    start = time.monotonic()
    trainer.train()
    return trainer, time.monotonic() - start


def _mle_stage(
    k: int, seed: int, args: argparse.Namespace, common: list[str], env: ClevrVQA, runs: Path
) -> tuple[Any, dict[str, Any], Path]:
    """Train (or, with --mle-from, reload) the MLE stage: its best weights' agent, its figures
    and its run folder."""
    if args.mle_from is not None:
        folder = Path(args.mle_from).resolve()
        stored = folder / MLE_ROW
        if not stored.is_file():
            raise SystemExit(f"--mle-from {folder}: no {MLE_ROW} (a run folder vqa.py kept)")
        mle_row = json.loads(stored.read_text())
        if mle_row["K"] != ("all" if k < 0 else k) or mle_row["seed"] != seed:
            raise SystemExit(
                f"--mle-from {folder} is K={mle_row['K']} seed {mle_row['seed']}, not "
                f"K={k} seed {seed}"
            )
        cfg = load_config(folder / "config.yaml")
        agent = make_agent(cfg.agent, env.observation_space, env.action_space)
        warm_start(agent, folder)
        figures = measure(agent, env)
        if abs(figures["answer_accuracy"] - mle_row["mle"]["answer_accuracy"]) > 1e-9:
            raise SystemExit(f"--mle-from {folder}: the reloaded weights measure otherwise")
        figures = {**mle_row["mle"], "from": str(folder)}
        if args.beam > 0:
            figures["guided"] = measure(agent, env, beam=args.beam)
        return agent, figures, folder
    kept = len(env.dataset("train"))
    batch = min(64, kept)
    per_epoch = math.ceil(kept / batch)
    epochs = max(1, round(args.mle_updates / per_epoch))
    mle, mle_s = _train(
        "vqa_mle.yaml",
        [
            *common,
            f"agent.batch_size={batch}",
            f"agent.dropout={args.mle_dropout}",
            f"agent.word_dropout={args.word_dropout}",
            f"learner.lr={args.mle_lr}",
            f"run.total_epochs={epochs}",
            f"run.eval_every_epochs={max(1, epochs // 10)}",
        ],
        runs / f"mle-{k}-{seed}",
    )
    agent = mle.best_agent()
    figures = {
        **measure(agent, env),
        "updates": mle.learner.updates,
        "epochs": mle.counters.epochs,
        "batch_size": batch,
        "lr": args.mle_lr,
        "dropout": args.mle_dropout,
        "word_dropout": args.word_dropout,
        "wall_s": round(mle_s, 1),
    }
    if args.beam > 0:
        figures["guided"] = measure(agent, env, beam=args.beam)
    return agent, figures, mle.run_dir.path


def run_one(k: int, seed: int, args: argparse.Namespace, runs: Path) -> dict[str, Any]:
    kwargs = [f"env.kwargs.num_programs={k}", f"env.kwargs.questions={args.questions}"]
    common = [*kwargs, *SIZES[args.size], f"run.seed={seed}", "run.log_every_s=60"]
    common.append(f"learner.torch_threads={args.threads}")
    env = ClevrVQA(**load_config(ROOT / "configs" / "vqa_mle.yaml", kwargs).env.kwargs)
    _, before, mle_dir = _mle_stage(k, seed, args, common, env, runs)
    row: dict[str, Any] = {
        "K": "all" if k < 0 else k,
        "programs": len(env.dataset("train")),
        "seed": seed,
        "size": args.size,
        "label": args.label,
        "questions": args.questions,
        "mle": before,
    }
    if args.mle_from is None:
        atomic_write_text(Path(mle_dir) / MLE_ROW, json.dumps(row, indent=1) + "\n")
    print(f"K={row['K']} seed {seed}: MLE {_fmt(before)} in {before['wall_s']:.0f} s", flush=True)
    if args.rl_updates > 0:
        steps = args.rl_updates * args.rl_steps
        rl, rl_s = _train(
            "vqa_reinforce.yaml",
            [
                *common,
                "agent.dropout=0",  # the workers act in eval mode: the learner's log-probs match
                f"learner.lr={args.rl_lr}",
                f"rollout.steps_per_sample={args.rl_steps}",
                f"agent.entropy_coef={args.entropy}",
                f"run.total_env_steps={steps}",
                f"run.eval_every_steps={steps // 4}",
                f"run.checkpoint_every_steps={steps}",
                "run.eval_episodes=200",
                f"run.init_from={mle_dir}",
            ],
            runs / f"rl-{k}-{seed}",
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
        if args.beam > 0:
            row["reinforce"]["guided"] = measure(rl.agent, env, beam=args.beam)
        print(f"K={row['K']} seed {seed}: REINFORCE {_fmt(after)} in {rl_s:.0f} s", flush=True)
    return row


def store_row(stored: dict[str, Any], row: dict[str, Any]) -> None:
    """`row` joins the stored rows; a stored row of the same K, seed, size and label stays,
    marked superseded (measured figures are never deleted)."""
    rows = stored.setdefault("rows", [])
    for old in rows:
        if _key(old) == _key(row) and not old.get("superseded"):
            old["superseded"] = True
    rows.append(row)
    stored["benchmark"] = "vqa"
    stored["machine"] = machine_info()


def _key(row: dict[str, Any]) -> tuple:
    return (
        row["K"],
        row["seed"],
        row["size"],
        row.get("label", ""),
        row.get("questions", "generated"),
    )


def _fmt(m: dict[str, Any]) -> str:
    out = f"program {100 * m['program_accuracy']:.1f}%, answer {100 * m['answer_accuracy']:.1f}%"
    if "guided" in m:
        out += f" (execution-guided beam: answer {100 * m['guided']['answer_accuracy']:.1f}%)"
    return out


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| K | seed | size | label | MLE program % | MLE answer % | MLE wall s | RL program % | "
        "RL answer % | RL updates | RL wall s |",
        "|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        if r.get("superseded"):
            continue
        m, rl = r["mle"], r.get("reinforce")
        label = r.get("label", "")
        if r.get("questions", "generated") != "generated":
            label = f"{label} ({r['questions']} questions)".strip()
        rl_cells = (
            f"{100 * rl['program_accuracy']:.1f} | {100 * rl['answer_accuracy']:.1f} | "
            f"{rl['updates']} | {rl['wall_s']:.0f}"
            if rl
            else "- | - | - | -"
        )
        lines.append(
            f"| {r['K']} | {r['seed']} | {r['size']} | {label} | {100 * m['program_accuracy']:.1f} | "
            f"{100 * m['answer_accuracy']:.1f} | {m['wall_s']:.0f} | {rl_cells} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ks", nargs="+", default=["9", "18", "270", "all"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--size", choices=sorted(SIZES), default="small")
    p.add_argument(
        "--questions",
        choices=["generated", "official"],
        default="generated",
        help="memrl's generated questions, or CLEVR's question files (env.kwargs.questions_path "
        "in configs/vqa_mle.yaml; default the data folder's questions_train/)",
    )
    p.add_argument("--mle-updates", type=int, default=800)
    p.add_argument("--mle-lr", type=float, default=1e-3)
    p.add_argument("--mle-dropout", type=float, default=0.0, help="the seq2seq's, MLE stage")
    p.add_argument("--word-dropout", type=float, default=0.0, help="question words, MLE stage")
    p.add_argument(
        "--mle-from",
        default=None,
        help="a kept MLE run folder (--runs) to start REINFORCE from instead of training one",
    )
    p.add_argument(
        "--runs", type=Path, default=None, help="keep the run folders here (default: deleted)"
    )
    p.add_argument("--rl-updates", type=int, default=400)
    p.add_argument("--rl-steps", type=int, default=960, help="env steps per REINFORCE update")
    p.add_argument("--rl-lr", type=float, default=1e-4)
    p.add_argument("--entropy", type=float, default=0.0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument(
        "--beam",
        type=int,
        default=8,
        help="also measure execution-guided decoding with this beam (0: greedy only)",
    )
    p.add_argument("--label", default="", help="a name for a variant's rows (kept apart)")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    ks = [-1 if k == "all" else int(k) for k in args.ks]
    if args.mle_from is not None and len(ks) * len(args.seeds) != 1:
        p.error("--mle-from reuses one MLE run: give one K and one seed")
    rows = read_json(args.out).get("rows", [])
    command = "python benchmarks/vqa.py " + " ".join(sys.argv[1:] if argv is None else argv)
    with tempfile.TemporaryDirectory() as tmp:
        runs = args.runs.resolve() if args.runs is not None else Path(tmp)
        for seed in args.seeds:
            for k in ks:
                row = run_one(k, seed, args, runs)
                row["command"] = command
                stored = update_json(args.out, lambda out, row=row: store_row(out, row))
                rows = stored["rows"]
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
