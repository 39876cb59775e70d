"""Starting a training run from a resolved config: the checks that fail before Ray starts, then
Ray (when the run has workers), the run folder and the Trainer. Shared by `memrl train`
(rollout.cli) and the Python API (`memrl.train`), so both start a run the same way; the caller
maps the errors to exit codes or lets them raise."""

from __future__ import annotations

import signal
import threading
from typing import Any

from rich.console import Console
from rich.markup import escape

from rollout.config import ExperimentConfig, dump_config
from rollout.run_dir import RunDir, check_root


def check_before_start(cfg: ExperimentConfig, console: Console, resume: bool = False) -> None:
    """Refuse what cannot train, before Ray starts and before a run folder exists: a bad env id,
    an agent that cannot learn the task, a broken plug-in env, a run.dir that is a file, a
    missing or unfit warm-start source, a curriculum schedule on a task without sequences.
    Raises EnvSpecError, AgentError, RunDirError, WarmStartError or ConfigError; prints the env
    checker's warnings."""
    from agents.learner import check_clipping, resolve_device, use_cuda_graphs
    from rollout.trainer import probe_and_check
    from rollout.warm_start import warm_start

    if not resume:
        check_root(cfg.run.dir)  # a run.dir that is a file fails here, with nothing written
    probe, agent, warnings = probe_and_check(cfg)
    try:
        if cfg.env.curriculum_every_sequences and not hasattr(probe.unwrapped, "sample_batch"):
            from rollout.config import ConfigError

            raise ConfigError(
                f"'env.curriculum_every_sequences' counts training sequences, and env "
                f"'{cfg.env.id}' is not a sequence task (no sample_batch): use "
                "'env.curriculum_threshold'"
            )
        for warning in warnings:
            note = escape(f"env '{cfg.env.id}': {warning}")
            console.print(f"[yellow]memrl: warning:[/] {note}", highlight=False)
        use_cuda_graphs(cfg.learner, resolve_device(cfg.learner.device), agent)
        check_clipping(cfg.learner, agent)
        if cfg.run.init_from and not resume:
            warm_start(agent, cfg.run.init_from)
    finally:
        probe.close()


def _start_ray_keeping_sigterm(address: str | None, cfg: ExperimentConfig) -> bool:
    """ray.init gives the driver Ray's own SIGTERM handler (a stack dump, then the process dies
    without a checkpoint): the handler in place before (the CLI's: stop like Ctrl-C, saving a
    checkpoint; a library caller's own) is put back."""
    from rollout.ray_runtime import start_ray

    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM) if main_thread else None
    started = start_ray(address, cfg.rollout.num_workers, cfg.env.id)
    if main_thread and previous is not None:
        signal.signal(signal.SIGTERM, previous)
    return started


def train_run(
    cfg: ExperimentConfig,
    console: Console,
    run: RunDir | None = None,
    resume: bool = False,
    address: str | None = None,
    out: Console | None = None,
) -> tuple[RunDir, dict[str, Any]]:
    """Train `cfg` into `run` (None: a new run folder under run.dir), starting an embedded Ray or
    joining `address` when the run has rollout workers and Ray is not running yet (Ray started
    here is stopped here). Returns the run folder and the Trainer's summary. `out` gets the
    one-line summary at the end (default: stdout; the console itself when it is quiet)."""
    from rollout.ray_runtime import learner_placement_note, stop_ray
    from rollout.trainer import Trainer

    started = False
    try:
        if cfg.rollout.num_workers > 0:
            started = _start_ray_keeping_sigterm(address, cfg)
            note = learner_placement_note(cfg.learner.device)
            if note:
                console.print(note, highlight=False)
        if getattr(cfg.agent, "compile", False):
            console.print(
                "memrl: note: the first update compiles the training step (torch.compile; ~40 s "
                "on 2 CPU cores, seconds once cached; agent.compile=false skips it)",
                highlight=False,
            )
        if run is None:
            run = RunDir.create(cfg.run.dir, cfg.run.name, dump_config(cfg))
            console.print(f"run dir {run.path}", highlight=False)
        if out is None and console.quiet:
            out = console
        summary = Trainer(cfg, run, resume=resume, console=console, out=out).train()
    finally:
        if started:
            stop_ray()
    return run, summary
