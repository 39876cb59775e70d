"""Data sources: where the learner's batches come from, chosen by the agent's `data_spec()`.

| spec (agents/base.py) | source            | the batches                                             |
|-----------------------|-------------------|---------------------------------------------------------|
| ReplaySpec            | TransitionSource  | workers step envs -> replay buffer -> sampled batches    |
| EpisodeSpec           | EpisodeSource     | workers return whole episodes (+ extras, targets)        |
| SupervisedSpec        | GeneratedSource   | workers call the task's sampler (`sample_batch`)          |
| SupervisedSpec        | DatasetSource     | the task's train split (`dataset("train")`), in the driver |

A SupervisedSpec goes to the dataset source when the task has fixed splits, else to the
generated one. One protocol serves all: `launch()` starts drawing the next round (so sampling
overlaps the learner's update), `collect()` returns it with what it counts, `learn()` feeds it to
the learner, `set_weights()` sends weights (and the curriculum's env kwargs) to the workers.
A source for data that does not fit one machine (Ray Data) implements the same five calls.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

import envs
from agents import AgentError, EpisodeSpec, ReplaySpec, SupervisedSpec
from rollout.batches import Batch, merge_batches
from rollout.config import ExperimentConfig
from rollout.frame_replay_buffer import FrameReplayBuffer
from rollout.replay_buffer import ReplayBuffer
from rollout.worker_group import WorkerGroup


@dataclass
class Round:
    """One iteration's data and what it counts."""

    batches: list[Batch]
    env_steps: int = 0
    episodes: int = 0  # complete RL episodes
    sequences: int = 0  # generated sequences
    examples: int = 0  # dataset examples
    epochs: int = 0  # dataset passes completed in this round
    episode_returns: list[float] = field(default_factory=list)


def _round(batches: list[Batch]) -> Round:
    return Round(
        batches,
        env_steps=sum(b.env_steps for b in batches),
        episodes=sum(len(b.episode_returns) for b in batches),
        sequences=sum(b.sequences for b in batches),
        episode_returns=[r for b in batches for r in b.episode_returns],
    )


class DataSource:
    """Base: the five calls the trainer makes, plus checkpointed state."""

    unit = "env steps"  # what the progress bar counts by default
    clock = "env_steps"  # the counter evaluation and checkpoint intervals use
    replay: ReplayBuffer | FrameReplayBuffer | None = None

    def launch(self) -> None:
        """Start drawing the next round (returns at once where the workers run remotely)."""

    def collect(self) -> Round:
        raise NotImplementedError

    def learn(self, data: Round, learner: Any, env_steps: int, stage_s: dict) -> dict:
        """Update the learner on `data`; returns the last update's metrics ({} if none)."""
        start = time.perf_counter()
        metrics = learner.update(merge_batches(data.batches))
        stage_s["update"] += time.perf_counter() - start
        return metrics

    def set_weights(
        self, weights: dict[str, torch.Tensor], env_kwargs: dict[str, Any] | None = None
    ) -> None:
        """Acting weights to whoever draws data with the agent (nobody, for datasets)."""

    @property
    def restarts(self) -> int:
        return 0

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass

    def close(self) -> None:
        pass


class WorkerSource(DataSource):
    """Sources whose data the rollout workers draw with `method(arg)`."""

    method = ""

    def __init__(self, workers: WorkerGroup, arg: int):
        self.workers, self.arg = workers, arg

    def launch(self) -> None:
        self.workers.launch(self.method, self.arg)

    def collect(self) -> Round:
        return _round(self.workers.collect())

    def set_weights(
        self, weights: dict[str, torch.Tensor], env_kwargs: dict[str, Any] | None = None
    ) -> None:
        self.workers.set_weights(weights, env_kwargs)

    @property
    def restarts(self) -> int:
        return self.workers.restarts

    def close(self) -> None:
        self.workers.close()


class EpisodeSource(WorkerSource):
    method = "sample_episodes"


class GeneratedSource(WorkerSource):
    method = "sample_generated"
    unit = "sequences"


