"""`memrl sweep`: grid and random search, and multi-seed runs, on Ray Tune.

Each trial is a Ray Tune function trainable that runs the normal trainer on its config (through
rollout.launch.train_run, as `memrl train` does) and writes a normal run folder inside the
sweep folder, so `memrl plot`, `memrl evaluate` and `memrl train --resume` work on it as on any
run. A trial reserves one
placement group: `--trial-cpus` for its driver (the learner) and one CPU per rollout worker,
which the trial's workers then use (rollout/worker_group.py); Ray Tune starts a trial when all
of them are free, so on a 2-core machine two `rollout.num_workers=0` trials run side by side
and a `rollout.num_workers=1` trial runs alone.

The sweep folder `<run.dir>/<run.name>-sweep-<time>/` holds `sweep.json` (the command), one run
folder per trial, `tune/` (Ray Tune's own records), and `summary.json` + `summary.md`: per
setting (the trials that differ only in run.seed) the median, min and max over its trials of
the final evaluation score and of the best one.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from envs.files import atomic_write_text
from rollout.config import ConfigError, build_config, dump_config, read_yaml
from rollout.sweep_space import SweepSpec, parse_sweep

SEED_KEY = "run.seed"
FIGURES = (("final", "eval_score"), ("best", "best_eval_return"))
STOPPED = "stopped unfinished (Ctrl-C)"


class SweepError(RuntimeError):
    """A sweep that could not run (the message says why); its folder keeps what was written."""


def _trial_values(config: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.tolist() if isinstance(v, np.generic) else v) for k, v in config.items()}


def make_trainable(spec: SweepSpec, sweep_dir: Path, name: str, cwd: str) -> Callable:
    """The Ray Tune function trainable: one memrl run with the trial's axis values."""

    def memrl_trial(config: dict[str, Any]) -> None:
        from ray import tune
        from rich.console import Console

        from rollout.launch import train_run
        from rollout.run_dir import RunDir

        os.chdir(cwd)  # Ray Tune moves a trial into its own folder; relative paths are the user's
        index = int(tune.get_context().get_trial_id().rsplit("_", 1)[-1])
        values = _trial_values(config)
        cfg = build_config(spec.trial_data(values, [f"run.dir={sweep_dir}"]), spec.source)
        # the folder names the trial; run.name stays the config's, so `memrl plot` groups seeds
        run = RunDir.create(sweep_dir, f"{name}-t{index}", dump_config(cfg))
        # the trial's progress and notes go to its run folder, not interleaved on the terminal
        with open(run.path / "train.log", "w", buffering=1) as log:
            console = Console(file=log, soft_wrap=True, width=120)
            try:
                _, summary = train_run(cfg, console, run, out=console)  # as `memrl train`
            except Exception as exc:
                console.print(f"trial failed: {exc}", highlight=False, markup=False)
                raise
        tune.report(
            {
                **{k: v for k, v in summary.items() if isinstance(v, int | float | str | None)},
                "trial": index,
            }
        )

    return memrl_trial


def _trial_resources(spec: SweepSpec, trial_cpus: float) -> Callable[[dict], Any]:
    def resources(config: dict[str, Any]) -> Any:
        from ray.tune import PlacementGroupFactory

        cfg = build_config(spec.trial_data(_trial_values(config)), spec.source)
        workers = cfg.rollout.num_workers
        strategy = cfg.rollout.placement if cfg.rollout.placement != "none" else "PACK"
        return PlacementGroupFactory([{"CPU": trial_cpus}] + [{"CPU": 1.0}] * workers, strategy)

    return resources


def _most_cpus(spec: SweepSpec, trial_cpus: float) -> float:
    """The CPUs the largest trial reserves (rollout.num_workers may be an axis)."""
    counts = [build_config(spec.data, spec.source).rollout.num_workers]
    for axis in spec.axes:
        if axis.key == "rollout.num_workers":
            counts = [int(v) for v in axis.values]
    return trial_cpus + max(counts)


def sweep_folder(root: str | Path, name: str) -> Path:
    root = Path(root).resolve()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path, suffix = root / f"{name}-sweep-{stamp}", 1
    root.mkdir(parents=True, exist_ok=True)
    while True:
        try:
            path.mkdir()
            return path
        except FileExistsError:
            suffix += 1
            path = root / f"{name}-sweep-{stamp}-{suffix}"


def _stats(values: list[float]) -> dict[str, float | None]:
    values = [v for v in values if v is not None]
    if not values:
        return {"median": None, "min": None, "max": None}
    return {
        "median": float(np.median(values)),
        "min": float(np.min(values)),
        "max": float(np.max(values)),
    }


