"""memrl's Python API: train from a config, load a trained policy and act with it in a plain
Gymnasium loop, evaluate a run, make an env. A facade over `rollout` (config loading, the
launcher `memrl train` uses, checkpoints, `memrl evaluate`), `agents` and `envs`: each call
does what the matching command does, through the same code. docs/python_api.md has the example.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from rich.console import Console

import envs
from rollout.checkpoints import MARKER, latest_checkpoint
from rollout.config import (
    ConfigError,
    ExperimentConfig,
    apply_overrides,
    build_config,
    config_to_dict,
    read_yaml,
)
from rollout.evaluation import (
    BEST,
    EvaluationOptions,
    evaluate_run,
    load_agent,
    open_run,
    resolve_checkpoint,
    run_config,
)
from rollout.launch import check_before_start, train_run
from rollout.progress import stderr_console
from rollout.ray_runtime import PLUGIN_PATH_ENV
from rollout.run_dir import RunDir

ConfigLike = str | os.PathLike | Mapping[str, Any] | ExperimentConfig
Overrides = Sequence[str] | Mapping[str, Any] | None


@dataclass(frozen=True)
class Run:
    """A finished training run: its folder and the trainer's final figures (`figures`: stop
    reason, env steps, updates, time, the last and best evaluation score, the last
    checkpoint)."""

    path: Path
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def best_checkpoint(self) -> Path | None:
        """checkpoints/best: the weights of the run's best evaluation (None if never evaluated)."""
        best = RunDir(self.path).checkpoints / BEST
        return best if (best / MARKER).is_file() else None

    @property
    def latest_checkpoint(self) -> Path | None:
        return latest_checkpoint(RunDir(self.path).checkpoints)

    def load_policy(self, checkpoint: str | None = BEST) -> Policy:
        return load_policy(self.path, checkpoint)

    def evaluate(self, episodes: int = 10, checkpoint: str | None = BEST, **kwargs: Any) -> dict:
        return evaluate(self.path, episodes, checkpoint, **kwargs)


class Policy:
    """A trained agent, acting greedily on one observation at a time.

    `act(obs, state)` returns the action and the next recurrent state: start each episode with
    `state = policy.initial_state()` and pass back the state `act` returned (None throughout for
    feed-forward agents). Observations are those of `policy.make_env()` (memrl.make_env of the
    run's env id and kwargs, which adapts observation spaces as training did); the raw
    observations of a bare `gymnasium.make` env (a Dict, a Tuple, a channels-last image) are
    adapted by the same Gymnasium wrappers first."""

    def __init__(
        self, agent: Any, env_id: str, env_kwargs: dict[str, Any], checkpoint: Path, step: int
    ):
        self.agent = agent.cpu().eval()
        self.env_id = env_id
        self.env_kwargs = dict(env_kwargs)
        self.checkpoint = checkpoint
        self.step = step  # the env step the weights were saved at
        self.observation_space: gym.Space = agent.observation_space
        self.action_space: gym.Space = agent.action_space
        env = self.make_env()
        self._adapters = envs.observation_adapters(env)  # innermost first
        env.close()

    def initial_state(self) -> Any:
        """The recurrent state at the start of an episode (None for feed-forward agents)."""
        return self.agent.initial_state(1)

    @torch.no_grad()
    def act(self, obs: Any, state: Any = None) -> tuple[Any, Any]:
        """(action, next state) for one observation; `state` None means the episode's start."""
        if state is None:
            state = self.initial_state()
        if self._adapters and (
            isinstance(obs, dict | tuple) or np.shape(obs) != self.observation_space.shape
        ):  # a bare env's observation: the wrappers memrl.make_env adds, in their order
            for adapter in self._adapters:
                obs = adapter.observation(obs)
        actions, state, _ = self.agent.act(np.asarray(obs)[None], state, False)
        return actions[0], state

    def make_env(self, **overrides: Any) -> gym.Env:
        """The env the policy was trained on (kwargs from the run's config, `overrides` on top)."""
        return make_env(self.env_id, **{**self.env_kwargs, **overrides})

    def __repr__(self) -> str:
        return (
            f"Policy({self.agent.cfg.name} on {self.env_id}, checkpoint {self.checkpoint}, "
            f"env step {self.step:,})"
        )


