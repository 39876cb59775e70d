"""NTM and LSTM on the algorithmic tasks: sequences and wall-clock to 0.1 bits/sequence,
generalisation to longer sequences, and throughput; median and worst over seeds.

Each run is `memrl train configs/<agent>_<task>.yaml run.seed=S` in its own process (embedded
Ray, one rollout worker), trained to a fixed budget of sequences. "Reached" is the first greedy
evaluation (100 sequences, every ~1000 training sequences) with at most 0.1 wrong bits per
sequence; the generalisation table is measured on the weights of the best of those evaluations
(ties: the latest), as `memrl train` reports them.

    python benchmarks/ntm.py [--tasks copy associative_recall] [--agents ntm lstm]
                             [--seeds 5] [--max-time 600] [--throughput-only]
    python benchmarks/ntm.py --throughput-only --device cuda   # on a GPU machine

Writes benchmarks/results/ntm.json (merging with what is there, so tasks can be run one at a
time) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import envs  # noqa: E402
from agents import Learner, lstm, make_agent, ntm  # noqa: E402
from benchmarks.machine import machine_info  # noqa: E402
from benchmarks.memrl_run import train_subprocess  # noqa: E402
from benchmarks.ntm_summary import headline, summarise  # noqa: E402
from benchmarks.results_store import read_json, update_json  # noqa: E402
from rollout.config import LearnerConfig  # noqa: E402

TARGET = -0.1  # evaluation return = minus wrong bits per sequence


def run_once(
    agent: str,
    task: str,
    seed: int,
    max_time: float,
    max_sequences: int,
    extra: list[str],
    keep: Path | None = None,
) -> dict:
    overrides = [
        *extra,
        f"run.seed={seed}",
        f"run.max_time_s={max_time}",
        f"run.total_sequences={max_sequences}",
    ]
    rows, report, wall = train_subprocess(
        ROOT / "configs" / f"{agent}_{task}.yaml",
        overrides,
        read=lambda run_dir: json.loads(
            (run_dir / "evaluation/final/generalisation.json").read_text()
        ),
        keep=keep,
    )
    evals = [r for r in rows if "eval_return_mean" in r]
    hit = next((r for r in evals if r["eval_return_mean"] >= TARGET), None)
    report_cost = [row.get("cost_bits_per_seq") for row in report["rows"]]
    return {
        "seed": seed,
        "reached": hit is not None,
        "sequences": hit["sequences"] if hit else None,
        "time_s": hit["time_s"] if hit else None,
        "total_time_s": round(wall, 1),
        "final_bit_errors": -evals[-1]["eval_return_mean"] if evals else None,
        "curve": [[r["sequences"], r["time_s"], -r["eval_return_mean"]] for r in evals],
        "generalisation": {
            row["variant"]: row.get("bit_errors_per_seq", row.get("skipped"))
            for row in report["rows"]
        },
        "bayes_optimal": [
            row.get("bayes_optimal_cost_bits_per_seq")
            for row in report["rows"]
            if "bayes_optimal_cost_bits_per_seq" in row
        ],
        "cost_bits": report_cost,
        # dynamic n-grams, on the paper's 1000 validation sequences: cost - Bayes-optimal cost,
        # and the cost of the Bayes estimators that see only the last k bits
        **_gap_figures(report["rows"][0]),
        "report_weights": report.get("weights", "best"),
        # the paper's learning curves: cross-entropy in bits per sequence on the training batches
        "train_cost_curve": train_cost_curve(rows),
        "final_cost_bits": report_cost[0] if report_cost else None,
    }


def _gap_figures(row: dict) -> dict:
    if "gap_bits_per_seq" not in row:
        return {}
    return {
        "gap_bits": round(row["gap_bits_per_seq"], 3),
        "bayes_by_context_bits": {
            k: round(v, 2) for k, v in row.get("bayes_cost_by_context_bits", {}).items()
        },
    }


def train_cost_curve(rows: list[dict], window: int = 5000) -> list[list[float]]:
    """[sequences, mean training cost in bits per sequence] per `window` training sequences: the
    mean of the `cost_bits` that the log rows of the window carry (each the cost of the latest
    training batch), at the window's last logged sequence count; the paper's "cost per sequence
    (bits)" axis. Rows without `cost_bits` (no sequence loss) are skipped: [] when none has it."""
    out: list[list[float]] = []
    bucket: list[float] = []
    last, edge = 0, window
    for row in rows:
        if "cost_bits" not in row or "sequences" not in row:
            continue
        if row["sequences"] > edge and bucket:
            out.append([last, round(statistics.fmean(bucket), 2)])
            bucket = []
        while row["sequences"] > edge:
            edge += window
        bucket.append(float(row["cost_bits"]))
        last = row["sequences"]
    if bucket:
        out.append([last, round(statistics.fmean(bucket), 2)])
    return out


