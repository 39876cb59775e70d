"""`memrl/BAbI-v0`: the 20 bAbI tasks as a dataset task and as a one-question-per-episode env.

As a dataset task (what MemN2N trains on) it offers `dataset(split)` for "train", "valid" and
"test": batch-major arrays (`stories` [N, memory_size, sentence_size], `questions`
[N, sentence_size], `answers` [N], `story_lengths` [N]) grouped by bAbI task ("qa1".."qa20").
The data are prepared once per process and configuration (`load_babi`) and shared by every
instance, so the probe env, the trainer's task and evaluation do not read the files again.

As a Gymnasium env one episode is one question, drawn at random from `episode_split`: the
observation is one int32 array [memory_size + 1, sentence_size] whose first `memory_size` rows
are the story so far (its last sentences, oldest first, zero rows after) and whose last row is
the question, all as word ids; the action is the answer's word id (`Discrete(len(vocab))`), the
reward 1 if it is right, else 0, and `info["target"]` holds the right answer's id. One array
rather than a Dict keeps the observation a plain Box the rollout workers batch like any other.
"""

from __future__ import annotations

import os
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from envs.babi.dataset import BabiData, BabiDataConfig, load_babi
from envs.babi.reader import BabiDataError
from envs.dataset import SPLITS, Dataset

# config source names: "official" is the official files (BabiDataConfig's "files")
_SOURCES = {"official": "files", "files": "files", "generated": "generated"}
_CACHE: dict[str, BabiData] = {}


def default_babi_root() -> Path:
    """$MEMRL_DATA/babi where MEMRL_DATA is set, else ../shared/data/babi beside the repository."""
    base = os.environ.get("MEMRL_DATA")
    return (Path(base) if base else Path(__file__).resolve().parents[3] / "shared" / "data") / (
        "babi"
    )


def data_config(**kwargs: Any) -> BabiDataConfig:
    """The `BabiDataConfig` of the env's kwargs (`root` defaults to `default_babi_root()`;
    `source` is "official" or "generated")."""
    known = {f.name for f in fields(BabiDataConfig)}
    unknown = sorted(set(kwargs) - known)
    if unknown:
        raise BabiDataError(
            f"memrl/BAbI-v0: unknown kwargs {unknown}; valid: {sorted(known | {'episode_split'})}"
        )
    source = kwargs.get("source", "official")
    if source not in _SOURCES:
        raise BabiDataError(f"source: {source!r} is not one of ['official', 'generated']")
    kwargs["source"] = _SOURCES[source]
    if kwargs["source"] == "files" and not kwargs.get("root"):
        kwargs["root"] = str(default_babi_root())
    if "tasks" in kwargs and isinstance(kwargs["tasks"], int):
        kwargs["tasks"] = (kwargs["tasks"],)
    return BabiDataConfig(**kwargs)


def cached_babi(config: BabiDataConfig) -> BabiData:
    """`load_babi(config)`, prepared once per process and configuration."""
    key = repr(sorted(asdict(config).items()))
    if key not in _CACHE:
        _CACHE[key] = load_babi(config)
    return _CACHE[key]


class BabiEnv(gym.Env):
    """bAbI question answering (Weston et al. 2015); see the module docstring.

    kwargs: the fields of `BabiDataConfig` (`root`, `tasks`, `size` 1k/10k, `memory_size`,
    `source` official/generated, `seed`, `generated_questions`, `test_words` seen/novel,
    `valid_fraction`, `fallback_size`) and `episode_split`, the split the env's episodes draw
    questions from.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, episode_split: str = "train", **kwargs: Any):
        if episode_split not in SPLITS:
            raise BabiDataError(f"episode_split: {episode_split!r} is not one of {list(SPLITS)}")
        self.config = data_config(**kwargs)
        self.data = cached_babi(self.config)
        self.vocab = self.data.vocab
        self.seen_in_training = self.data.seen_in_training
        self.episode_split = episode_split
        m, s = self.data.memory_size, self.data.sentence_size
        self.observation_space = gym.spaces.Box(0, len(self.vocab) - 1, (m + 1, s), np.int32)
        self.action_space = gym.spaces.Discrete(len(self.vocab))
        self.group_names = tuple(f"qa{t}" for t in self.config.tasks)
        self._datasets: dict[str, Dataset] = {}
        self._index = 0

    def dataset(self, split: str) -> Dataset:
        """The split's questions, batch axis 0, grouped by task (cached on the instance; the
        arrays themselves are shared by every instance of the configuration)."""
        if split not in SPLITS:
            raise BabiDataError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
        if split not in self._datasets:
            part = getattr(self.data, split)
            group_of_task = {t: g for g, t in enumerate(self.config.tasks)}
            self._datasets[split] = Dataset(
                {
                    "stories": part.stories,
                    "questions": part.questions,
                    "answers": part.answers,
                    "story_lengths": part.story_lengths,
                },
                batch_axis=0,
                groups=np.array([group_of_task[int(t)] for t in part.tasks], np.int64),
                group_names=self.group_names,
                name=f"bAbI {split}",
            )
        return self._datasets[split]

    def observation(self, split: str, index: int) -> np.ndarray:
        """Question `index` of `split` as the env observes it: story rows, then the question."""
        part = getattr(self.data, split)
        return np.concatenate([part.stories[index], part.questions[index][None]], axis=0)

    def describe(self, split: str, index: int) -> dict[str, Any]:
        """Question `index` of `split` in words: its memory rows, the question, the answer and
        the rows holding its supporting facts (for reports such as the attention tables)."""
        part, words = getattr(self.data, split), self.vocab.words
        text = lambda ids: " ".join(words[i] for i in ids if i)  # noqa: E731
        rows = [text(part.stories[index, j]) for j in range(int(part.story_lengths[index]))]
        return {
            "task": f"qa{int(part.tasks[index])}",
            "rows": rows,
            "question": text(part.questions[index]),
            "answer": words[int(part.answers[index])],
            "support_rows": sorted(int(r) for r in part.supports[index] if r >= 0),
        }

    def word(self, word_id: int) -> str:
        return self.vocab.words[int(word_id)]

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        n = len(getattr(self.data, self.episode_split))
        if n == 0:
            raise BabiDataError(f"the {self.episode_split} split holds no questions")
        self._index = int(self.np_random.integers(n))
        return self.observation(self.episode_split, self._index), {"target": self._target()}

    def _target(self) -> int:
        return int(getattr(self.data, self.episode_split).answers[self._index])

    def step(self, action: Any):
        target = self._target()
        reward = 1.0 if int(action) == target else 0.0
        obs = self.observation(self.episode_split, self._index)
        return obs, reward, True, False, {"target": target}
