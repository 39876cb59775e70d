"""One split of a dataset task: fixed examples, grouped (e.g. by bAbI task or question family).

Dataset tasks (bAbI, CLEVR questions, the tests' sequence sets) are Gymnasium envs that also
offer `dataset(split) -> Dataset` for split in ("train", "valid", "test"); the trainer's dataset
source draws the learner's batches from "train" and the task-owned evaluation makes full passes
over "valid" (model selection) and "test" (the final table), grouped by `group_names`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SPLITS = ("train", "valid", "test")


@dataclass
class Dataset:
    """Arrays holding the examples along `batch_axis` (the same axis in every array: 1 for
    time-major sequences [T, N, ...], 0 for batch-major ones), a group id per example and the
    groups' names."""

    arrays: dict[str, np.ndarray]
    batch_axis: int = 0
    groups: np.ndarray | None = None  # int [N]; None: one group
    group_names: tuple[str, ...] = ("all",)
    name: str = field(default="dataset")

    def __post_init__(self) -> None:
        if not self.arrays:
            raise ValueError(f"{self.name}: a dataset needs at least one array")
        sizes = {k: v.shape[self.batch_axis] for k, v in self.arrays.items()}
        if len(set(sizes.values())) != 1:
            raise ValueError(
                f"{self.name}: arrays disagree on the number of examples along axis "
                f"{self.batch_axis}: {sizes}"
            )
        n = next(iter(sizes.values()))
        if self.groups is None:
            self.groups = np.zeros(n, np.int64)
        self.groups = np.asarray(self.groups, np.int64)
        if self.groups.shape != (n,):
            raise ValueError(f"{self.name}: groups must have shape ({n},), got {self.groups.shape}")
        if n and not 0 <= self.groups.min() <= self.groups.max() < len(self.group_names):
            raise ValueError(
                f"{self.name}: group ids must index group_names ({len(self.group_names)} names)"
            )

    def __len__(self) -> int:
        return len(self.groups)

    def take(self, index: np.ndarray) -> dict[str, np.ndarray]:
        """The examples at `index`, in that order, along the batch axis."""
        return {k: np.take(v, index, axis=self.batch_axis) for k, v in self.arrays.items()}