def throughput(
    seconds: float = 5.0, device: str = "cpu", batch_sizes: tuple[int, ...] = (8, 16)
) -> dict:
    """Copy task (lengths 1-20): sampling, and NTM (eager and torch.compile'd; on a GPU with and
    without CUDA graphs) and LSTM (3 x 256) training at each batch size, in sequences per second
    with one CPU thread; the learner on `device`. The ratios are measured in the same process on
    the same batch, so they hold on a noisy machine. `*_first_update_s` is the first update,
    compile included."""
    torch.set_num_threads(1)
    task = envs.make("memrl/Copy-v0").unwrapped
    rng = np.random.default_rng(0)
    out: dict = {"threads": 1, "device": device}
    start, n = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        task.sample_batch(16, rng)
        n += 16
    out["copy_sampling_seq_per_s"] = round(n / (time.perf_counter() - start), 1)
    # the default NTM (compiled step; on a GPU also learner.cuda_graphs), and without each
    variants: list[tuple[str, object, str, int]] = []
    for batch in batch_sizes:
        variants.append((f"ntm_b{batch}", ntm.Config(), "auto", batch))
        if device == "cuda":
            variants.append((f"ntm_nograph_b{batch}", ntm.Config(), "off", batch))
        variants.append((f"ntm_eager_b{batch}", ntm.Config(compile=False), "off", batch))
    variants += [(f"lstm_b{batch}", lstm.Config(), "auto", batch) for batch in batch_sizes]

    def sync() -> None:
        if device == "cuda":
            torch.cuda.synchronize()

    for name, cfg, graphs, batch_size in variants:
        torch.manual_seed(0)
        agent = make_agent(cfg, task.observation_space, task.action_space)
        learner = Learner(agent, LearnerConfig(device=device, cuda_graphs=graphs))
        inputs, targets, mask = task.sample_batch(batch_size, np.random.default_rng(1))
        batch = {"inputs": inputs, "targets": targets, "mask": mask}
        sync()
        first = time.perf_counter()
        learner.update(batch)  # the compiled step compiles here (and a CUDA graph is captured)
        sync()
        if getattr(cfg, "compile", False):
            out[f"{name}_first_update_s"] = round(time.perf_counter() - first, 1)
        learner.update(batch)
        sync()
        start, n = time.perf_counter(), 0
        while time.perf_counter() - start < seconds:
            learner.update(batch)  # returns floats of the loss: one sync per update
            n += batch_size
        sync()
        out[f"{name}_train_seq_per_s"] = round(n / (time.perf_counter() - start), 1)
        out[f"{name}_train_batch_steps"] = int(inputs.shape[0])
        print(f"  {name}: {out[f'{name}_train_seq_per_s']} sequences/s", file=sys.stderr)
    for batch in batch_sizes:
        compiled = out[f"ntm_{'nograph_' if device == 'cuda' else ''}b{batch}_train_seq_per_s"]
        eager = out[f"ntm_eager_b{batch}_train_seq_per_s"]
        out[f"ntm_b{batch}_compile_speedup"] = round(compiled / eager, 2)
        if device == "cuda":
            out[f"ntm_b{batch}_graph_speedup"] = round(
                out[f"ntm_b{batch}_train_seq_per_s"] / compiled, 2
            )
    return out


