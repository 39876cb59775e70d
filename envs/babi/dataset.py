"""bAbI data preparation: finding the task files, splits, the vocabulary and fixed-size arrays.

The recipe follows the MemN2N reference (Sukhbaatar et al. 2015): the vocabulary is built
from the words of train and test (multi-word answers of tasks 8 and 19 are one answer class,
their words joined by commas), a model sees the last `memory_size` (50) story sentences, and
10% of each task's training questions are held out for validation. Ids: 0 pads, 1 stands for
a word the vocabulary does not know (only data from elsewhere, e.g. the generator with new
names, can hold one), known words follow in sorted order so the ids do not depend on file order.

Everything here is pure numpy over `Sample`s, so a generated data set (envs.babi.generator)
goes through the same `split_validation` / `encode` as the official files. With generated
test questions about new names, the vocabulary (train + test, as the reference builds it)
holds words no training question has; `BabiData.seen_in_training` marks the ones that do.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from os import PathLike
from pathlib import Path

import numpy as np

from envs.babi.generator import generate_samples
from envs.babi.lexicon import NOVEL_LEXICON
from envs.babi.reader import TASK_NAMES, BabiDataError, Sample, read_file

PAD, UNKNOWN = "<pad>", "<unk>"
PAD_ID, UNKNOWN_ID = 0, 1
SIZES = {"1k": "en", "10k": "en-10k"}
QUESTIONS = {"1k": 1000, "10k": 10000}  # training questions per task file of each size
GENERATED = "generated"  # fallback_size: memrl's generator writes a missing train file
ARCHIVE_FOLDER = "tasks_1-20_v1-2"  # the top folder of the official archive


@dataclass(frozen=True)
class TaskFiles:
    """The train and test file of one task (`train_size`: the size the train file is of, or
    `generated` where memrl's generator stands in for a missing train file)."""

    task: int
    train: Path
    test: Path
    train_size: str = "1k"


def _check_task(task: int) -> None:
    if isinstance(task, bool) or not isinstance(task, int) or task not in TASK_NAMES:
        raise BabiDataError(f"bAbI task {task!r} does not exist; tasks are 1..20")


def _size_folder(root: Path, size: str) -> Path:
    if size not in SIZES:
        raise BabiDataError(f"bAbI size {size!r} is not one of {sorted(SIZES)}")
    folders = [root / SIZES[size], root / ARCHIVE_FOLDER / SIZES[size]]
    folder = next((f for f in folders if f.is_dir()), None)
    if folder is None:
        raise BabiDataError(
            f"no bAbI {size} folder under {root}: looked for {' and '.join(map(str, folders))}"
        )
    return folder


def find_task_files(
    root: str | PathLike[str], task: int, size: str = "1k", fallback_size: str = ""
) -> TaskFiles:
    """The files of `task` under `root`: a folder holding `en/` and `en-10k/`, or the folder
    the official archive unpacks into (`tasks_1-20_v1-2/`)'s parent. A train file missing at
    `size` is read at `fallback_size` when one is given (some 10k copies lack task 3's); with
    `fallback_size="generated"` it is left to memrl's generator (`train_size` says so; `train`
    is the missing file)."""
    _check_task(task)
    root = Path(root)
    stem = f"qa{task}_{TASK_NAMES[task]}"
    folder = _size_folder(root, size)
    files = TaskFiles(task, folder / f"{stem}_train.txt", folder / f"{stem}_test.txt", size)
    if not files.train.is_file() and fallback_size == GENERATED:
        files = TaskFiles(task, files.train, files.test, GENERATED)
    elif not files.train.is_file() and fallback_size and fallback_size != size:
        train = _size_folder(root, fallback_size) / files.train.name
        files = TaskFiles(task, train, files.test, fallback_size)
    for path in (files.train, files.test) if files.train_size != GENERATED else (files.test,):
        if not path.is_file():
            hint = " (the 10k train file of task 3 is not in every copy)" if size == "10k" else ""
            raise BabiDataError(f"bAbI file {path} is missing{hint}")
    return files


@dataclass(frozen=True)
class Vocabulary:
    """Words by id: `words[0]` pads, `words[1]` is the unknown word, then the known words."""

    words: tuple[str, ...]
    _ids: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.words[:2] != (PAD, UNKNOWN):
            raise BabiDataError(f"a vocabulary starts with {PAD!r}, {UNKNOWN!r}")
        if len(set(self.words)) != len(self.words):
            raise BabiDataError("a vocabulary lists each word once")
        object.__setattr__(self, "_ids", {w: i for i, w in enumerate(self.words)})

    @classmethod
    def build(cls, *sample_lists: Iterable[Sample]) -> Vocabulary:
        """The vocabulary of every story, question and answer word in `sample_lists`."""
        words: set[str] = set()
        for samples in sample_lists:
            for s in samples:
                for sentence in s.story:
                    words.update(sentence)
                words.update(s.question)
                words.add(s.answer_label)
        return cls((PAD, UNKNOWN, *sorted(words - {PAD, UNKNOWN})))

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: object) -> bool:
        return word in self._ids

    def id(self, word: str) -> int:
        return self._ids.get(word, UNKNOWN_ID)

    def ids(self, words: Iterable[str]) -> list[int]:
        return [self._ids.get(w, UNKNOWN_ID) for w in words]


