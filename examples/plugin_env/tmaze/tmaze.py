"""The T-maze (Bakker 2002, "Reinforcement Learning with Long Short-Term Memory").

The agent starts at the foot of a corridor `length` cells long. Only the first observation shows
the cue: which arm of the T (up or down) holds the reward. At the junction it must turn the way
the cue said, so it has to remember one bit across `length` uninformative steps: a memoryless
policy sees the same junction observation either way and cannot beat chance (50 %).

Observation, a float32 vector of 4: [cue up, cue down, in corridor, at junction]; exactly one is
1 (the start cell shows the cue instead of "in corridor").
Actions, Discrete(3): 0 forward, 1 turn up, 2 turn down. Forward at the junction and turning in
the corridor leave the agent where it is.
Reward: +1 for turning the cued way at the junction, -1 for the other way (both end the episode,
`info["success"]` says which); `step_cost` (default 0.01) is paid on every other step, so the
return is 1 - step_cost * length on the shortest correct path. An episode with no decision after
`max_steps` (default 2 * length + 4) steps is truncated with -1, like a wrong turn: otherwise a
memoryless policy could beat chance by waiting out the episodes whose cue it does not follow.
So a memoryless policy averages about -step_cost * length (a coin flip at the junction), one
with memory 1 - step_cost * length.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

FORWARD, UP, DOWN = 0, 1, 2


class TMaze(gym.Env):
    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, length: int = 10, step_cost: float = 0.01, max_steps: int | None = None):
        if length < 1:
            raise ValueError(f"length must be >= 1, got {length}")
        if step_cost < 0:
            raise ValueError(f"step_cost must be >= 0, got {step_cost}")
        self.length = int(length)
        self.step_cost = float(step_cost)
        self.max_steps = int(max_steps) if max_steps is not None else 2 * self.length + 4
        if self.max_steps <= self.length:
            raise ValueError(
                f"max_steps ({self.max_steps}) must exceed length ({self.length}): "
                "the junction would be out of reach"
            )
        self.observation_space = gym.spaces.Box(0.0, 1.0, (4,), np.float32)
        self.action_space = gym.spaces.Discrete(3)
        self.cue = 0  # 0: the reward is up, 1: down
        self.pos = 0
        self.t = 0

    def _obs(self) -> np.ndarray:
        obs = np.zeros(4, np.float32)
        if self.pos == 0:
            obs[self.cue] = 1.0
        elif self.pos < self.length:
            obs[2] = 1.0
        else:
            obs[3] = 1.0
        return obs

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self.cue = int(self.np_random.integers(2))
        self.pos, self.t = 0, 0
        return self._obs(), {"cue": self.cue}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        action = int(action)
        if not 0 <= action < 3:
            raise ValueError(f"action must be 0 (forward), 1 (up) or 2 (down), got {action}")
        self.t += 1
        if self.pos == self.length and action in (UP, DOWN):
            success = action - UP == self.cue
            return self._obs(), 1.0 if success else -1.0, True, False, {"success": success}
        if action == FORWARD:
            self.pos = min(self.pos + 1, self.length)
        if self.t >= self.max_steps:
            return self._obs(), -1.0, False, True, {"success": False}
        return self._obs(), -self.step_cost, False, False, {}