def kept_runs(stored: dict | None, entry: dict, seeds: list[int], where: str) -> list[dict]:
    """The stored runs that a rerun of `seeds` keeps: those of other seeds, when the stored entry
    ran the same setup (budget, overrides, runs at a time, CPU); else one summary would mix two."""
    if stored is None:
        return []

    def setup(e: dict) -> dict:
        keys = ("budget", "overrides", "parallel_runs")
        return {**{k: e.get(k) for k in keys}, "cpu": e.get("machine", {}).get("cpu")}

    old, new = setup(stored), setup(entry)
    for key in old:
        if old[key] != new[key]:
            raise SystemExit(
                f"{where}: the stored runs had {key} {old[key]!r}, this rerun {new[key]!r}; "
                "rerun all seeds, or give --label for a new entry."
            )
    return [r for r in stored["runs"] if r["seed"] not in set(seeds)]


def store_entry(
    result: dict, path: Path, task: str, name: str, entry: dict, runs: list[dict], pending: int
) -> None:
    """Write `entry` with the runs so far into `result` and `path` (atomically); `pending` seeds
    still running are named in the entry until it is complete. The entries on disk are read
    again under a lock first, so two benchmark processes (other tasks or labels) running side by
    side do not drop each other's stored entries."""
    entry["summary"] = summarise(runs)
    entry["runs"] = runs
    if pending:
        entry["pending_seeds"] = pending
    else:
        entry.pop("pending_seeds", None)

    def change(stored: dict) -> None:
        _merge(stored, result)
        stored["tasks"].setdefault(task, {})[name] = entry

    update_json(path, change)