@dataclass(frozen=True)
class EncodedSet:
    """Fixed-size int32 arrays of N questions, oldest memory first.

    stories [N, memory_size, sentence_size]: the last `memory_size` sentences before each
    question in rows 0..story_lengths-1 (oldest first), zero rows after; questions
    [N, sentence_size]; answers [N] (answer-class ids); tasks [N] (bAbI task numbers);
    supports [N, max_supports]: rows of `stories` holding the supporting facts, -1 where there
    is none or the fact fell out of the memory.
    """

    stories: np.ndarray
    story_lengths: np.ndarray
    questions: np.ndarray
    answers: np.ndarray
    tasks: np.ndarray
    supports: np.ndarray

    def __len__(self) -> int:
        return len(self.answers)

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays by name; axis 0 is the batch axis of each."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def select(self, index: np.ndarray | Sequence[int]) -> EncodedSet:
        """The questions at `index` (integer indices or a boolean mask)."""
        return EncodedSet(**{k: v[index] for k, v in self.arrays().items()})

    def for_task(self, task: int) -> EncodedSet:
        return self.select(self.tasks == task)


def memory_of(sample: Sample, memory_size: int) -> tuple[tuple[str, ...], ...]:
    """The sentences a model sees: the last `memory_size` of the story."""
    return sample.story[-memory_size:]


def encode(
    samples: Sequence[Sample],
    vocab: Vocabulary,
    memory_size: int = 50,
    sentence_size: int | None = None,
    max_supports: int | None = None,
) -> EncodedSet:
    """`samples` as arrays. `sentence_size` (words per sentence and question) and
    `max_supports` default to the largest in `samples`; pass them to give several splits one
    shape. A sentence longer than `sentence_size` is an error, not a silent cut."""
    if memory_size < 1:
        raise BabiDataError(f"memory_size must be >= 1, got {memory_size}")
    needed = max(
        (len(x) for s in samples for x in (*memory_of(s, memory_size), s.question)), default=1
    )
    sentence_size = needed if sentence_size is None else sentence_size
    if needed > sentence_size:
        raise BabiDataError(
            f"a sentence of {needed} words does not fit sentence_size {sentence_size}"
        )
    if max_supports is None:
        max_supports = max((len(s.supporting) for s in samples), default=1)
    n = len(samples)
    stories = np.zeros((n, memory_size, sentence_size), np.int32)
    lengths = np.zeros(n, np.int32)
    questions = np.zeros((n, sentence_size), np.int32)
    answers = np.zeros(n, np.int32)
    tasks = np.zeros(n, np.int32)
    supports = np.full((n, max(max_supports, 1)), -1, np.int32)
    for i, s in enumerate(samples):
        memory = memory_of(s, memory_size)
        offset = len(s.story) - len(memory)  # sentences dropped from the front
        for j, sentence in enumerate(memory):
            stories[i, j, : len(sentence)] = vocab.ids(sentence)
        lengths[i] = len(memory)
        questions[i, : len(s.question)] = vocab.ids(s.question)
        answers[i] = vocab.id(s.answer_label)
        tasks[i] = s.task
        kept = [k - offset for k in s.supporting if k >= offset][:max_supports]
        supports[i, : len(kept)] = kept
    return EncodedSet(stories, lengths, questions, answers, tasks, supports)


