"""The rollout workers of a run: N Ray actors in a placement group, or one in-process worker.

Placement: the actors sit in one placement group of `num_workers` one-CPU bundles, with the
strategy `rollout.placement` (PACK: as few nodes as possible; SPREAD: across nodes, best effort;
STRICT_SPREAD: one node each; STRICT_PACK: all on one node; none: Ray's default scheduling).

Fault tolerance: a worker that dies (its process killed, its node lost) makes `ray.get` raise a
RayActorError (ActorDiedError, ActorUnavailableError). The group then replaces it with a fresh
actor in the same bundle, gives it the current weights and a seed no earlier worker used, and
samples its lost batch again, so a run keeps its step counts. Each replacement is printed and
counted (`restarts`, logged as `worker_restarts` in metrics.jsonl); a worker slot that needs
more than `rollout.max_worker_restarts` replacements stops the run with WorkerError.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch
from rich.console import Console

from rollout.batches import Batch
from rollout.config import ExperimentConfig
from rollout.progress import stderr_console
from rollout.worker import RolloutWorker

# Seeds: worker i of generation g (g replacements so far) gets seed + 7919 (i + 1) + 104729 g.
WORKER_SEED_STRIDE = 7919
GENERATION_SEED_STRIDE = 104_729


class WorkerError(RuntimeError):
    """Rollout workers cannot be placed or keep dying; the message says what and what to do."""


class WorkerGroup:
    """N rollout workers as Ray actors, or one in-process worker when num_workers is 0."""

    def __init__(self, cfg: ExperimentConfig, seed: int, console: Console | None = None):
        r = cfg.rollout
        self.cfg = cfg
        self.seed = seed
        self.console = console or stderr_console()
        self.args = (cfg.env.id, cfg.env.kwargs, cfg.agent, r.envs_per_worker)
        self.local: RolloutWorker | None = None
        self.actors: list[Any] = []
        self.pending: list[Any] = []
        self.pending_call: tuple[str, int] = ("", 0)  # (worker method, its argument)
        self.in_flight: list[Any] = []
        self.weights_ref: Any = None
        self.env_kwargs: dict[str, Any] | None = None  # the curriculum level's, once it has one
        self.restarts = 0  # workers replaced so far in this process
        self.failures: list[int] = []  # replacements per worker slot
        self.locations: list[dict[str, Any]] = []  # node_id, pid, rollout_path per worker
        self.placement_group: Any = None
        self.folder: str | None = None  # the actors' working folder (ray_runtime.actor_folder)
        self.first_bundle = 0  # the workers' bundles in the placement group start here
        self.owns_group = True  # False: a `memrl sweep` trial's group, which Ray Tune removes
        if r.num_workers == 0:
            self.local = RolloutWorker(
                *self.args,
                seed=seed,
                torch_threads=torch.get_num_threads(),
                pipeline=cfg.rollout.pipeline,
            )
            return
        import ray

        from rollout.ray_runtime import actor_folder, remote_worker_class

        self.actor_class = remote_worker_class()
        self.folder = actor_folder()
        self.placement_group = self._reserve(r.num_workers)
        self.actors = [self._spawn(i, generation=0) for i in range(r.num_workers)]
        self.failures = [0] * r.num_workers
        try:
            self.locations = ray.get([a.location.remote() for a in self.actors])
        except ray.exceptions.RayError as exc:
            self.close()
            raise WorkerError(
                f"the rollout workers failed to start (env '{cfg.env.id}'): {exc}. On a "
                "cluster, the nodes need memrl's dependencies installed (see configs/cluster/)."
            ) from None
        nodes = {loc["node_id"] for loc in self.locations}
        if len(ray.nodes()) > 1:
            self.console.print(
                f"{len(self.actors)} rollout workers on {len(nodes)} node(s) "
                f"(rollout.placement={r.placement})",
                highlight=False,
            )

    # ----------------------------------------------------------------- placement
    def _reserve(self, num_workers: int) -> Any:
        """A placement group of one-CPU bundles, ready, or WorkerError naming what is missing."""
        strategy = self.cfg.rollout.placement
        trial_group = _trial_group(num_workers)
        if trial_group is not None:
            self.first_bundle, self.owns_group = 1, False
            return trial_group
        if strategy == "none":
            return None
        import ray
        from ray.util.placement_group import placement_group, remove_placement_group

        group = placement_group([{"CPU": 1.0}] * num_workers, strategy=strategy)
        timeout = self.cfg.rollout.placement_timeout_s
        ready, _ = ray.wait([group.ready()], timeout=timeout)
        if not ready:
            remove_placement_group(group)
            alive = [n for n in ray.nodes() if n.get("Alive")]
            cpus = [int(n["Resources"].get("CPU", 0)) for n in alive]
            raise WorkerError(
                f"cannot place {num_workers} rollout workers (1 CPU each) with "
                f"rollout.placement={strategy} within {timeout:g} s: the cluster has "
                f"{len(alive)} node(s) with CPUs {cpus}. Lower rollout.num_workers, add nodes, "
                "or choose another rollout.placement (PACK, SPREAD, STRICT_PACK, "
                "STRICT_SPREAD, none)."
            )
        return group

    def _spawn(self, index: int, generation: int) -> Any:
        seed = self.seed + WORKER_SEED_STRIDE * (index + 1) + GENERATION_SEED_STRIDE * generation
        options: dict[str, Any] = {}
        if self.placement_group is not None:
            from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

            options["scheduling_strategy"] = PlacementGroupSchedulingStrategy(
                self.placement_group, placement_group_bundle_index=self.first_bundle + index
            )
        return self.actor_class.options(**options).remote(
            *self.args,
            seed=seed,
            worker_index=index,
            num_workers=self.cfg.rollout.num_workers,
            nice=self.cfg.rollout.worker_nice,
            pipeline=self.cfg.rollout.pipeline,
            folder=self.folder,
        )

    def _replace(self, index: int, error: Exception) -> None:
        """Swap a dead worker for a fresh actor holding the current weights (blocks until up)."""
        import ray

        limit = self.cfg.rollout.max_worker_restarts
        reason = type(error).__name__
        while True:
            self.failures[index] += 1
            if self.failures[index] > limit:
                raise WorkerError(
                    f"rollout worker {index} died {self.failures[index]} times ({reason}), more "
                    f"than rollout.max_worker_restarts={limit}; the last error: {error}. "
                    "Check the worker's node and its logs (Ray's session logs/worker-*.err)."
                )
            old = self.actors[index]
            with contextlib.suppress(Exception):  # it may be gone already, which is the aim
                ray.kill(old, no_restart=True)
            actor = self._spawn(index, generation=self.failures[index])
            if self.weights_ref is not None:  # runs before any later call
                actor.set_weights.remote(self.weights_ref, self.env_kwargs)
            timeout = self.cfg.rollout.placement_timeout_s
            try:
                location = ray.get(actor.location.remote(), timeout=timeout)
            except ray.exceptions.RayActorError as exc:
                error, reason = exc, type(exc).__name__
                self.actors[index] = actor
                continue
            except ray.exceptions.GetTimeoutError:
                raise WorkerError(
                    f"rollout worker {index} died ({reason}) and its replacement did not start "
                    f"within rollout.placement_timeout_s={timeout:g} s: the cluster may have "
                    f"lost the node its placement bundle needs (rollout.placement="
                    f"{self.cfg.rollout.placement}). Resume with `memrl train --resume RUN_DIR` "
                    "once the cluster has room."
                ) from None
            self.actors[index] = actor
            self.locations[index] = location
            self.restarts += 1
            self.console.print(
                f"rollout worker {index} died ({reason}); replaced it on node "
                f"{location['node_id'][:12]} (pid {location['pid']}, replacement "
                f"{self.failures[index]}/{limit}) and resampling its batch",
                highlight=False,
            )
            return

    # ----------------------------------------------------------------- sampling
    def launch(self, method: str, arg: int) -> None:
        """Start `worker.<method>(arg)` on every worker (e.g. "sample_episodes", 64)."""
        self.pending_call = (method, arg)
        if self.local is not None:
            self.pending = [arg]
        else:
            self.pending = [getattr(a, method).remote(arg) for a in self.actors]

    def collect(self) -> list[Batch]:
        pending, self.pending = self.pending, []
        method, arg = self.pending_call
        if self.local is not None:
            return [getattr(self.local, method)(n) for n in pending]
        import ray

        batches: list[Batch] = []
        for index, ref in enumerate(pending):
            while True:
                try:
                    batches.append(ray.get(ref))
                    break
                except ray.exceptions.RayActorError as exc:
                    self._replace(index, exc)
                    ref = getattr(self.actors[index], method).remote(arg)
        return batches

    def set_weights(
        self, weights: dict[str, torch.Tensor], env_kwargs: dict[str, Any] | None = None
    ) -> None:
        """New weights (and the curriculum level's env kwargs, when there is a curriculum)."""
        if env_kwargs is not None:
            self.env_kwargs = env_kwargs
        if self.local is not None:
            self.local.set_weights(weights, self.env_kwargs)
            return
        import ray

        # one copy in the object store, read by every worker; kept for replacement workers
        self.weights_ref = ray.put(weights)
        self.in_flight = [
            actor.set_weights.remote(self.weights_ref, self.env_kwargs) for actor in self.actors
        ]

    def close(self) -> None:
        if self.local is not None:
            self.local.close()
        if self.actors:
            import ray

            # let queued calls finish first, so killing the actors cuts no call short
            waiting = self.pending + self.in_flight
            if waiting:
                ray.wait(waiting, num_returns=len(waiting), timeout=10)
            for actor in self.actors:
                ray.kill(actor, no_restart=True)
        if self.placement_group is not None and self.owns_group:
            from ray.util.placement_group import remove_placement_group

            remove_placement_group(self.placement_group)
        self.placement_group = None


def _trial_group(num_workers: int) -> Any:
    """The placement group of the Ray Tune trial this process runs, when `memrl sweep` reserved
    the workers' CPUs in it (bundle 0 the trial's driver, then one 1-CPU bundle per worker): the
    workers go there, so a trial starts only once all of its CPUs are free (a group of its own
    would wait on the CPUs that other trials hold). None outside such a trial."""
    from ray.util import get_current_placement_group

    group = get_current_placement_group()
    if group is None:
        return None
    bundles = group.bundle_specs
    if len(bundles) != num_workers + 1 or any(b.get("CPU", 0) < 1 for b in bundles[1:]):
        return None
    return group
