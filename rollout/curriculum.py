"""A curriculum over env kwargs: a list of levels, each a dict of env kwargs laid over
`env.kwargs`, that moves one level up when an evaluation's score reaches `env.curriculum_threshold`,
or on a fixed schedule, one level per `env.curriculum_every_sequences` training sequences (Joulin &
Mikolov's `train_add.cpp`: one more n per epoch of 10,000 sequences, whatever the validation says).
With `env.curriculum_patience: P` a threshold curriculum also moves up when the level's score has
stalled: it is below the score P evaluations earlier at the same level (Zaremba & Sutskever's
Learning to Execute code, `main.lua`: the level moves on when validation passes 95% or when the
training accuracy is below the one five evaluations back).

The level travels to the rollout workers with the weights (`set_weights(weights, env_kwargs)`),
and the workers rebuild their envs with it, so the data they draw changes with the level. Tasks
whose curricula are mixtures over difficulties (Learning to Execute's naive/mix/combined) take
the level's kwargs and sample accordingly.
"""

from __future__ import annotations

from typing import Any


class Curriculum:
    def __init__(
        self,
        base: dict[str, Any],
        levels: list[dict[str, Any]],
        threshold: float | None,
        every_sequences: int = 0,
        patience: int = 0,
    ):
        self.base, self.levels, self.threshold = dict(base), list(levels), threshold
        self.every_sequences, self.patience = every_sequences, patience
        self.level = 0
        self.scores: list[float] = []  # the last evaluations at this level, oldest first
        self.stalled = False  # whether the last move was for a stall (not the threshold)

    @property
    def active(self) -> bool:
        return bool(self.levels)

    def env_kwargs(self) -> dict[str, Any]:
        """The kwargs the workers' envs use now."""
        return {**self.base, **(self.levels[self.level] if self.levels else {})}

    def update(self, score: float) -> bool:
        """Move up one level when `score` reaches the threshold, or (with a patience P) when it
        is below the score P evaluations earlier at this level; True if the level changed."""
        if not self.levels or self.threshold is None or self.level == len(self.levels) - 1:
            return False
        # the window the stall rule reads: this score and the `patience` before it
        self.scores = [*self.scores, float(score)][-1 - self.patience :]
        self.stalled = (
            score < self.threshold
            and self.patience > 0
            and len(self.scores) > self.patience
            and score < self.scores[0]
        )
        if score >= self.threshold or self.stalled:
            self.level += 1
            self.scores = []
            return True
        return False

    def schedule(self, sequences: int) -> bool:
        """On a fixed schedule: the level is sequences // every_sequences (capped at the last);
        True if that moved it. Without a schedule, never moves."""
        if not self.levels or self.every_sequences <= 0:
            return False
        level = min(sequences // self.every_sequences, len(self.levels) - 1)
        if level > self.level:
            self.level = level
            return True
        return False

    def state_dict(self) -> dict[str, Any]:
        return {"level": self.level, "scores": list(self.scores)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.level = min(int(state.get("level", 0)), max(len(self.levels) - 1, 0))
        self.scores = [float(x) for x in state.get("scores", [])]