def split_validation(
    samples: Sequence[Sample], fraction: float = 0.1, seed: int = 0
) -> tuple[list[Sample], list[Sample]]:
    """(train, validation): `round(fraction * n)` questions of each task drawn with `seed`
    go to validation. Both keep file order; the same inputs always give the same split."""
    if not 0.0 <= fraction < 1.0:
        raise BabiDataError(f"the validation fraction must be in [0, 1), got {fraction}")
    by_task: dict[int, list[int]] = {}
    for i, s in enumerate(samples):
        by_task.setdefault(s.task, []).append(i)
    held_out: set[int] = set()
    for task, indices in sorted(by_task.items()):
        rng = np.random.default_rng([seed, task])
        count = round(fraction * len(indices))
        held_out.update(np.asarray(indices)[rng.permutation(len(indices))[:count]].tolist())
    train = [s for i, s in enumerate(samples) if i not in held_out]
    valid = [s for i, s in enumerate(samples) if i in held_out]
    return train, valid


SOURCES = ("files", "generated")
TEST_WORDS = ("seen", "novel")


@dataclass
class BabiDataConfig:
    """Where the bAbI questions come from and how to prepare them (defaults: the MemN2N recipe).

    `source: files` reads the official files under `root` (a folder holding `en/` and
    `en-10k/`, or the official archive's folder) at `size`; `source: generated` needs no files:
    memrl's generator writes `generated_questions` train and as many test questions per task,
    the test set with the default words (`test_words: seen`) or only names, places and objects
    never used in training (`novel`). `tasks` lists the tasks trained together (one task:
    per-task training, all 20: joint training). `fallback_size` (e.g. `1k`): the size whose
    train file stands in for one missing at `size` (some 10k copies lack task 3's), or
    `generated`: memrl's generator writes as many training questions as the missing file holds
    (1,000 or 10,000, with the official words, seeded by `seed`); by default a missing file is
    an error.
    """

    root: str = ""
    tasks: tuple[int, ...] = tuple(range(1, 21))
    size: str = "1k"
    memory_size: int = 50
    valid_fraction: float = 0.1
    seed: int = 0
    source: str = "files"
    generated_questions: int = 1000
    test_words: str = "seen"
    fallback_size: str = ""

    def __post_init__(self) -> None:
        self.tasks = tuple(self.tasks)
        if not self.tasks:
            raise BabiDataError("tasks: list at least one bAbI task (1..20)")
        for task in self.tasks:
            _check_task(task)
        if len(set(self.tasks)) != len(self.tasks):
            raise BabiDataError(f"tasks: {list(self.tasks)} lists a task twice")
        if self.size not in SIZES:
            raise BabiDataError(f"size: {self.size!r} is not one of {sorted(SIZES)}")
        if self.fallback_size and self.fallback_size not in (*SIZES, GENERATED):
            raise BabiDataError(
                f"fallback_size: {self.fallback_size!r} is not one of "
                f"{[*sorted(SIZES), GENERATED]} (or '')"
            )
        if isinstance(self.memory_size, bool) or not isinstance(self.memory_size, int):
            raise BabiDataError(f"memory_size: an integer >= 1, got {self.memory_size!r}")
        if self.memory_size < 1:
            raise BabiDataError(f"memory_size: an integer >= 1, got {self.memory_size}")
        if not 0.0 <= self.valid_fraction < 1.0:
            raise BabiDataError(f"valid_fraction: in [0, 1), got {self.valid_fraction}")
        if self.source not in SOURCES:
            raise BabiDataError(f"source: {self.source!r} is not one of {list(SOURCES)}")
        if self.test_words not in TEST_WORDS:
            raise BabiDataError(f"test_words: {self.test_words!r} is not one of {list(TEST_WORDS)}")
        if self.test_words == "novel" and self.source != "generated":
            raise BabiDataError("test_words: 'novel' needs source: generated")
        n = self.generated_questions
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise BabiDataError(f"generated_questions: an integer >= 1, got {n!r}")