def _resolve_config(config: ConfigLike, overrides: Overrides) -> ExperimentConfig:
    if isinstance(overrides, Mapping):  # {"learner.lr": 3e-4}: JSON is YAML, as the CLI parses
        overrides = [f"{key}={json.dumps(value)}" for key, value in overrides.items()]
    overrides = list(overrides or [])
    if isinstance(config, ExperimentConfig):
        config = config_to_dict(config)
    if isinstance(config, Mapping):
        return build_config(apply_overrides(dict(config), overrides), source="<config dict>")
    if isinstance(config, str | os.PathLike):
        path = Path(config)
        return build_config(apply_overrides(read_yaml(path), overrides), source=str(path))
    raise ConfigError(
        f"memrl.train takes a config file's path, a mapping or an ExperimentConfig, got "
        f"{type(config).__name__}."
    )


def train(
    config: ConfigLike,
    overrides: Overrides = None,
    *,
    address: str | None = None,
    quiet: bool = False,
) -> Run:
    """Train as `memrl train CONFIG OVERRIDES [--address ADDRESS]` does, and return the Run.

    `config`: a YAML file's path, a mapping with the sections env, agent, learner, rollout, run,
    or an ExperimentConfig. `overrides`: ["learner.lr=3e-4", ...] or {"learner.lr": 3e-4}.
    With rollout.num_workers > 0 an embedded local Ray is started (and stopped) unless Ray is
    already running in this process; `address` joins a cluster. `quiet` silences the progress.
    Raises ConfigError, envs.EnvSpecError, agents.AgentError or rollout.trainer.TrainingError
    with a message saying what to fix."""
    cfg = _resolve_config(config, overrides)
    console = Console(quiet=True) if quiet else stderr_console()
    # a `module:Class` env spec from this folder also resolves in embedded Ray workers
    paths = [p for p in os.environ.get(PLUGIN_PATH_ENV, "").split(os.pathsep) if p]
    if os.getcwd() not in paths:
        os.environ[PLUGIN_PATH_ENV] = os.pathsep.join([*paths, os.getcwd()])
    check_before_start(cfg, console)
    run, figures = train_run(cfg, console, address=address)
    return Run(run.path.resolve(), figures)


def load_policy(
    run_dir: str | os.PathLike, checkpoint: str | None = BEST, *, trust: bool = False
) -> Policy:
    """The run's agent with a checkpoint's weights: 'best' (default: the best evaluation's),
    'latest', N (a checkpoint's env step), a checkpoint folder's path, or None (best if the
    run has one, else latest). `trust` allows a run whose env.id is a module:Class plug-in."""
    run = open_run(run_dir)
    cfg = run_config(run, trust, "pass trust=True")
    path = resolve_checkpoint(run, checkpoint)
    agent, step = load_agent(cfg, path, cfg.env.kwargs)
    return Policy(agent, cfg.env.id, cfg.env.kwargs, path, step)


def evaluate(
    run_dir: str | os.PathLike,
    episodes: int = 10,
    checkpoint: str | None = BEST,
    *,
    seed: int = 0,
    record: str = "none",
    trust: bool = False,
    quiet: bool = False,
) -> dict[str, Any]:
    """Evaluate as `memrl evaluate` does (greedy episodes seeded seed, seed+1, ..., written to
    RUN_DIR/evaluation/<time>/) and return the summary: `return` and `length` (mean, std,
    median, min, max, ci95), the checkpoint and its env step, and `evaluation_dir`.
    `record`: "none" (default), "video" or "frames" for the first 3 episodes."""
    options = EvaluationOptions(
        checkpoint=checkpoint, episodes=episodes, seed=seed, record=record, trust=trust
    )
    console = Console(quiet=True) if quiet else stderr_console()
    out, summary = evaluate_run(run_dir, options, console=console)
    return {**summary, "evaluation_dir": str(out)}


def make_env(env_id: str, **kwargs: Any) -> gym.Env:
    """An env as memrl makes it: a memrl/* id, any registered Gymnasium id, a
    package.module:EnvClass plug-in or an installed `memrl.envs` entry point (envs.make)."""
    return envs.make(env_id, **kwargs)
