"""Tiny deterministic environments that keep most tests off ALE and CartPole.

Importable as `tests.fakes:Corridor`, which also exercises the `module:Class` env spec.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np


class Corridor(gym.Env):
    """Walk right along `length` cells; reward 1 on reaching the end, -0.01 per other step.

    Observation: one-hot position (float32). Actions: 0 left, 1 right. Truncated after
    `max_steps`. Fully deterministic.
    """

    metadata = {"render_modes": []}

    def __init__(self, length: int = 5, max_steps: int = 20):
        self.length, self.max_steps = length, max_steps
        self.observation_space = gym.spaces.Box(0.0, 1.0, (length,), np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.pos = 0
        self.t = 0

    def _obs(self) -> np.ndarray:
        obs = np.zeros(self.length, np.float32)
        obs[self.pos] = 1.0
        return obs

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.pos, self.t = 0, 0
        return self._obs(), {}

    def step(self, action):
        self.t += 1
        self.pos = int(np.clip(self.pos + (1 if int(action) == 1 else -1), 0, self.length - 1))
        terminated = self.pos == self.length - 1
        reward = 1.0 if terminated else -0.01
        return self._obs(), reward, terminated, self.t >= self.max_steps and not terminated, {}


class BitMatch(gym.Env):
    """One-step episodes: observe `n` random bits, output them (MultiBinary); reward = matches / n."""

    metadata = {"render_modes": []}

    def __init__(self, n: int = 4):
        self.n = n
        self.observation_space = gym.spaces.Box(0.0, 1.0, (n,), np.float32)
        self.action_space = gym.spaces.MultiBinary(n)
        self.bits = np.zeros(n, np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.bits = self.np_random.integers(0, 2, self.n).astype(np.float32)
        return self.bits.copy(), {}

    def step(self, action):
        reward = float(np.mean(np.asarray(action, np.float32) == self.bits))
        return self.bits.copy(), reward, True, False, {}


class NotAnEnv:
    """For the error test: a class that is not a gymnasium.Env."""


class ImageObs(gym.Env):
    """An env whose image observations the MLP agents must refuse clearly."""

    observation_space = gym.spaces.Box(0, 255, (8, 8, 3), np.uint8)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        return np.zeros((8, 8, 3), np.uint8), {}

    def step(self, action):
        return np.zeros((8, 8, 3), np.uint8), 0.0, True, False, {}
