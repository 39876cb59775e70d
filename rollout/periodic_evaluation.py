"""Evaluation during training, without pausing it, and the `best` checkpoint.

The trainer hands `PeriodicEvaluator.submit` a snapshot of the acting weights every
`run.eval_every_steps`; with `rollout.num_workers > 0` the episodes run on a separate Ray actor
(a `RolloutWorker` asking for no CPU of its own, so it never waits behind the rollout workers)
while training goes on, and `poll()` returns the figures once they are ready. One evaluation is
in flight at a time: a due evaluation waits until the previous one is back. With
`num_workers: 0` the evaluator runs in the driver and `submit` evaluates at once (the debugging
path, and what the tests use).

`save_best_checkpoint` writes `checkpoints/best/state.pt` (the evaluated weights, their
evaluation mean and env step) atomically, for `memrl evaluate --checkpoint best`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from envs.files import atomic_write
from rollout.checkpoints import MARKER
from rollout.config import ExperimentConfig
from rollout.worker import RolloutWorker

BEST = "best"


@dataclass
class EvalResult:
    env_steps: int  # the env step the evaluated weights were taken at
    score: float  # what model selection, stop_return and the curriculum compare
    figures: dict[str, float]  # logged to metrics.jsonl under these names
    weights: dict[str, torch.Tensor]
    returns: list[float] = field(default_factory=list)
    # with a curriculum evaluated at a fixed target (`env.eval_kwargs`): the score at the
    # current level, which moves the curriculum (the target's score picks the best weights)
    level_score: float | None = None

    @property
    def mean(self) -> float:
        return self.score


def episodic_result(
    env_steps: int,
    returns: list[float],
    weights: dict[str, torch.Tensor],
    level_returns: list[float] | None = None,
    costs: list[float] | None = None,
    level_costs: list[float] | None = None,
) -> EvalResult:
    """The result of one evaluation: scored on the mean return, or with `costs` (per-sequence
    cost in bits, `run.eval_metric: cost`) on minus their mean; the level's likewise."""
    mean = float(np.mean(returns))
    result = EvalResult(env_steps, mean, {"eval_return_mean": mean}, weights, returns)
    if costs is not None:
        cost = float(np.mean(costs))
        result.score = -cost
        result.figures["eval_cost_bits"] = cost
    if level_returns is not None:
        result.level_score = float(np.mean(level_returns))
        result.figures["eval_level_return_mean"] = result.level_score
    if level_costs is not None:
        level_cost = float(np.mean(level_costs))
        result.level_score = -level_cost
        result.figures["eval_level_cost_bits"] = level_cost
    return result