@dataclass(frozen=True)
class BabiData:
    """Encoded train / validation / test splits over one vocabulary and one array shape."""

    vocab: Vocabulary
    train: EncodedSet
    valid: EncodedSet
    test: EncodedSet
    memory_size: int
    sentence_size: int
    seen_in_training: np.ndarray  # bool [len(vocab)]: the word occurs in the training questions


def load_samples(config: BabiDataConfig) -> tuple[list[Sample], list[Sample]]:
    """(train, test) samples of every task in `config`, task by task."""
    train: list[Sample] = []
    test: list[Sample] = []
    if config.source == "generated":
        novel = NOVEL_LEXICON if config.test_words == "novel" else None
        for task in config.tasks:
            n = config.generated_questions
            train += generate_samples(task, n, seed=(config.seed, task, 0))
            test += generate_samples(task, n, seed=(config.seed, task, 1), lexicon=novel)
        return train, test
    if not config.root:
        raise BabiDataError("root: name the folder holding the bAbI files (en/, en-10k/)")
    for task in config.tasks:
        files = find_task_files(config.root, task, config.size, config.fallback_size)
        if files.train_size == GENERATED:
            train += generate_samples(task, QUESTIONS[config.size], seed=(config.seed, task, 0))
        else:
            train += read_file(files.train, task=task)
        test += read_file(files.test, task=task)
    return train, test


def prepare(
    train: Sequence[Sample],
    test: Sequence[Sample],
    memory_size: int = 50,
    valid_fraction: float = 0.1,
    seed: int = 0,
    vocab: Vocabulary | None = None,
) -> BabiData:
    """Split `train`, build the vocabulary from train + test (unless given) and encode all three
    splits with one shape."""
    train_part, valid_part = split_validation(train, valid_fraction, seed)
    vocab = vocab or Vocabulary.build(train, test)
    everything = [*train, *test]
    sentence_size = max(
        (len(x) for s in everything for x in (*memory_of(s, memory_size), s.question)), default=1
    )
    max_supports = max((len(s.supporting) for s in everything), default=1)
    shape = dict(memory_size=memory_size, sentence_size=sentence_size, max_supports=max_supports)
    seen = np.zeros(len(vocab), bool)
    seen[vocab.ids(Vocabulary.build(train).words[2:])] = True
    seen[[PAD_ID, UNKNOWN_ID]] = False  # known words of the vocabulary can still be unknown
    return BabiData(
        vocab=vocab,
        train=encode(train_part, vocab, **shape),
        valid=encode(valid_part, vocab, **shape),
        test=encode(test, vocab, **shape),
        memory_size=memory_size,
        sentence_size=sentence_size,
        seen_in_training=seen,
    )


def load_babi(config: BabiDataConfig) -> BabiData:
    """The questions of `config.tasks` (official files or generated), split and encoded."""
    train, test = load_samples(config)
    return prepare(train, test, config.memory_size, config.valid_fraction, config.seed)