class TransitionSource(WorkerSource):
    """Transitions into a replay buffer; `replay_ratio` learner updates per env step once the
    buffer holds `learning_starts` steps, each on a batch sampled from the buffer."""

    method = "sample_transitions"

    def __init__(self, workers: WorkerGroup, cfg: ExperimentConfig, spec: ReplaySpec, seed: int):
        super().__init__(workers, cfg.rollout.steps_per_sample)
        self.spec = spec
        self.per_worker = cfg.rollout.envs_per_worker  # worker i's envs are streams i*n ...
        self.rng = np.random.default_rng(seed)
        self.update_credit = 0.0
        streams = max(1, cfg.rollout.num_workers) * cfg.rollout.envs_per_worker
        stack = envs.frame_stack(cfg.env.id, cfg.env.kwargs)
        if stack:  # Atari: each frame stored once, stacks rebuilt at sample time
            self.replay = FrameReplayBuffer(spec.capacity, streams, stack, spec.n_step, spec.gamma)
        else:
            self.replay = ReplayBuffer(spec.capacity, streams, spec.n_step, spec.gamma)

    def learn(self, data: Round, learner: Any, env_steps: int, stage_s: dict) -> dict:
        assert self.replay is not None
        start = time.perf_counter()
        metrics: dict = {}
        n = self.per_worker
        finals = [
            (t, i * n + e, f) for i, b in enumerate(data.batches) for t, e, f in b.final_frames
        ]
        for i, b in enumerate(data.batches):
            if b.fresh:  # a new or replaced worker, or a resumed run: its streams start afresh
                self.replay.cut_streams(range(i * n, (i + 1) * n))
        self.replay.add(merge_batches(data.batches), finals)
        if env_steps < self.spec.learning_starts:
            stage_s["replay"] += time.perf_counter() - start
            return metrics
        self.update_credit += self.spec.replay_ratio * data.env_steps
        for _ in range(int(self.update_credit)):
            sample = self.replay.sample(self.spec.batch_size, self.rng)
            now = time.perf_counter()
            stage_s["replay"] += now - start
            metrics = learner.update(sample)
            start = time.perf_counter()
            stage_s["update"] += start - now
        stage_s["replay"] += time.perf_counter() - start
        self.update_credit -= int(self.update_credit)
        return metrics

    def state_dict(self) -> dict[str, Any]:
        return {"update_credit": self.update_credit, "replay_rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.update_credit = state["update_credit"]
        self.rng.bit_generator.state = state["replay_rng"]


class DatasetSource(DataSource):
    """Minibatches of the task's train split, drawn in the driver: shuffled epochs without
    replacement (`rollout.dataset_order: epochs`; the last batch of an epoch may be smaller, so
    an epoch is exactly one pass) or uniform draws with replacement (`replacement`, as the
    MemN2N reference code samples), where an epoch is counted every len(train) examples."""

    unit = "epochs"
    clock = "epochs"

    def __init__(self, task: Any, batch_size: int, order: str, seed: int):
        self.train = task.dataset("train")
        if len(self.train) == 0:
            raise AgentError("the task's train split is empty")
        self.batch_size, self.order = batch_size, order
        self.rng = np.random.default_rng(seed)
        self.permutation = self.rng.permutation(len(self.train))
        self.position = 0  # examples of the current epoch drawn so far
        self.next: Round | None = None

    def launch(self) -> None:
        self.next = self._draw()

    def _draw(self) -> Round:
        n = len(self.train)
        if self.order == "replacement":
            index = self.rng.integers(0, n, self.batch_size)
        else:
            index = self.permutation[self.position : self.position + self.batch_size]
        self.position += len(index)
        epochs = 0
        if self.position >= n:
            epochs, self.position = 1, self.position - n
            if self.order != "replacement":
                self.permutation = self.rng.permutation(n)
        batch = Batch(self.train.take(index), batch_axis=self.train.batch_axis)
        return Round([batch], examples=len(index), epochs=epochs)

    def collect(self) -> Round:
        data, self.next = (self.next or self._draw()), None
        return data

    def state_dict(self) -> dict[str, Any]:
        return {
            "rng": self.rng.bit_generator.state,
            "permutation": self.permutation.tolist(),
            "position": self.position,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.permutation = np.asarray(state["permutation"], np.int64)
        self.position = int(state["position"])


def learns_from_dataset(agent: Any, task: Any) -> bool:
    """A supervised agent on a task with fixed splits: the dataset source and evaluation."""
    return isinstance(agent.data_spec(), SupervisedSpec) and hasattr(task, "dataset")


def make_source(
    cfg: ExperimentConfig, agent: Any, task: Any, seed: int, console: Any
) -> DataSource:
    """The source for the agent's data spec (and, for supervised agents, the task's kind)."""
    spec = agent.data_spec()
    if learns_from_dataset(agent, task):
        return DatasetSource(task, spec.batch_size, cfg.rollout.dataset_order, cfg.run.seed)
    workers = WorkerGroup(cfg, seed=seed, console=console)
    if isinstance(spec, ReplaySpec):
        return TransitionSource(workers, cfg, spec, cfg.run.seed)
    if isinstance(spec, EpisodeSpec):
        return EpisodeSource(workers, cfg.rollout.steps_per_sample)
    if isinstance(spec, SupervisedSpec):
        return GeneratedSource(workers, spec.batch_size)
    workers.close()
    raise AgentError(f"agent '{cfg.agent.name}' asks for unknown data {spec!r}")
