"""The rollout worker: a vectorised Gymnasium env and a CPU copy of the agent.

The same class runs in the driver (`rollout.num_workers: 0`) and as a Ray actor; it never imports
Ray. The data sources (rollout/sources.py) call the method for their kind of data; each returns a
`Batch` of numpy arrays with fixed key names (DESIGN.md, style rule 4):

- `sample_transitions` (replay): obs, actions, rewards, terminated, truncated, next_obs, all
  time-major [T, num_envs, ...]; next_obs is the true final observation at an episode's end.
- `sample_episodes`: obs, actions, rewards, mask, time-major [T_max, num_episodes, ...], complete
  episodes padded with mask 0, plus the agent's `act` extras and `targets` (info["target"]).
- `sample_generated`: inputs, targets, mask, time-major [T, batch, ...], drawn whole with the
  task's vectorised `sample_batch(batch_size, rng)`.

`set_weights(weights, env_kwargs)` also takes the curriculum's env kwargs: when they change, the
worker rebuilds its envs with them, so the data it draws follows the curriculum level.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

import envs
from agents import make_agent
from rollout.batches import Batch, stack_episodes


class RolloutWorker:
    def __init__(
        self,
        env_id: str,
        env_kwargs: dict[str, Any],
        agent_cfg: Any,
        num_envs: int,
        seed: int,
        torch_threads: int = 1,
        worker_index: int = 0,
        num_workers: int = 1,
        evaluation: bool = False,
        nice: int = 0,
        pipeline: bool = False,
    ):
        if nice > 0:  # yield the cores to a learner on the same machine when both want them
            os.nice(nice)
        torch.set_num_threads(torch_threads)
        torch.manual_seed(seed)
        self.env_id, self.num_envs, self.seed = env_id, num_envs, seed
        self.evaluation, self.pipeline = evaluation, pipeline
        self.env_kwargs = dict(env_kwargs)
        self.env: Any = None
        self.agent: Any = None
        self._open_envs(agent_cfg)
        self.agent.eval()
        self.agent.configure_actor(worker_index, num_workers)
        self.fresh = True
        self.data_rng = np.random.default_rng(seed)

    def _open_envs(self, agent_cfg: Any = None) -> None:
        """(Re)build the vector env with `self.env_kwargs` and start fresh episodes."""
        if self.env is not None:
            self.env.close()
        env_id, kwargs, n = self.env_id, self.env_kwargs, self.num_envs
        self.env = envs.make_vector(
            env_id, kwargs, n, evaluation=self.evaluation, pipelined=self.pipeline
        )
        if self.agent is None:
            self.agent = make_agent(
                agent_cfg, self.env.single_observation_space, self.env.single_action_space
            )
        self.pipelined = isinstance(self.env, envs.atari.AtariPipeline)
        if self.pipelined and self.agent.initial_state(1) is not None:
            # the pipeline picks actions before the step's results are seen: stateless only
            self.env.close()
            self.env = envs.make_vector(env_id, kwargs, n, evaluation=self.evaluation)
            self.pipelined = False
        # Stacked-frame observations go to the replay as each step's newest frame only.
        self.frame_stack = envs.frame_stack(env_id, kwargs)
        self.starts = np.ones(n, bool)  # the current observation begins an episode
        self.env_reports_episodes = bool(getattr(self.env, "reports_episodes", False))
        self.last_info: dict[str, Any] = {}
        self.obs, _ = self.env.reset(seed=self.seed)
        self.state = self.agent.initial_state(n)
        self.extras: dict[str, np.ndarray] = {}
        self.episode_return = np.zeros(n)
        self.partial: list[dict[str, list]] = [self._empty_episode() for _ in range(n)]

    @staticmethod
    def _empty_episode() -> dict[str, list]:
        return {"obs": [], "actions": [], "rewards": []}

    def set_weights(
        self, weights: dict[str, torch.Tensor], env_kwargs: dict[str, Any] | None = None
    ) -> None:
        """New acting weights and, with a curriculum, the env kwargs of its current level."""
        self.agent.load_acting_state_dict(weights)
        if env_kwargs is not None and env_kwargs != self.env_kwargs:
            self.env_kwargs = dict(env_kwargs)
            self.seed += 1  # fresh episodes at the new level
            self._open_envs()

    def _step(self, explore: bool) -> tuple[np.ndarray, ...]:
        obs = self.obs
        if self.pipelined:  # inference on one half of the envs overlaps stepping the other

            def policy(half: np.ndarray) -> np.ndarray:
                return self.agent.act(half, None, explore)[0]

            actions, result = self.env.step(policy, obs)
        else:
            actions, self.state, self.extras = self.agent.act(obs, self.state, explore)
            result = self.env.step(actions)
        next_obs, rewards, terminated, truncated, info = result
        done = terminated | truncated
        final_obs = next_obs
        # envs that were reset (a lost life can be `terminated` for the learner with no reset)
        reset = info.get("_final_obs", done) if done.any() else done
        if reset.any():
            final_obs = next_obs.copy()
            for i in np.flatnonzero(reset):
                final_obs[i] = info["final_obs"][i]
        if done.any():
            self.state = self.agent.reset_state(self.state, done)
        self.obs = next_obs
        self.last_info = info
        self.starts = np.asarray(reset, bool).copy()
        return obs, actions, rewards, terminated, truncated, final_obs, done

    def _track(self, rewards: np.ndarray, done: np.ndarray, batch: Batch) -> None:
        if self.env_reports_episodes:
            # the env keeps its own statistics (Atari: true scores of whole games)
            episode = self.last_info.get("episode", {"_r": ()})
            for i in np.flatnonzero(episode["_r"]):
                batch.episode_returns.append(float(episode["r"][i]))
            return
        self.episode_return += rewards
        for i in np.flatnonzero(done):
            batch.episode_returns.append(float(self.episode_return[i]))
        self.episode_return[done] = 0.0

    def _first(self, batch: Batch) -> Batch:
        batch.fresh, self.fresh = self.fresh, False
        return batch

    def sample_transitions(self, num_steps: int) -> Batch:
        if self.frame_stack:
            return self._first(self._sample_frames(num_steps))
        return self._first(self._sample_transitions(num_steps))

    def sample_episodes(self, num_steps: int) -> Batch:
        return self._first(self._sample_episodes(num_steps))

    def sample_generated(self, batch_size: int) -> Batch:
        """`batch_size` whole sequences from the task's vectorised sampler."""
        task = self.env.envs[0].unwrapped
        inputs, targets, mask = task.sample_batch(batch_size, self.data_rng)
        data = {"inputs": inputs, "targets": targets, "mask": mask}
        batch = Batch(
            data=data, env_steps=int(mask.shape[0] * mask.shape[1]), sequences=int(mask.shape[1])
        )
        return self._first(batch)

    def _sample_transitions(self, num_steps: int) -> Batch:
        steps = max(1, num_steps // self.num_envs)
        columns: dict[str, list] = {
            k: [] for k in ("obs", "actions", "rewards", "terminated", "truncated", "next_obs")
        }
        batch = Batch(data={}, env_steps=steps * self.num_envs)
        for _ in range(steps):
            obs, actions, rewards, terminated, truncated, final_obs, done = self._step(explore=True)
            for key, value in zip(
                columns, (obs, actions, rewards, terminated, truncated, final_obs)
            ):
                columns[key].append(value)
            self._track(rewards, done, batch)
        batch.data = {k: np.stack(v) for k, v in columns.items()}
        batch.data["rewards"] = batch.data["rewards"].astype(np.float32)
        return batch

    def _sample_frames(self, num_steps: int) -> Batch:
        """Transitions of stacked-frame envs as each step's newest frame (uint8) with episode
        starts; the learner's frame replay rebuilds the stacks (rollout/frame_replay_buffer.py)."""
        steps = max(1, num_steps // self.num_envs)
        n = self.num_envs
        frames = np.empty((steps, n, *self.obs.shape[2:]), self.obs.dtype)
        data = {
            "frames": frames,
            "starts": np.empty((steps, n), bool),
            "actions": None,
            "rewards": np.empty((steps, n), np.float32),
            "terminated": np.empty((steps, n), bool),
            "truncated": np.empty((steps, n), bool),
        }
        batch = Batch(data=data, env_steps=steps * n)
        actions = []
        for t in range(steps):
            data["starts"][t] = self.starts
            obs, action, rewards, terminated, truncated, final_obs, done = self._step(explore=True)
            frames[t] = obs[:, -1]
            actions.append(action)
            data["rewards"][t], data["terminated"][t], data["truncated"][t] = (
                rewards,
                terminated,
                truncated,
            )
            for i in np.flatnonzero(truncated & ~terminated):
                batch.final_frames.append((t, int(i), final_obs[i, -1].copy()))
            self._track(rewards, done, batch)
        data["actions"] = np.stack(actions)
        return batch

    def _sample_episodes(self, num_steps: int) -> Batch:
        """Step until the complete episodes hold >= num_steps steps. Episodes in progress carry
        over to the next call (their early steps then lag the newest weights by one update)."""
        done_episodes: list[dict[str, list]] = []
        collected = 0
        batch = Batch(data={}, env_steps=0)
        while collected < num_steps:
            obs, actions, rewards, _, _, _, done = self._step(explore=True)
            batch.env_steps += self.num_envs
            targets = self._targets(done)
            for i in range(self.num_envs):
                ep = self.partial[i]
                ep["obs"].append(obs[i])
                ep["actions"].append(actions[i])
                ep["rewards"].append(rewards[i])
                for key, value in self.extras.items():
                    ep.setdefault(key, []).append(np.asarray(value[i]))
                if targets is not None:
                    ep.setdefault("targets", []).append(targets[i])
                if done[i]:
                    done_episodes.append(ep)
                    collected += len(ep["rewards"])
                    self.partial[i] = self._empty_episode()
            self._track(rewards, done, batch)
        batch.data = stack_episodes(done_episodes)
        return batch

    def _targets(self, done: np.ndarray) -> np.ndarray | None:
        """info["target"] of the step just taken, per env (an env that just ended reports it in
        final_info, as same-step autoreset puts the reset's info in info), or None."""
        info = self.last_info
        if "target" not in info and "target" not in info.get("final_info", {}):
            return None
        final = info.get("final_info", {})
        targets = np.array(info.get("target", final.get("target")), copy=True)
        for i in np.flatnonzero(done):
            if "target" in final and final.get("_target", np.ones(len(done), bool))[i]:
                targets[i] = final["target"][i]
        return targets

    def evaluate(self, num_episodes: int, seed: int, explore: bool = False) -> list[float]:
        """Returns of `num_episodes` episodes from a fresh reset with `seed`, the envs sharing the
        episodes out evenly (so short episodes are not over-represented)."""
        quota = np.full(self.num_envs, num_episodes // self.num_envs)
        quota[: num_episodes % self.num_envs] += 1
        self.obs, _ = self.env.reset(seed=seed)
        self.starts[:] = True
        self.state = self.agent.initial_state(self.num_envs)
        ret = np.zeros(self.num_envs)
        returns: list[float] = []
        while (quota > 0).any():
            _, _, rewards, _, _, _, done = self._step(explore)
            ret += rewards
            for i in np.flatnonzero(done):
                if quota[i] > 0:
                    returns.append(float(ret[i]))
                    quota[i] -= 1
            ret[done] = 0.0
        return returns

    @torch.no_grad()
    def evaluate_cost(self, num_sequences: int, seed: int, chunk: int = 64) -> list[float]:
        """The cost (cross-entropy in bits, the training loss's figure) of each of
        `num_sequences` sequences drawn whole from the task's sampler with `seed`: what
        `run.eval_metric: cost` selects on, where wrong bits miss the point (stochastic targets
        such as dynamic n-grams, or costs the paper reports, such as priority sort)."""
        task = self.env.envs[0].unwrapped
        rng = np.random.default_rng(seed)
        costs: list[float] = []
        while len(costs) < num_sequences:
            n = min(chunk, num_sequences - len(costs))
            inputs, targets, mask = task.sample_batch(n, rng)
            batch = {
                "inputs": torch.as_tensor(inputs),
                "targets": torch.as_tensor(targets),
                "mask": torch.as_tensor(mask),
            }
            costs.extend(self.agent.score_examples(batch)["cost_bits"].tolist())
        return costs

    def close(self) -> None:
        self.env.close()