def summarise(trials: list[dict[str, Any]], axes: Sequence[str]) -> dict[str, Any]:
    """Group trials by their axis values other than run.seed; median/min/max per group.
    `trials`: {"values": {key: value}, "run_dir", "eval_score", "best_eval_return", "error"}."""
    setting_keys = [k for k in axes if k != SEED_KEY]
    groups: dict[str, dict[str, Any]] = {}
    for trial in sorted(trials, key=lambda t: t.get("trial") or 0):
        setting = {k: trial["values"].get(k) for k in setting_keys}
        group = groups.setdefault(
            json.dumps(setting, sort_keys=True), {"setting": setting, "trials": []}
        )
        group["trials"].append(trial)
    settings = []
    for group in groups.values():
        done = [t for t in group["trials"] if not t.get("error")]
        entry = {
            "setting": group["setting"],
            "trials": len(group["trials"]),
            "failed": len(group["trials"]) - len(done),
            "seeds": [t["values"].get(SEED_KEY, t.get("seed")) for t in done],
            **{name: _stats([t.get(key) for t in done]) for name, key in FIGURES},
            "env_steps_median": _stats([t.get("env_steps") for t in done])["median"],
            "run_dirs": [t.get("run_dir") for t in group["trials"]],
        }
        settings.append(entry)
    return {"axes": list(axes), "settings": settings, "trials": trials}


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return json.dumps(value) if not isinstance(value, str) else value


