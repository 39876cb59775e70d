"""Tiny deterministic environments that keep most tests off ALE and CartPole.

Importable as `tests.fakes:Corridor`, which also exercises the `module:Class` env spec.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from envs.algorithmic import AlgorithmicTask
from envs.dataset import Dataset


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


class CopyOrInvert(AlgorithmicTask):
    """A small dataset task for the dataset source: fixed train/valid/test splits of short bit
    sequences in two groups, 'copy' (output the input) and 'invert' (output its complement),
    the group given by a flag channel. Input channels: `bits` data, flag, delimiter.

    The splits are drawn once from `data_seed` (train 512, valid 128, test 128 examples, time-major
    [T, N, ...] with batch axis 1), so every run sees the same examples; as an env it steps
    through freshly drawn sequences like every algorithmic task.
    """

    SIZES = {"train": 512, "valid": 128, "test": 128}

    def __init__(self, bits: int = 3, length: int = 3, data_seed: int = 0):
        self.bits, self.length, self.data_seed = bits, length, data_seed
        super().__init__(bits + 2, bits)
        self._splits: dict[str, Dataset] = {}

    def _generate(self, batch_size, rng):
        n, steps = self.length, 2 * self.length + 1
        data = rng.integers(0, 2, (n, batch_size, self.bits)).astype(np.float32)
        invert = rng.integers(0, 2, batch_size).astype(np.float32)
        inputs = np.zeros((steps, batch_size, self.input_size), np.float32)
        inputs[:n, :, : self.bits] = data
        inputs[:, :, self.bits] = invert[None, :]
        inputs[n, :, self.bits + 1] = 1.0
        targets = np.zeros((steps, batch_size, self.bits), np.float32)
        targets[n + 1 :] = np.where(invert[None, :, None] == 1, 1.0 - data, data)
        mask = np.zeros((steps, batch_size), np.float32)
        mask[n + 1 :] = 1.0
        return inputs, targets, mask, np.full(batch_size, steps)

    def dataset(self, split: str) -> Dataset:
        if split not in self.SIZES:
            raise ValueError(f"unknown split '{split}'; valid: {', '.join(self.SIZES)}")
        if split not in self._splits:
            seed = self.data_seed * 10 + list(self.SIZES).index(split)
            inputs, targets, mask = self.sample_batch(
                self.SIZES[split], np.random.default_rng(seed)
            )
            self._splits[split] = Dataset(
                {"inputs": inputs, "targets": targets, "mask": mask},
                batch_axis=1,
                groups=inputs[0, :, self.bits].astype(np.int64),  # the flag channel
                group_names=("copy", "invert"),
                name=f"CopyOrInvert {split}",
            )
        return self._splits[split]