def snapshot(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A copy that later optimiser steps cannot change (CPU state dicts share storage)."""
    return {k: v.detach().cpu().clone() for k, v in weights.items()}


def save_best_checkpoint(
    folder: Path, weights: dict[str, torch.Tensor], eval_return: float, env_steps: int
) -> Path:
    """checkpoints/best/: state.pt replaced atomically, so a crash keeps the previous best."""
    best = folder / BEST
    best.mkdir(parents=True, exist_ok=True)
    state = {"best": {"agent": weights, "eval_return_mean": eval_return, "env_steps": env_steps}}
    atomic_write(best / "state.pt", lambda f: torch.save(state, f))
    if not (best / MARKER).is_file():
        atomic_write(best / MARKER, lambda f: f.write(b"ok\n"))
    return best


class PeriodicEvaluator:
    def __init__(self, cfg: ExperimentConfig, torch_threads: int):
        run = cfg.run
        self.episodes = run.eval_episodes
        self.seed = run.seed + 12345  # the same episodes at every evaluation
        self.cost = run.eval_metric == "cost"
        kwargs = {**cfg.env.kwargs, **cfg.env.eval_kwargs}
        args = (cfg.env.id, kwargs, cfg.agent, min(run.eval_episodes, 10))
        self.local: RolloutWorker | None = None
        self.actor: Any = None
        if cfg.rollout.num_workers == 0:
            # it shares this process (and its thread count) with the learner
            self.local = RolloutWorker(
                *args, seed=run.seed + 99991, torch_threads=torch_threads, evaluation=True
            )
        else:
            from rollout.ray_runtime import actor_folder, remote_worker_class

            cls = remote_worker_class(num_cpus=0, restarts=cfg.rollout.max_worker_restarts)
            self.actor = cls.remote(
                *args, seed=run.seed + 99991, evaluation=True, folder=actor_folder()
            )
        # the refs of the evaluation in flight (by episodic_result's argument names), the env
        # step and the weights it scores
        self.pending: tuple[dict[str, Any], int, dict[str, torch.Tensor]] | None = None
        self.ready: list[EvalResult] = []

    @property
    def busy(self) -> bool:
        return self.pending is not None

    def _calls(
        self, env_kwargs: dict[str, Any] | None, level_kwargs: dict[str, Any] | None
    ) -> list[tuple[str, dict[str, Any] | None, str]]:
        """(result name, env kwargs, worker method) of each evaluation call, in order: the
        level's first, then the evaluation kwargs'."""
        calls = []
        for prefix, kwargs in (("level_", level_kwargs), ("", env_kwargs)):
            if prefix and kwargs is None:
                continue
            calls.append((f"{prefix}returns", kwargs, "evaluate"))
            if self.cost:
                calls.append((f"{prefix}costs", kwargs, "evaluate_cost"))
        return calls

    def submit(
        self,
        weights: dict[str, torch.Tensor],
        env_steps: int,
        env_kwargs: dict[str, Any] | None = None,
        level_kwargs: dict[str, Any] | None = None,
    ) -> bool:
        """Start evaluating `weights` (snapshotted here) in envs built with `env_kwargs` (None:
        the evaluator's own), and first at `level_kwargs` when given (a curriculum's current
        level, while `env_kwargs` hold its target); False if one is still in flight."""
        if self.busy:
            return False
        weights = snapshot(weights)
        if self.local is not None:
            figures = {}
            for name, kwargs, method in self._calls(env_kwargs, level_kwargs):
                self.local.set_weights(weights, kwargs)
                figures[name] = getattr(self.local, method)(self.episodes, self.seed)
            self.ready.append(episodic_result(env_steps, weights=weights, **figures))
            return True
        refs = {}  # calls on one actor run in the order they are made
        for name, kwargs, method in self._calls(env_kwargs, level_kwargs):
            self.actor.set_weights.remote(weights, kwargs)
            refs[name] = getattr(self.actor, method).remote(self.episodes, self.seed)
        self.pending = (refs, env_steps, weights)
        return True

    def poll(self, block: bool = False) -> list[EvalResult]:
        """Finished evaluations, oldest first (waits for the one in flight when block)."""
        if self.pending is not None:
            import ray

            refs, env_steps, weights = self.pending
            last = list(refs.values())[-1]  # the actor ran the others before it
            done, _ = ray.wait([last], timeout=None if block else 0)
            if done:
                self.pending = None
                figures = {name: ray.get(ref) for name, ref in refs.items()}
                self.ready.append(episodic_result(env_steps, weights=weights, **figures))
        ready, self.ready = self.ready, []
        return ready

    def evaluate_now(
        self,
        weights: dict[str, torch.Tensor],
        env_steps: int,
        env_kwargs: dict[str, Any] | None = None,
        level_kwargs: dict[str, Any] | None = None,
    ) -> EvalResult:
        """A blocking evaluation (before training, at the end); earlier results stay queued."""
        queued = self.poll(block=True)
        self.submit(weights, env_steps, env_kwargs, level_kwargs)
        result = self.poll(block=True)[-1]
        self.ready = queued
        return result

    def close(self) -> None:
        if self.local is not None:
            self.local.close()
        if self.actor is not None:
            import ray

            if self.pending is not None:
                ray.wait(list(self.pending[0].values()), timeout=10)
            ray.kill(self.actor)