def summary_markdown(summary: dict[str, Any], metric: str) -> str:
    keys = [k for k in summary["axes"] if k != SEED_KEY]
    head = [*keys, "trials", *(f"{n} {metric} median [min, max]" for n, _ in FIGURES)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in summary["settings"]:
        trials = f"{s['trials'] - s['failed']}" + (
            f" ({s['failed']} failed)" if s["failed"] else ""
        )
        figures = [
            f"{_fmt(s[n]['median'])} [{_fmt(s[n]['min'])}, {_fmt(s[n]['max'])}]" for n, _ in FIGURES
        ]
        cells = [_fmt(s["setting"].get(k)) for k in keys]
        lines.append("| " + " | ".join([*cells, trials, *figures]) + " |")
    return "\n".join(lines) + "\n"


def run_sweep(
    config: str,
    arguments: Sequence[str],
    samples: int = 1,
    address: str | None = None,
    trial_cpus: float = 1.0,
    folder: str | None = None,
    search_seed: int = 0,
    note: Callable[[str], None] = print,
    console: Any = None,
) -> tuple[Path, dict[str, Any]]:
    """Run the sweep; returns (sweep folder, summary). ConfigError (and the errors of
    rollout.launch.check_before_start) for a bad config or value, SweepError when the cluster
    cannot hold one trial or no trial could run. `console` gets the env checker's warnings."""
    if samples < 1:
        raise ConfigError(f"--samples must be >= 1, got {samples}.")
    if trial_cpus < 0:
        raise ConfigError(f"--trial-cpus must be >= 0, got {trial_cpus:g}.")
    spec = parse_sweep(read_yaml(config), config, arguments)
    if spec.random and samples == 1:
        note("memrl: note: random axes with --samples 1 draw one trial; give --samples N")
    first = {a.key: a.values[0] for a in spec.axes}
    cfg = build_config(spec.trial_data(first), config)
    from rich.console import Console

    from rollout.launch import check_before_start
    from rollout.submit import job_run_root

    root, moved = job_run_root(folder or cfg.run.dir)  # in a Ray job: not its temporary copy
    if moved:
        note(moved)
    cfg.run.dir = root
    # a bad env id, an agent that cannot learn the task, an unwritable folder fail here, before
    # Ray starts (checked with the first trial's values)
    check_before_start(cfg, console or Console(stderr=True, soft_wrap=True))
    sweep_dir = sweep_folder(root, cfg.run.name)
    record = {
        "config": str(config),
        "overrides": spec.fixed,
        "axes": [{"key": a.key, "kind": a.kind, "values": list(a.values)} for a in spec.axes],
        "samples": samples,
        "search_seed": search_seed,
        "trial_cpus": trial_cpus,
    }
    atomic_write_text(sweep_dir / "sweep.json", json.dumps(record, indent=1) + "\n")
    atomic_write_text(sweep_dir / "base_config.yaml", dump_config(build_config(spec.data, config)))
    count = spec.grid_size() * samples
    note(f"sweep dir {sweep_dir}: {count} trial{'s' if count != 1 else ''}")

    from rollout.ray_runtime import start_ray, stop_ray

    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # Tune's own tables stay off (verbose=0)
    # an embedded Ray gets at least the CPUs of the largest trial, as `memrl train` gets its
    # workers' (Ray then shares the cores between them)
    started = start_ray(address, math.ceil(_most_cpus(spec, trial_cpus)), cfg.env.id)
    try:
        results = _fit(spec, sweep_dir, cfg.run.name, samples, trial_cpus, search_seed)
    finally:
        if started:
            stop_ray()
    trials = []
    for result in results:
        metrics = result.metrics or {}
        index = metrics.get("trial", _trial_index(str(result.path)) if result.path else None)
        trial = {
            "trial": index,
            "values": _trial_values(result.config or {}),
            **{k: metrics.get(k) for k in ("run_dir", "eval_score", "best_eval_return")},
            **{k: metrics.get(k) for k in ("env_steps", "time_s", "stop_reason")},
        }
        if result.error is not None or "run_dir" not in metrics:
            # a trial that failed (or was stopped: Ctrl-C) after making its run folder: name it
            made = sorted(sweep_dir.glob(f"{cfg.run.name}-t{index}-*"))
            trial["run_dir"] = str(made[0]) if made else None
            trial["error"] = _last_line(result.error) if result.error is not None else STOPPED
            where = [f"run folder {made[0]}"] if made else []
            if result.error is not None and result.path:
                where.append(f"traceback in {Path(result.path) / 'error.txt'}")
            detail = f" ({', '.join(where)})" if where else ""
            note(f"memrl: trial t{index} {trial['values']} failed: {trial['error']}{detail}")
        trials.append(trial)
    summary = summarise(trials, [a.key for a in spec.axes])
    summary["sweep_dir"] = str(sweep_dir)
    metric = "accuracy" if _is_dataset(cfg) else "eval score"
    table = summary_markdown(summary, metric)
    atomic_write_text(sweep_dir / "summary.json", json.dumps(summary, indent=1) + "\n")
    atomic_write_text(sweep_dir / "summary.md", table)
    if trials and all(t.get("error") == STOPPED for t in trials):
        raise SweepError(f"the sweep was stopped before a trial finished; see {sweep_dir}.")
    if all(t.get("error") for t in trials):
        raise SweepError(f"every trial failed; see {sweep_dir} (summary.json names the errors).")
    return sweep_dir, summary


def _is_dataset(cfg: Any) -> bool:
    return cfg.run.total_epochs > 0


def _trial_index(path: str) -> int | None:
    """Ray Tune's trial number, from the trial folder `trial-<experiment>_<NNNNN>`."""
    tail = path.rstrip("/").rsplit("_", 1)[-1]
    return int(tail) if tail.isdigit() else None


def _last_line(error: BaseException) -> str:
    lines = [line for line in str(error).strip().splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__


def _fit(
    spec: SweepSpec, sweep_dir: Path, name: str, samples: int, trial_cpus: float, seed: int
) -> Any:
    import ray
    from ray import tune
    from ray.tune.search import BasicVariantGenerator

    need = _most_cpus(spec, trial_cpus)
    have = float(ray.cluster_resources().get("CPU", 0.0))
    if need > have:
        raise SweepError(
            f"a trial reserves {need:g} CPUs (--trial-cpus {trial_cpus:g} + 1 per rollout "
            f"worker) but the Ray cluster has {have:g}; lower rollout.num_workers or "
            "--trial-cpus (e.g. --trial-cpus 0.5), or join a larger cluster with --address."
        )
    trainable = tune.with_resources(
        make_trainable(spec, sweep_dir, name, os.getcwd()), _trial_resources(spec, trial_cpus)
    )
    # a failed trial is reported once, by memrl, with its error's last line; Tune's own log
    # record (the whole traceback) stays in the trial's error.txt
    logging.getLogger("ray.tune").setLevel(logging.CRITICAL)
    tuner = tune.Tuner(
        trainable,
        param_space=spec.param_space(),
        tune_config=tune.TuneConfig(
            num_samples=samples,
            search_alg=BasicVariantGenerator(random_state=seed),
            trial_dirname_creator=lambda trial: f"trial-{trial.trial_id}",
        ),
        run_config=tune.RunConfig(
            name="tune",
            storage_path=str(sweep_dir),
            verbose=0,
            failure_config=tune.FailureConfig(max_failures=0),
        ),
    )
    return tuner.fit()
