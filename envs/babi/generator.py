"""memrl's own bAbI stories: small simulated worlds written out in the official file format.

People move between places and pick up, put down and hand over objects (`world_tasks`), or a
story states facts of a small world of its own (`fact_tasks`); either way the world tracks
what the story has said, so every answer and every supporting fact follows from the world's
state, not from templates. Stories are written exactly as the official files are (same sentence
forms, the same line numbering, the same tab-separated answers), so `read_file` reads them and
a model trained on either sees one language. Generation is seeded and the names, places and
objects come from a `Lexicon`, so a test set can hold only words never seen in training.

`generate_lines(task, n_questions, seed, lexicon)` gives the lines of a file,
`generate_samples` the parsed samples and `write_task_file` writes a file atomically.
Tasks: see `GENERATED_TASKS`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from os import PathLike
from pathlib import Path

from envs.babi import fact_tasks, world_tasks
from envs.babi.lexicon import Lexicon, default_lexicon
from envs.babi.reader import TASK_NAMES, BabiDataError, Sample, parse_lines
from envs.babi.story import Rng, Story
from envs.files import atomic_write_text

# Tasks whose official question lines have a space before the tab ("Where is Mary? \t...").
_SPACED = {1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14}


_GENERATORS: dict[int, Callable[[Rng, Lexicon, Story], None]] = {
    **world_tasks.TASKS,
    **fact_tasks.TASKS,
}
GENERATED_TASKS: tuple[int, ...] = tuple(sorted(_GENERATORS))


def generate_lines(
    task: int, n_questions: int, seed: int | Sequence[int] = 0, lexicon: Lexicon | None = None
) -> list[str]:
    """The lines (no line ends) of a task file with exactly `n_questions` questions.

    The same (task, n_questions, seed, lexicon) always gives the same lines; `lexicon`
    defaults to the words of the official files of `task`."""
    if task not in _GENERATORS:
        raise BabiDataError(
            f"memrl cannot generate bAbI task {task!r}; it generates {list(GENERATED_TASKS)}"
        )
    if isinstance(n_questions, bool) or not isinstance(n_questions, int) or n_questions < 1:
        raise BabiDataError(f"n_questions: an integer >= 1, got {n_questions!r}")
    lexicon = lexicon or default_lexicon(task)
    r = Rng(seed)
    lines: list[str] = []
    asked = 0
    while asked < n_questions:
        story = Story(spaced=task in _SPACED)
        _GENERATORS[task](r, lexicon, story)
        for line_id, text in enumerate(story.lines, start=1):
            lines.append(f"{line_id} {text}")
            asked += "\t" in text
            if asked == n_questions:
                break
    return lines


def generate_samples(
    task: int, n_questions: int, seed: int | Sequence[int] = 0, lexicon: Lexicon | None = None
) -> list[Sample]:
    """`generate_lines` read back by the bAbI reader: what a model trains on."""
    lines = generate_lines(task, n_questions, seed, lexicon)
    return parse_lines(lines, f"<generated task {task}, seed {seed}>", task)


def task_file_name(task: int, split: str) -> str:
    """The official name of a task file, e.g. qa1_single-supporting-fact_train.txt."""
    return f"qa{task}_{TASK_NAMES[task]}_{split}.txt"


def write_task_file(
    path: str | PathLike[str],
    task: int,
    n_questions: int,
    seed: int = 0,
    lexicon: Lexicon | None = None,
) -> Path:
    """Write a generated task file to `path` atomically (temp file, fsync, rename)."""
    path = Path(path)
    text = "".join(line + "\n" for line in generate_lines(task, n_questions, seed, lexicon))
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, text)
    return path