def _merge(stored: dict, result: dict) -> None:
    """This process's top-level figures over the stored ones; the stored entries (another
    process's, maybe newer) kept, and `result` sees them too."""
    for key, value in result.items():
        if key != "tasks":
            stored[key] = value
    tasks = stored.setdefault("tasks", {})
    for mine_task, mine in result["tasks"].items():
        for mine_name, mine_entry in mine.items():
            tasks.setdefault(mine_task, {}).setdefault(mine_name, mine_entry)
    for entries in tasks.values():  # stored summaries follow summarise()'s rules
        for entry in entries.values():
            entry["summary"] = summarise(entry["runs"])
    result["tasks"] = tasks


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", nargs="+", default=["copy", "associative_recall"])
    parser.add_argument("--agents", nargs="+", default=["ntm", "lstm"])
    parser.add_argument("--seeds", type=int, default=5, help="run seeds 0 .. SEEDS-1")
    parser.add_argument(
        "--seed-list",
        type=int,
        nargs="+",
        metavar="SEED",
        help="run only these seeds and replace their runs in the stored entry (same budget and "
        "overrides), keeping its other seeds",
    )
    parser.add_argument(
        "--max-time", type=float, default=600.0, help="wall-clock budget per run, s"
    )
    parser.add_argument("--max-sequences", type=int, default=40_000)
    parser.add_argument(
        "--jobs", type=int, default=1, help="seeds run at once (each run's learner uses 1 thread)"
    )
    parser.add_argument(
        "--override",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="config overrides for every run, e.g. agent.key_activation=tanh",
    )
    parser.add_argument(
        "--label",
        help="the results' name in place of the agent's (one agent), e.g. 'ntm (tanh keys)'",
    )
    parser.add_argument(
        "--keep-runs",
        metavar="DIR",
        help="keep each run's dir (checkpoints, report) as DIR/<task>-<agent or label>-seed<S>",
    )
    parser.add_argument("--throughput-only", action="store_true")
    parser.add_argument(
        "--device",
        choices=["cpu", "cuda"],
        default="cpu",
        help="the learner's device for the throughput figures; cuda stores them as "
        "'throughput_gpu' beside the CPU's",
    )
    parser.add_argument(
        "--seconds", type=float, default=5.0, help="throughput: seconds timed per variant"
    )
    parser.add_argument(
        "--batch-sizes",
        type=int,
        nargs="+",
        metavar="B",
        help="throughput batch sizes (default: 8 16 on cpu, 8 16 128 1024 on cuda)",
    )
    parser.add_argument(
        "--no-throughput",
        action="store_true",
        help="keep the stored throughput figures (e.g. while other work loads the machine)",
    )
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/ntm.json"))
    args = parser.parse_args()
    if args.label and len(args.agents) != 1:
        parser.error("--label names the results of one agent: give one --agents")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA GPU on this machine")
    if args.batch_sizes is not None and min(args.batch_sizes) < 1:
        parser.error(f"--batch-sizes must be >= 1, got {args.batch_sizes}")
    batch_sizes = tuple(
        args.batch_sizes or ((8, 16) if args.device == "cpu" else (8, 16, 128, 1024))
    )

    out_path = Path(args.out)
    result = {"benchmark": "ntm", "tasks": {}, **read_json(out_path)}
    result["criterion"] = (
        "first greedy evaluation on 100 sequences with <= 0.1 wrong bits per sequence"
    )
    if not args.no_throughput and args.device == "cuda":  # beside the CPU's, with its machine
        figures = throughput(args.seconds, "cuda", batch_sizes)
        result["throughput_gpu"] = {
            "machine": machine_info(),
            "date": time.strftime("%Y-%m-%d"),
            **figures,
        }
        print(json.dumps(figures))
    elif not args.no_throughput:  # the top-level machine and date are the throughput figures'
        result["machine"] = machine_info()
        result["date"] = time.strftime("%Y-%m-%d")
        result["throughput"] = throughput(args.seconds, "cpu", batch_sizes)
        print(json.dumps(result["throughput"]))
    if not args.throughput_only:
        for task in args.tasks:
            for agent in args.agents:

                def one(seed: int, agent: str = agent, task: str = task) -> dict:
                    print(f"{agent} {task} seed {seed} ...", file=sys.stderr, flush=True)
                    keep = None
                    if args.keep_runs:
                        slug = "".join(c if c.isalnum() else "_" for c in args.label or agent)
                        keep = Path(args.keep_runs) / f"{task}-{slug}-seed{seed}"
                    r = run_once(
                        agent, task, seed, args.max_time, args.max_sequences, args.override, keep
                    )
                    print(
                        f"  seed {seed}: reached={r['reached']} sequences={r['sequences']} "
                        f"time={r['time_s']}",
                        file=sys.stderr,
                    )
                    return r

                name = args.label or agent
                entry = {
                    "budget": {"max_time_s": args.max_time, "max_sequences": args.max_sequences},
                    "parallel_runs": args.jobs,
                    "overrides": args.override,
                    "machine": machine_info(),
                    "date": time.strftime("%Y-%m-%d"),
                }
                kept: list[dict] = []
                if args.seed_list is not None:
                    stored = result["tasks"].get(task, {}).get(name)
                    kept = kept_runs(stored, entry, args.seed_list, f"{task} / {name}")
                if kept:
                    entry["rerun_seeds"] = sorted(args.seed_list)
                seeds = list(args.seed_list if args.seed_list is not None else range(args.seeds))
                runs = list(kept)
                failed: dict[int, str] = {}
                with ThreadPoolExecutor(max_workers=args.jobs) as pool:  # runs are subprocesses
                    futures = {pool.submit(one, seed): seed for seed in seeds}
                    for done, future in enumerate(as_completed(futures), 1):
                        try:
                            runs = sorted([*runs, future.result()], key=lambda r: r["seed"])
                        except RuntimeError as error:  # a failed `memrl train`: the others go on
                            failed[futures[future]] = str(error)
                            entry["failed_seeds"] = sorted(failed)
                        # stored after every seed: a crash or a kill keeps the finished ones
                        store_entry(result, out_path, task, name, entry, runs, len(seeds) - done)
                if failed:
                    seed, error = min(failed.items())
                    raise SystemExit(
                        f"{task} / {name}: seeds {sorted(failed)} failed (the others are stored "
                        f"in {out_path}); seed {seed}: {error[-2000:]}"
                    )
    update_json(out_path, lambda stored: _merge(stored, result))
    print(
        f"{'task':<20}{'agent':<6}{'reached / cost':>22}{'median seq':>12}{'worst seq':>11}"
        f"{'median s':>10}{'worst s':>9}"
    )
    for task, agents in result["tasks"].items():
        for agent, entry in agents.items():
            s = entry["summary"]
            cells = [
                s["sequences"]["median"],
                s["sequences"]["worst"],
                s["time_s"]["median"],
                s["time_s"]["worst"],
            ]
            text = ["-" if v is None else f"{v:,.0f}" for v in cells]
            print(
                f"{task:<20}{agent:<6}{headline(task, s):>22}{text[0]:>12}{text[1]:>11}"
                f"{text[2]:>10}{text[3]:>9}"
            )
    print(f"wrote {out_path}")


if __name__ == "__main__":
    main()
