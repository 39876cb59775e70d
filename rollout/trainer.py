"""The training loop: rollout workers -> (replay) -> learner -> weights back to the workers.

Sampling of the next batch overlaps the learner's update on the current one
(`rollout.overlap`): the next `sample` is launched before the update, and the new weights,
broadcast with one `ray.put`, reach the workers for the batch after it.
"""

from __future__ import annotations

import copy
import math
import os
import time
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console

import envs
from agents import AgentError, Learner, NonFiniteLossError, make_agent
from rollout.checkpoints import (
    CheckpointError,
    latest_checkpoint,
    load_latest_readable,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from rollout.config import ExperimentConfig
from rollout.frame_replay import FrameReplayBuffer
from rollout.periodic_evaluation import EvalResult, PeriodicEvaluator, save_best_checkpoint
from rollout.progress import ProgressReport, stderr_console
from rollout.replay import ReplayBuffer
from rollout.run_dir import MetricsLog, RunDir, truncate_metrics
from rollout.worker import Batch, merge_batches
from rollout.worker_group import WorkerGroup


class TrainingError(RuntimeError):
    """Training stopped on purpose (e.g. a NaN loss); the message says what and what is kept."""


def check_compatible(cfg: ExperimentConfig, env: Any, agent: Any) -> None:
    """Refuse env/agent pairs that cannot work, with the reason (raises AgentError)."""
    task = env.unwrapped
    if agent.batch_kind == "sequences" and not hasattr(task, "sample_batch"):
        raise AgentError(
            f"agent '{cfg.agent.name}' learns from whole sequences, but env '{cfg.env.id}' has no "
            "sample_batch(batch_size, rng); use a memrl sequence task such as memrl/Copy-v0."
        )
    needed = getattr(task, "memory_slots_needed", None)
    slots = getattr(cfg.agent, "memory_n", None)
    if needed is not None and slots is not None and needed > slots:
        raise AgentError(
            f"env '{cfg.env.id}' with {cfg.env.kwargs or 'its defaults'} needs {needed} memory rows "
            f"to hold its input, but agent.memory_n is {slots}: raise agent.memory_n or shorten the task."
        )


def learner_threads(agent: torch.nn.Module) -> int:
    """Torch threads for a CPU learner. Small models (< 1M parameters: MLPs, the NTM) run
    fastest on one thread: on CartPole DQN, 2 threads were 1.6x slower than 1 on a 2-core
    machine. Larger ones (the Atari CNN) get every core: at DQN's replay ratios the learner is the
    bottleneck and the workers mostly wait for it (Pong on 2 cores: 35.8 updates/s on one thread
    beside one worker, see benchmarks/results/rollout_throughput.json)."""
    if sum(p.numel() for p in agent.parameters()) < 1_000_000:
        return 1
    return os.cpu_count() or 1


class Trainer:
    def __init__(
        self,
        cfg: ExperimentConfig,
        run: RunDir,
        resume: bool = False,
        console: Console | None = None,
    ):
        self.cfg = cfg
        self.run_dir = run
        self.console = console or stderr_console()
        run_cfg = cfg.run
        torch.manual_seed(run_cfg.seed)
        np.random.seed(run_cfg.seed)
        self.rng = np.random.default_rng(run_cfg.seed)

        probe = envs.make(cfg.env.id, **cfg.env.kwargs)
        self.agent = make_agent(cfg.agent, probe.observation_space, probe.action_space)
        check_compatible(cfg, probe, self.agent)
        for warning in envs.check(cfg.env.id, cfg.env.kwargs) if cfg.env.check else []:
            self.console.print(f"env '{cfg.env.id}': {warning}", highlight=False, markup=False)
        probe.close()
        self.learner = Learner(self.agent, cfg.learner)
        threads = cfg.learner.torch_threads or learner_threads(self.agent)
        torch.set_num_threads(threads)

        self.env_steps = 0
        self.iterations = 0
        self.episodes = 0
        self.elapsed_before = 0.0
        self.update_credit = 0.0
        self.best_eval: float | None = None
        self.last_eval: float | None = None
        self.recent_returns: deque[float] = deque(maxlen=100)
        self._start: float | None = None
        self.best_weights: dict[str, torch.Tensor] | None = None
        self.last_metrics: dict[str, float] = {}

        self.replay: ReplayBuffer | FrameReplayBuffer | None = None
        self.spec = self.agent.replay_spec()
        if self.agent.batch_kind == "transitions":
            if self.spec is None:
                raise TrainingError(
                    f"agent '{cfg.agent.name}' learns from transitions but has no replay spec"
                )
            streams = max(1, cfg.rollout.num_workers) * cfg.rollout.envs_per_worker
            stack = envs.frame_stack(cfg.env.id, cfg.env.kwargs)
            if stack:  # Atari: each frame stored once, stacks rebuilt at sample time
                self.replay = FrameReplayBuffer(
                    self.spec.capacity, streams, stack, self.spec.n_step, self.spec.gamma
                )
            else:
                self.replay = ReplayBuffer(
                    self.spec.capacity, streams, self.spec.n_step, self.spec.gamma
                )
        # seconds spent per stage of the loop (logged as t_<stage>_s, cumulative)
        self.stage_s: dict[str, float] = dict.fromkeys(("wait", "replay", "update", "weights"), 0.0)

        if resume:
            self._restore()
        # a Ray actor evaluating beside training (num_workers > 0), else in this process
        self.evaluator = PeriodicEvaluator(cfg, torch_threads=threads)
        self.last_eval_steps = 0
        # Fresh episodes on resume: workers get a seed no earlier run segment used.
        self.workers = WorkerGroup(
            cfg, seed=run_cfg.seed * 1_000_003 + self.iterations, console=self.console
        )

    # ----------------------------------------------------------------- checkpoints
    def _state(self) -> dict[str, Any]:
        return {
            "learner": self.learner.state_dict(),
            "counters": {
                "env_steps": self.env_steps,
                "iterations": self.iterations,
                "episodes": self.episodes,
                "elapsed_s": self.elapsed(),
                "update_credit": self.update_credit,
                "best_eval": self.best_eval,
            },
            "rng": rng_state(),
            "replay_rng": self.rng.bit_generator.state,
        }

    def save(self) -> Path:
        replay = self.replay if self.cfg.run.save_replay else None
        return save_checkpoint(
            self.run_dir.checkpoints,
            self.env_steps,
            self._state(),
            replay,
            self.cfg.run.keep_checkpoints,
        )

    def _restore(self) -> None:
        path, state, notes = load_latest_readable(self.run_dir.checkpoints)
        for note in notes:  # a damaged newest checkpoint: say which one is used instead
            self.console.print(f"memrl: note: {note}", highlight=False, markup=False)
        self.learner.load_state_dict(state["learner"])
        c = state["counters"]
        self.env_steps, self.iterations, self.episodes = (
            c["env_steps"],
            c["iterations"],
            c["episodes"],
        )
        self.elapsed_before, self.update_credit, self.best_eval = (
            c["elapsed_s"],
            c["update_credit"],
            c["best_eval"],
        )
        set_rng_state(state["rng"])
        self.rng.bit_generator.state = state["replay_rng"]
        if self.replay is not None and (path / "replay.npz").is_file():
            try:
                self.replay.load(path / "replay.npz")
            except (ValueError, OSError, KeyError, EOFError) as exc:  # damaged, or resized
                raise CheckpointError(
                    f"cannot restore the replay buffer from '{path / 'replay.npz'}': {exc}. A "
                    "resume keeps the run's rollout.num_workers and rollout.envs_per_worker."
                ) from None
        truncate_metrics(self.run_dir.metrics, self.env_steps)
        self.console.print(f"resumed from {path} at env step {self.env_steps:,}", highlight=False)

    # ----------------------------------------------------------------- the loop
    def elapsed(self) -> float:
        return self.elapsed_before + (
            time.monotonic() - self._start if self._start is not None else 0.0
        )

    def _learn(self, batches: list[Batch]) -> dict[str, float]:
        new_steps = sum(b.env_steps for b in batches)
        metrics: dict[str, float] = {}
        if self.replay is None:
            start = time.perf_counter()
            metrics = self.learner.update(merge_batches(batches))
            self.stage_s["update"] += time.perf_counter() - start
            return metrics
        start = time.perf_counter()
        per_worker = self.cfg.rollout.envs_per_worker  # worker i's envs are streams i*n ...
        finals = [
            (t, i * per_worker + e, f) for i, b in enumerate(batches) for t, e, f in b.final_frames
        ]
        for i, b in enumerate(batches):
            if b.fresh:  # a new or replaced worker, or a resumed run: its streams start afresh
                self.replay.cut_streams(range(i * per_worker, (i + 1) * per_worker))
        self.replay.add(merge_batches(batches), finals)
        if self.env_steps < self.spec.learning_starts:
            self.stage_s["replay"] += time.perf_counter() - start
            return metrics
        self.update_credit += self.spec.replay_ratio * new_steps
        for _ in range(int(self.update_credit)):
            sample = self.replay.sample(self.spec.batch_size, self.rng)
            now = time.perf_counter()
            self.stage_s["replay"] += now - start
            metrics = self.learner.update(sample)
            start = time.perf_counter()
            self.stage_s["update"] += start - now
        self.stage_s["replay"] += time.perf_counter() - start
        self.update_credit -= int(self.update_credit)
        return metrics

    def evaluate(self) -> float:
        """Evaluate the current weights now, blocking (before training and at its end)."""
        for earlier in self.evaluator.poll(block=True):  # one still in flight counts for best
            self._record_eval(earlier)
        result = self.evaluator.evaluate_now(self.agent.acting_state_dict(), self.env_steps)
        return self._record_eval(result)

    def _record_eval(self, result: EvalResult) -> float:
        self.last_eval, self.last_eval_steps = result.mean, result.env_steps
        # >=: among equally good evaluations keep the latest, most trained weights
        if self.best_eval is None or self.last_eval >= self.best_eval:
            self.best_eval = self.last_eval
            self.best_weights = result.weights
            save_best_checkpoint(
                self.run_dir.checkpoints, result.weights, result.mean, result.env_steps
            )
        return self.last_eval

    def best_agent(self) -> Any:
        """A copy of the agent with the weights of its best evaluation (model selection on the
        evaluation episodes; the final weights can sit in a late spike)."""
        best = copy.deepcopy(self.agent)
        if self.best_weights is not None:
            best.load_acting_state_dict(self.best_weights)
        return best

    def _row(self, steps_per_s: float) -> dict[str, Any]:
        row: dict[str, Any] = {
            "env_steps": self.env_steps,
            "iteration": self.iterations,
            "updates": self.learner.updates,
            "episodes": self.episodes,
            "time_s": round(self.elapsed(), 3),
            "steps_per_s": round(steps_per_s, 1),
            "worker_restarts": self.workers.restarts,
        }
        row.update({f"t_{k}_s": round(v, 3) for k, v in self.stage_s.items()})
        if self.recent_returns:
            row["return_mean"] = float(np.mean(self.recent_returns))
        row.update({k: v for k, v in self.last_metrics.items() if math.isfinite(v)})
        return row

    def train(self) -> dict[str, Any]:
        cfg, run = self.cfg, self.cfg.run
        log = MetricsLog(self.run_dir)
        # a sequence budget (total_episodes) is what the bar counts when one is set
        by_episodes = run.total_episodes > 0
        unit, total = (
            ("episodes", run.total_episodes) if by_episodes else ("env steps", run.total_env_steps)
        )
        progress = (lambda: self.episodes) if by_episodes else (lambda: self.env_steps)
        report = ProgressReport(total, progress(), self.console, run.log_every_s, unit)
        self._start = time.monotonic()
        first_steps = self.env_steps
        next_eval = self._next_multiple(run.eval_every_steps)
        next_ckpt = self._next_multiple(run.checkpoint_every_steps)
        last_log, window_start, window_steps = 0.0, time.monotonic(), self.env_steps
        window_updates = self.learner.updates
        stop_reason = "total_env_steps reached"
        self.workers.set_weights(self.agent.acting_state_dict())
        broadcast_at = self.learner.updates
        self.workers.launch(cfg.rollout.steps_per_sample)
        try:
            while True:
                start = time.perf_counter()
                batches = self.workers.collect()
                self.stage_s["wait"] += time.perf_counter() - start
                for b in batches:
                    self.env_steps += b.env_steps
                    self.episodes += len(b.episode_returns) + b.sequences
                    self.recent_returns.extend(b.episode_returns)
                self.iterations += 1
                last_round = (
                    self.env_steps >= run.total_env_steps or 0 < run.total_episodes <= self.episodes
                )
                if last_round and self.env_steps < run.total_env_steps:
                    stop_reason = "total_episodes reached"
                if cfg.rollout.overlap and not last_round:
                    self.workers.launch(cfg.rollout.steps_per_sample)
                metrics = self._learn(batches)
                if metrics:
                    self.last_metrics = metrics
                self.agent.on_env_steps(self.env_steps)
                if self.learner.updates - broadcast_at >= cfg.rollout.weights_every:
                    start = time.perf_counter()
                    self.workers.set_weights(self.agent.acting_state_dict())
                    broadcast_at = self.learner.updates
                    self.stage_s["weights"] += time.perf_counter() - start

                evaluated = False  # a due evaluation starts once the previous one is back
                if next_eval and self.env_steps >= next_eval and not self.evaluator.busy:
                    next_eval = self._next_multiple(run.eval_every_steps)
                    self.evaluator.submit(self.agent.acting_state_dict(), self.env_steps)
                for result in self.evaluator.poll():
                    self._record_eval(result)
                    evaluated = True
                reached = (
                    run.stop_return is not None and evaluated and self.last_eval >= run.stop_return
                )
                if reached:
                    stop_reason = (
                        f"evaluation return {self.last_eval:.4g} >= stop_return {run.stop_return:g}"
                    )
                timed_out = run.max_time_s > 0 and self.elapsed() >= run.max_time_s
                if timed_out:
                    stop_reason = f"max_time_s {run.max_time_s:g} reached"
                done = last_round or reached or timed_out

                now = time.monotonic()
                if evaluated or done or now - last_log >= run.log_every_s:
                    span = max(now - window_start, 1e-9)
                    row = self._row((self.env_steps - window_steps) / span)
                    row["updates_per_s"] = round((self.learner.updates - window_updates) / span, 2)
                    if evaluated:
                        row["eval_return_mean"] = self.last_eval
                        row["eval_env_steps"] = self.last_eval_steps  # when the weights were taken
                    log.write(row)
                    last_log, window_start, window_steps = now, now, self.env_steps
                    window_updates = self.learner.updates
                if next_ckpt and self.env_steps >= next_ckpt and not done:
                    next_ckpt = self._next_multiple(run.checkpoint_every_steps)
                    self.save()
                report.update(
                    progress(),
                    {
                        "steps/s": (self.env_steps - first_steps) / max(now - self._start, 1e-9),
                        "return": self._recent_mean(),
                        "eval": self.last_eval,
                        "loss": self.last_metrics.get("loss"),
                        "bit errors": self.last_metrics.get("bit_errors"),
                    },
                )
                if done:
                    break
                if not cfg.rollout.overlap:
                    self.workers.launch(cfg.rollout.steps_per_sample)
            if not (stop_reason.startswith("evaluation")):
                self.evaluate()
                row = self._row(0.0)
                row["eval_return_mean"] = self.last_eval
                row["eval_env_steps"] = self.last_eval_steps
                log.write(row)
            checkpoint = self.save()
        except NonFiniteLossError as exc:
            last = latest_checkpoint(self.run_dir.checkpoints)
            kept = (
                f"the last good checkpoint is {last}"
                if last
                else "no checkpoint had been written yet"
            )
            raise TrainingError(f"training stopped: {exc} {kept}.") from None
        except CheckpointError as exc:
            raise TrainingError(f"training stopped: {exc}") from None
        except KeyboardInterrupt:
            report.close()
            path = self.save()
            self.console.print(
                f"interrupted; saved {path}. Continue with: memrl train --resume {self.run_dir.path}"
            )
            raise
        finally:
            report.close()
            log.close()
            self.workers.close()
            self.evaluator.close()
        if self.agent.batch_kind == "sequences":
            from rollout.sequence_report import format_table, write_report

            report = write_report(
                self.best_agent(),
                cfg.env.id,
                cfg.env.kwargs,
                self.run_dir.path / "evaluation" / "final",
                seed=run.seed,
            )
            self.console.print(format_table(report), highlight=False)
        summary = {
            "run_dir": str(self.run_dir.path),
            "stop_reason": stop_reason,
            "env_steps": self.env_steps,
            "updates": self.learner.updates,
            "episodes": self.episodes,
            "time_s": round(self.elapsed(), 2),
            "eval_return_mean": self.last_eval,
            "best_eval_return": self.best_eval,
            "checkpoint": str(checkpoint),
        }
        self.console.print(
            f"done: {stop_reason}; {self.env_steps:,} env steps, {self.episodes:,} episodes, "
            f"{self.learner.updates:,} updates in "
            f"{summary['time_s']:.1f} s; evaluation return {self.last_eval:.4g} "
            f"({run.eval_episodes} episodes); run dir {self.run_dir.path}",
            highlight=False,
        )
        return summary

    def _recent_mean(self) -> float | None:
        return float(np.mean(self.recent_returns)) if self.recent_returns else None

    def _next_multiple(self, every: int) -> int:
        return (self.env_steps // every + 1) * every if every > 0 else 0
