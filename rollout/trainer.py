"""The training loop: data source -> learner -> weights (and curriculum level) back to the source.

One iteration (`Trainer._iteration`): collect the round the source drew, launch the next one
(`rollout.overlap`: sampling overlaps the update; the new weights, broadcast with one `ray.put`,
reach the workers for the round after it), learn, broadcast, evaluate when due, log, checkpoint.
Which source feeds the learner is the agent's choice (`agent.data_spec()`, rollout/sources.py);
how a run is evaluated is the task's (episodic return, a full pass over a dataset split, the
sequence tasks' generalisation report). Nothing here knows a particular agent or task.
"""

from __future__ import annotations

import copy
import math
import os
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console

import envs
from agents import AgentError, Learner, NonFiniteLossError, make_agent
from agents.sequence import SequenceAgent
from rollout.checkpoints import (
    CheckpointError,
    latest_checkpoint,
    load_latest_readable,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from rollout.config import ExperimentConfig, config_to_dict
from rollout.curriculum import Curriculum
from rollout.dataset_evaluation import DatasetEvaluator, format_split_table, write_split_report
from rollout.periodic_evaluation import EvalResult, PeriodicEvaluator, save_best_checkpoint
from rollout.progress import ProgressReport, stderr_console
from rollout.run_dir import MetricsLog, RunDir, truncate_metrics
from rollout.sources import (
    DataSource,
    GeneratedSource,
    Round,
    learns_from_dataset,
    make_source,
)
from rollout.warm_start import warm_start


class TrainingError(RuntimeError):
    """Training stopped on purpose (e.g. a NaN loss); the message says what and what is kept."""


def probe_and_check(cfg: ExperimentConfig) -> tuple[Any, Any, list[str]]:
    """Build one env and the agent for it, and refuse pairs that cannot work (AgentError,
    EnvSpecError). Returns (env, agent, the env checker's warnings); the caller closes the env.
    Shared by the CLI (before a run folder exists) and the Trainer."""
    probe = envs.make(cfg.env.id, **cfg.env.kwargs)
    try:
        agent = make_agent(cfg.agent, probe.observation_space, probe.action_space)
        agent.check_task(probe.unwrapped, cfg.env.id)
        if cfg.run.eval_metric == "cost":
            check_cost_metric(agent, probe.unwrapped, cfg)
        warnings = envs.check(cfg.env.id, cfg.env.kwargs) if cfg.env.check else []
    except BaseException:
        probe.close()
        raise
    return probe, agent, warnings


def check_cost_metric(agent: Any, task: Any, cfg: ExperimentConfig) -> None:
    """`run.eval_metric: cost` scores sequences drawn whole from the task's sampler with a
    sequence agent's own loss; refuse the pairs that have no such thing."""
    if not isinstance(agent, SequenceAgent) or not hasattr(task, "sample_batch"):
        raise AgentError(
            f"run.eval_metric: cost needs a sequence agent (ntm, lstm, stack_rnn) on a task that "
            f"draws whole sequences (sample_batch), such as memrl/PrioritySort-v0; agent "
            f"'{cfg.agent.name}' on env '{cfg.env.id}' has none: use run.eval_metric: return."
        )
    if learns_from_dataset(agent, task):
        raise AgentError(
            f"run.eval_metric: cost scores generated sequences, but env '{cfg.env.id}' serves "
            "fixed splits (the best weights are chosen on the 'valid' split's accuracy): use "
            "run.eval_metric: return."
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


@dataclass
class Counters:
    """What a run has consumed, each counted in its own unit (checkpointed)."""

    env_steps: int = 0
    episodes: int = 0  # complete RL episodes
    sequences: int = 0  # generated sequences
    examples: int = 0  # dataset examples
    epochs: int = 0  # dataset passes
    iterations: int = 0

    def add(self, data: Round) -> None:
        self.env_steps += data.env_steps
        self.episodes += data.episodes
        self.sequences += data.sequences
        self.examples += data.examples
        self.epochs += data.epochs
        self.iterations += 1

    @property
    def step(self) -> int:
        """The checkpoints' and metrics' position: env steps, or examples for datasets."""
        return self.env_steps + self.examples


@dataclass
class LoopState:
    """The state of one `train()` call that is not checkpointed."""

    next_eval: int = 0
    next_ckpt: int = 0
    last_log: float = 0.0
    window_start: float = 0.0
    window_steps: int = 0
    window_updates: int = 0
    broadcast_at: int = 0
    first_steps: int = 0
    stop_reason: str = ""
    evaluated: bool = False
    done: bool = False
    recent_returns: deque[float] = field(default_factory=lambda: deque(maxlen=100))


class Trainer:
    def __init__(
        self,
        cfg: ExperimentConfig,
        run: RunDir,
        resume: bool = False,
        console: Console | None = None,
        out: Console | None = None,
    ):
        self.cfg = cfg
        self.run_dir = run
        self.console = console or stderr_console()
        # the one-line summary at the end goes to stdout (scripts read it); the rest to stderr
        self.out = out or Console(soft_wrap=True)
        torch.manual_seed(cfg.run.seed)
        np.random.seed(cfg.run.seed)

        probe, self.agent, warnings = probe_and_check(cfg)
        for warning in warnings:
            self.console.print(f"env '{cfg.env.id}': {warning}", highlight=False, markup=False)
        for note in envs.adapter_notes(probe):  # Dict/Tuple flattened, images channels-first
            self.console.print(f"env '{cfg.env.id}': {note}", highlight=False, markup=False)
        self.task = probe.unwrapped
        # a supervised agent on a task with splits: dataset source, full-pass evaluation
        self.dataset_run = learns_from_dataset(self.agent, self.task)
        self.learner = Learner(self.agent, cfg.learner)
        if cfg.run.init_from and not resume:  # weights only, into the fresh learner's agent
            summary = warm_start(self.agent, cfg.run.init_from)
            self.console.print(summary, highlight=False, markup=False)
        threads = cfg.learner.torch_threads or learner_threads(self.agent)
        torch.set_num_threads(threads)

        self.counters = Counters()
        self.elapsed_before = 0.0
        self.best_eval: float | None = None
        self.last_eval: float | None = None
        self.last_eval_steps = 0
        self._start: float | None = None
        self.best_weights: dict[str, torch.Tensor] | None = None
        self.last_metrics: dict[str, float] = {}
        self.last_figures: dict[str, float] = {}
        self.loop = LoopState()
        self.curriculum = Curriculum(
            cfg.env.kwargs,
            cfg.env.curriculum,
            cfg.env.curriculum_threshold,
            cfg.env.curriculum_every_sequences,
            cfg.env.curriculum_patience,
        )
        # seconds spent per stage of the loop (logged as t_<stage>_s, cumulative)
        self.stage_s: dict[str, float] = dict.fromkeys(("wait", "replay", "update", "weights"), 0.0)

        state = self._restore() if resume else None
        # Fresh episodes on resume: workers get a seed no earlier run segment used.
        seed = cfg.run.seed * 1_000_003 + self.counters.iterations
        if self.dataset_run:
            self.evaluator: Any = DatasetEvaluator(self.agent, self.task, "valid")
        else:
            probe.close()
            # a Ray actor evaluating beside training (num_workers > 0), else in this process
            self.evaluator = PeriodicEvaluator(cfg, torch_threads=threads)
        self.source: DataSource = make_source(cfg, self.agent, self.task, seed, self.console)
        if state is not None:
            self._restore_source(state)

    # ----------------------------------------------------------------- compatibility
    @property
    def env_steps(self) -> int:
        return self.counters.env_steps

    @property
    def episodes(self) -> int:
        return self.counters.episodes

    @property
    def iterations(self) -> int:
        return self.counters.iterations

    @property
    def replay(self) -> Any:
        return self.source.replay

    @property
    def workers(self) -> Any:
        return getattr(self.source, "workers", None)

    # ----------------------------------------------------------------- checkpoints
    def _state(self) -> dict[str, Any]:
        return {
            "learner": self.learner.state_dict(),
            "counters": {
                **vars(self.counters),
                "elapsed_s": self.elapsed(),
                "best_eval": self.best_eval,
            },
            "rng": rng_state(),
            "source": self.source.state_dict(),
            "curriculum": self.curriculum.state_dict(),
        }

    def save(self) -> Path:
        replay = self.source.replay if self.cfg.run.save_replay else None
        return save_checkpoint(
            self.run_dir.checkpoints,
            self.counters.step,
            self._state(),
            replay,
            self.cfg.run.keep_checkpoints,
        )

    def _restore(self) -> dict[str, Any]:
        path, state, notes = load_latest_readable(self.run_dir.checkpoints)
        for note in notes:  # a damaged newest checkpoint: say which one is used instead
            self.console.print(f"memrl: note: {note}", highlight=False, markup=False)
        self.learner.load_state_dict(state["learner"])
        c = dict(state["counters"])
        self.elapsed_before, self.best_eval = c.pop("elapsed_s"), c.pop("best_eval")
        legacy_credit = c.pop("update_credit", None)
        fields = {k: int(v) for k, v in c.items() if k in vars(self.counters)}
        self.counters = Counters(**fields)
        if "sequences" not in c and hasattr(self.task, "sample_batch"):
            # checkpoints before the counters were split counted sequences as episodes
            self.counters.sequences, self.counters.episodes = self.counters.episodes, 0
        if "source" not in state and legacy_credit is not None:
            state["source"] = {"update_credit": legacy_credit, "replay_rng": state["replay_rng"]}
        set_rng_state(state["rng"])
        self.curriculum.load_state_dict(state.get("curriculum", {}))
        state["path"] = path
        key = "examples" if self.dataset_run else "env_steps"
        truncate_metrics(self.run_dir.metrics, self.counters.step, key)
        return state

    def _restore_source(self, state: dict[str, Any]) -> None:
        path = state["path"]
        self.source.load_state_dict(state.get("source", {}))
        if self.source.replay is not None and (path / "replay.npz").is_file():
            try:
                self.source.replay.load(path / "replay.npz")
            except (ValueError, OSError, KeyError, EOFError) as exc:  # damaged, or resized
                raise CheckpointError(
                    f"cannot restore the replay buffer from '{path / 'replay.npz'}': {exc}. A "
                    "resume keeps the run's rollout.num_workers and rollout.envs_per_worker."
                ) from None
        unit = "example" if self.dataset_run else "env step"
        self.console.print(f"resumed from {path} at {unit} {self.counters.step:,}", highlight=False)

    # ----------------------------------------------------------------- evaluation
    def elapsed(self) -> float:
        return self.elapsed_before + (
            time.monotonic() - self._start if self._start is not None else 0.0
        )

    def _eval_kwargs(self) -> dict[str, Any] | None:
        if not self.curriculum.active:
            return None
        return {**self.curriculum.env_kwargs(), **self.cfg.env.eval_kwargs}

    def _level_kwargs(self) -> dict[str, Any] | None:
        """The curriculum's current level, evaluated beside a fixed target (`env.eval_kwargs`):
        its score moves the level, as a curriculum advances on its own level's validation."""
        if not self.curriculum.active or not self.cfg.env.eval_kwargs:
            return None
        return {**self.curriculum.env_kwargs(), **self.cfg.env.curriculum_eval_kwargs}

    def evaluate(self) -> float:
        """Evaluate the current weights now, blocking (before training and at its end)."""
        for earlier in self.evaluator.poll(block=True):  # one still in flight counts for best
            self._record_eval(earlier)
        return self._evaluate_current()

    def _evaluate_current(self) -> float:
        """Evaluate the current weights now (nothing in flight any more)."""
        weights = self.agent.acting_state_dict()
        result = self.evaluator.evaluate_now(
            weights, self.counters.step, self._eval_kwargs(), self._level_kwargs()
        )
        return self._record_eval(result)

    def _final_evaluation(self, now: float) -> None:
        """Evaluate the final weights, unless this iteration already did. An evaluation of
        earlier weights that comes back now (or is still in flight) gets a row of its own at
        this step first, so every evaluation the best weights were chosen from is logged."""
        loop = self.loop
        for earlier in self.evaluator.poll(block=True):
            if loop.evaluated:
                self._log(now, keep_window=True)
            self._record_eval(earlier)
            loop.evaluated = True
        if loop.evaluated and self.last_eval_steps == self.counters.step:
            return  # the final weights were just evaluated
        if loop.evaluated:
            self._log(now, keep_window=True)
        self._evaluate_current()  # the poll above left nothing in flight
        loop.evaluated = True

    def _record_eval(self, result: EvalResult) -> float:
        self.last_eval, self.last_eval_steps = result.score, result.env_steps
        self.last_figures = result.figures
        # >=: among equally good evaluations keep the latest, most trained weights
        if self.best_eval is None or self.last_eval >= self.best_eval:
            self.best_eval = self.last_eval
            self.best_weights = result.weights
            save_best_checkpoint(
                self.run_dir.checkpoints, result.weights, result.score, result.env_steps
            )
        self.agent.on_evaluation({"score": result.score, **result.figures})
        on_evaluation = getattr(self.learner, "on_evaluation", None)
        if on_evaluation is not None:  # step-on-plateau learning-rate schedules
            on_evaluation(result.score)
        level_score = result.score if result.level_score is None else result.level_score
        if self.curriculum.update(level_score):
            n = self.curriculum.patience
            back = f"{n} evaluation{'s' if n > 1 else ''} earlier"
            stall = f", below the score {back}" if self.curriculum.stalled else ""
            self._level_moved(f"evaluation score {level_score:.4g}{stall}")
        return self.last_eval

    def _level_moved(self, cause: str) -> None:
        """Say the curriculum's new level and send it to the workers with the weights."""
        self.console.print(
            f"curriculum: level {self.curriculum.level + 1}/{len(self.curriculum.levels)} "
            f"({self.curriculum.env_kwargs()}) after {cause}",
            highlight=False,
        )
        self._broadcast()

    def best_agent(self) -> Any:
        """A copy of the agent with the weights of its best evaluation (model selection on the
        evaluation episodes; the final weights can sit in a late spike)."""
        best = copy.deepcopy(self.agent)
        if self.best_weights is not None:
            best.load_acting_state_dict(self.best_weights)
        return best

    # ----------------------------------------------------------------- the loop
    def _clock(self) -> tuple[int, int]:
        """(counter, evaluation interval) for the source's schedule: env steps, or epochs."""
        if self.source.clock == "epochs":
            return self.counters.epochs, self.cfg.run.eval_every_epochs
        return self.counters.env_steps, self.cfg.run.eval_every_steps

    def _checkpoint_clock(self) -> tuple[int, int]:
        if self.source.clock == "epochs":  # a checkpoint at every evaluation
            return self.counters.epochs, self.cfg.run.eval_every_epochs
        return self.counters.env_steps, self.cfg.run.checkpoint_every_steps

    def _budgets(self) -> list[tuple[str, str, int]]:
        """(counter, unit, run.total_<counter>) for every budget; the config names them alike."""
        return [
            (counter, counter.replace("_", " "), getattr(self.cfg.run, f"total_{counter}"))
            for counter in ("env_steps", "episodes", "sequences", "epochs")
        ]

    def _progress(self) -> tuple[str, int, Any]:
        """What the progress bar counts: the budget set in the source's unit, else the first set
        of epochs, sequences, episodes, env steps."""
        c = self.counters
        budgets = [b for b in reversed(self._budgets()) if b[2] > 0]
        budgets.sort(key=lambda b: b[1] != self.source.unit)  # stable: the source's unit first
        if not budgets:
            return self.source.unit, 0, lambda: c.step
        counter, unit, total = budgets[0]
        return unit, total, lambda: getattr(c, counter)

    def _budget_reached(self) -> str:
        for counter, _, total in self._budgets():
            if 0 < total <= getattr(self.counters, counter):
                return f"total_{counter} reached"
        return ""

    def _broadcast(self) -> None:
        start = time.perf_counter()
        kwargs = self.curriculum.env_kwargs() if self.curriculum.active else None
        self.source.set_weights(self.agent.acting_state_dict(), kwargs)
        self.loop.broadcast_at = self.learner.updates
        self.stage_s["weights"] += time.perf_counter() - start

    def _next_multiple(self, clock: tuple[int, int]) -> int:
        value, every = clock
        return (value // every + 1) * every if every > 0 else 0

    def _iteration(self) -> None:
        cfg, loop = self.cfg, self.loop
        start = time.perf_counter()
        data = self.source.collect()
        self.stage_s["wait"] += time.perf_counter() - start
        self.counters.add(data)
        loop.recent_returns.extend(data.episode_returns)
        if self.curriculum.schedule(self.counters.sequences):
            self._level_moved(f"{self.counters.sequences:,} sequences")
        budget = self._budget_reached()
        if cfg.rollout.overlap and not budget:
            self.source.launch()
        # epoch-counted lr milestones see the epochs done before this round's batches
        self.learner.set_progress(epochs=self.counters.epochs - data.epochs)
        metrics = self.source.learn(data, self.learner, self.counters.env_steps, self.stage_s)
        if metrics:
            self.last_metrics = metrics
        self.agent.on_env_steps(self.counters.env_steps)
        if self.learner.updates - loop.broadcast_at >= cfg.rollout.weights_every:
            self._broadcast()
        self._evaluate_if_due()
        loop.done = bool(budget) or self._stop_early()
        if budget and not loop.stop_reason:
            loop.stop_reason = budget
        now = time.monotonic()  # the row's rates leave out the final evaluation's time
        if loop.done and not loop.stop_reason.startswith("evaluation"):
            self._final_evaluation(now)  # it belongs to this last row
        self._log(now)
        if loop.next_ckpt and self._checkpoint_clock()[0] >= loop.next_ckpt and not loop.done:
            loop.next_ckpt = self._next_multiple(self._checkpoint_clock())
            self.save()
        if not loop.done and not cfg.rollout.overlap:
            self.source.launch()

    def _evaluate_if_due(self) -> None:
        loop = self.loop
        loop.evaluated = False  # a due evaluation starts once the previous one is back
        if loop.next_eval and self._clock()[0] >= loop.next_eval and not self.evaluator.busy:
            loop.next_eval = self._next_multiple(self._clock())
            weights = self.agent.acting_state_dict()
            self.evaluator.submit(
                weights, self.counters.step, self._eval_kwargs(), self._level_kwargs()
            )
        for result in self.evaluator.poll():
            self._record_eval(result)
            loop.evaluated = True

    def _stop_early(self) -> bool:
        run, loop = self.cfg.run, self.loop
        if run.stop_return is not None and loop.evaluated and self.last_eval >= run.stop_return:
            what = "accuracy" if self.dataset_run else "return"
            if run.eval_metric == "cost":
                what = "score (minus the cost in bits)"
            loop.stop_reason = (
                f"evaluation {what} {self.last_eval:.4g} >= stop_return {run.stop_return:g}"
            )
            return True
        recent = loop.recent_returns
        if (
            run.stop_train_return is not None
            and len(recent) == recent.maxlen
            and float(np.mean(recent)) >= run.stop_train_return
        ):
            loop.stop_reason = (
                f"mean return of the last {recent.maxlen} training episodes "
                f"{float(np.mean(recent)):.4g} >= stop_train_return {run.stop_train_return:g}"
            )
            return True
        if run.max_time_s > 0 and self.elapsed() >= run.max_time_s:
            loop.stop_reason = f"max_time_s {run.max_time_s:g} reached"
            return True
        return False

    def _row(self, steps_per_s: float) -> dict[str, Any]:
        row: dict[str, Any] = {
            "env_steps": self.counters.env_steps,
            "iteration": self.counters.iterations,
            "updates": self.learner.updates,
            "episodes": self.counters.episodes,
        }
        for name in ("sequences", "examples", "epochs"):
            if getattr(self.counters, name):
                row[name] = getattr(self.counters, name)
        row.update(
            {
                "time_s": round(self.elapsed(), 3),
                "steps_per_s": round(steps_per_s, 1),
                "worker_restarts": self.source.restarts,
            }
        )
        row.update({f"t_{k}_s": round(v, 3) for k, v in self.stage_s.items()})
        if self.loop.recent_returns:
            row["return_mean"] = float(np.mean(self.loop.recent_returns))
        if self.curriculum.active:
            row["curriculum_level"] = self.curriculum.level
        row.update({k: v for k, v in self.last_metrics.items() if math.isfinite(v)})
        return row

    def _eval_row(self, row: dict[str, Any]) -> dict[str, Any]:
        row.update(self.last_figures)
        row["eval_score"] = self.last_eval
        row["eval_env_steps"] = self.last_eval_steps  # when the weights were taken
        return row

    def _log(self, now: float, keep_window: bool = False) -> None:
        """A metrics row when one is due (with the latest evaluation's figures when one came
        back); `keep_window`: the next row repeats this one's rates (two rows at one step)."""
        loop = self.loop
        if loop.evaluated or loop.done or now - loop.last_log >= self.cfg.run.log_every_s:
            span = max(now - loop.window_start, 1e-9)
            row = self._row((self.counters.step - loop.window_steps) / span)
            row["updates_per_s"] = round((self.learner.updates - loop.window_updates) / span, 2)
            self.log.write(
                self._eval_row(row) if loop.evaluated else row,
                learner_keys=self.last_metrics.keys(),
                eval_keys=self.last_figures.keys(),
            )
            if not keep_window:
                loop.last_log, loop.window_start, loop.window_steps = now, now, self.counters.step
                loop.window_updates = self.learner.updates
        self.report.update(
            self.progress_value(),
            {
                "steps/s": (self.counters.step - loop.first_steps) / max(now - self._start, 1e-9),
                "return": self._recent_mean(),
                "eval": self.last_eval,
                "loss": self.last_metrics.get("loss"),
                **{
                    key.replace("_", " "): self.last_metrics.get(key)
                    for key in self.agent.progress_metrics
                },
            },
        )

    def train(self) -> dict[str, Any]:
        run = self.cfg.run
        self.log = MetricsLog(self.run_dir)
        self.log.write_hparams(config_to_dict(self.cfg))
        unit, total, self.progress_value = self._progress()
        self.report = ProgressReport(
            total, self.progress_value(), self.console, run.log_every_s, unit
        )
        self._start = time.monotonic()
        self.loop = LoopState(
            next_eval=self._next_multiple(self._clock()),
            next_ckpt=self._next_multiple(self._checkpoint_clock()),
            window_start=time.monotonic(),
            window_steps=self.counters.step,
            window_updates=self.learner.updates,
            first_steps=self.counters.step,
        )
        self._broadcast()
        self.source.launch()
        try:
            while not self.loop.done:
                self._iteration()
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
            self.report.close()
            path = self.save()
            from rollout.submit import resume_command

            self.console.print(
                f"interrupted; saved {path}. Continue with: {resume_command(self.run_dir.path)}",
                highlight=False,
                markup=False,
            )
            raise
        finally:
            self.report.close()
            self.log.close()
            self.source.close()
            self.evaluator.close()
        self._final_report()
        return self._summary(checkpoint)

    def _final_report(self) -> None:
        """The task's own end-of-run evaluation, with the best weights (or the final ones, by
        `run.report_weights`): a full pass over the test split (dataset tasks) or the
        generalisation report (sequence tasks)."""
        folder = self.run_dir.path / "evaluation" / "final"
        if self.cfg.run.report_weights == "final":
            agent = copy.deepcopy(self.agent)
        else:
            agent = self.best_agent()
        if self.dataset_run:
            report = write_split_report(agent, self.task, "test", folder)
            self.console.print(format_split_table(report, "test"), highlight=False)
        elif isinstance(self.source, GeneratedSource) and getattr(self.task, "report_variants", ()):
            from rollout.sequence_report import format_table, write_report

            report = write_report(
                agent,
                self.cfg.env.id,
                {**self.cfg.env.kwargs, **self.cfg.env.eval_kwargs},
                folder,
                seed=self.cfg.run.seed,
                weights=self.cfg.run.report_weights,
            )
            self.console.print(format_table(report), highlight=False)

    def _summary(self, checkpoint: Path) -> dict[str, Any]:
        run, c = self.cfg.run, self.counters
        summary = {
            "run_dir": str(self.run_dir.path),
            "stop_reason": self.loop.stop_reason,
            "env_steps": c.env_steps,
            "updates": self.learner.updates,
            "episodes": c.episodes,
            "sequences": c.sequences,
            "examples": c.examples,
            "epochs": c.epochs,
            "time_s": round(self.elapsed(), 2),
            "eval_return_mean": self.last_eval,
            "eval_score": self.last_eval,
            "best_eval_return": self.best_eval,
            "checkpoint": str(checkpoint),
        }
        counted = ", ".join(
            f"{value:,} {name.replace('_', ' ')}"
            for name, value in (
                ("env_steps", c.env_steps),
                ("episodes", c.episodes),
                ("sequences", c.sequences),
                ("examples", c.examples),
                ("epochs", c.epochs),
            )
            if value
        )
        how = "valid split" if self.dataset_run else f"{run.eval_episodes} episodes"
        self.out.print(
            f"done: {self.loop.stop_reason}; {counted}, {self.learner.updates:,} updates in "
            f"{summary['time_s']:.1f} s; evaluation {'accuracy' if self.dataset_run else 'return'} "
            f"{self.last_eval:.4g} (best {self.best_eval:.4g}; {how}); "
            f"run dir {self.run_dir.path}",
            highlight=False,
            markup=False,
        )
        return summary

    def _recent_mean(self) -> float | None:
        rr = self.loop.recent_returns
        return float(np.mean(rr)) if rr else None
