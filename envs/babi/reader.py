"""The reader for the official bAbI question-answering format (Weston et al. 2015, v1.2).

A bAbI file is a sequence of stories. Every line is `<id> <text>`; ids count up by one within a
story and restart at 1 where a new story begins. A line is either a story sentence or a
question, which carries two more tab-separated fields: the answer (comma-separated words where
the answer is a list or a path, tasks 8 and 19) and the ids of the supporting sentences:

    1 Mary moved to the bathroom.
    2 John went to the hallway.
    3 Where is Mary? \tbathroom\t1

One `Sample` per question holds the story sentences before it (questions are not part of the
story, as in the MemN2N reference code), the question, the answer words and the supporting
facts as indices into that story. The reader is strict: anything it cannot read unambiguously
is a `BabiFormatError` naming the file, the line and what is wrong, so a damaged or foreign
file never turns into silently wrong training data.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import NoReturn

# The 20 English tasks of bAbI v1.2, by number, as their file names spell them.
TASK_NAMES: dict[int, str] = {
    1: "single-supporting-fact",
    2: "two-supporting-facts",
    3: "three-supporting-facts",
    4: "two-arg-relations",
    5: "three-arg-relations",
    6: "yes-no-questions",
    7: "counting",
    8: "lists-sets",
    9: "simple-negation",
    10: "indefinite-knowledge",
    11: "basic-coreference",
    12: "conjunction",
    13: "compound-coreference",
    14: "time-reasoning",
    15: "basic-deduction",
    16: "basic-induction",
    17: "positional-reasoning",
    18: "size-reasoning",
    19: "path-finding",
    20: "agents-motivations",
}

_LINE = re.compile(r"([0-9]+) (.*)", re.ASCII | re.DOTALL)
_SUPPORT_ID = re.compile(r"[0-9]+", re.ASCII)
# A word is a run of letters/digits, apostrophes inside kept; every other character (the full
# stop and question mark of the official files, commas, stray punctuation) separates words and
# is dropped. On the official files this equals the reference's lower-case, whitespace split
# and trailing '.'/'?' strip.
_WORD = re.compile(r"\w+(?:'\w+)*")


class BabiDataError(ValueError):
    """bAbI data that cannot be found or used (the message says which file or key and why)."""


class BabiFormatError(BabiDataError):
    """A bAbI file that does not follow the official format, with the file and line at fault."""

    def __init__(self, source: str, line: int, problem: str) -> None:
        self.source, self.line, self.problem = source, line, problem
        super().__init__(f"{source}:{line}: {problem}")


@dataclass(frozen=True)
class Sample:
    """One question with its context.

    `story[i]` is the i-th story sentence before the question (tokens), `story_line_ids[i]` its
    id in the file; `supporting` indexes `story`. `answer` holds one word, or several for the
    list and path answers of tasks 8 and 19 (in the file's order). `task` is the bAbI task
    number (0 when unknown) and `line` the question's line number in its file (1-based).
    """

    story: tuple[tuple[str, ...], ...]
    story_line_ids: tuple[int, ...]
    question: tuple[str, ...]
    answer: tuple[str, ...]
    supporting: tuple[int, ...]
    task: int = 0
    line: int = 0

    @property
    def answer_label(self) -> str:
        """The answer as one class, as the reference treats it: words joined by commas."""
        return ",".join(self.answer)


def tokenize(text: str) -> list[str]:
    """Lower-case words of `text`, punctuation dropped (see `_WORD`)."""
    return _WORD.findall(text.lower())


def _id_list(ids: list[int]) -> str:
    if not ids:
        return "none"
    shown = ", ".join(map(str, ids[:8]))
    return shown + (f", ... {ids[-1]}" if len(ids) > 8 else "")


def _parse_answer(field: str, fail: Callable[[str], NoReturn]) -> tuple[str, ...]:
    words = []
    for part in field.split(","):
        word = part.strip().lower()
        if not word or _WORD.fullmatch(word) is None:
            fail(f"the answer {field!r} is not a comma-separated list of words")
        words.append(word)
    return tuple(words)


def parse_lines(lines: list[str], source: str = "<text>", task: int = 0) -> list[Sample]:
    """Samples of the bAbI lines `lines` (without line ends); `source` names them in errors."""
    samples: list[Sample] = []
    story: list[tuple[str, ...]] = []
    story_ids: list[int] = []
    index_of: dict[int, int] = {}  # statement line id -> index in `story`
    question_ids: set[int] = set()
    previous = 0
    for lineno, raw in enumerate(lines, start=1):

        def fail(problem: str, lineno: int = lineno) -> NoReturn:
            raise BabiFormatError(source, lineno, problem)

        line = raw[:-1] if raw.endswith("\r") else raw
        match = _LINE.fullmatch(line)
        if match is None:
            what = "an empty line" if not line.strip() else f"{line[:40]!r}"
            fail(f"{what} is not '<id> <sentence>' or '<id> <question>\\t<answer>\\t<ids>'")
        if len(match.group(1)) > 9:
            fail(f"line id {match.group(1)[:12]}... is too large")
        line_id, text = int(match.group(1)), match.group(2)
        if line_id == 1:
            story, story_ids, index_of, question_ids = [], [], {}, set()
        elif line_id != previous + 1:
            expected = "1" if previous == 0 else f"{previous + 1} or 1 (a new story)"
            fail(f"line id {line_id} should be {expected}: ids count up by 1 within a story")
        previous = line_id
        fields = text.split("\t")
        if len(fields) == 1:
            words = tokenize(text)
            if not words:
                fail(f"the sentence {text!r} has no words")
            index_of[line_id] = len(story)
            story.append(tuple(words))
            story_ids.append(line_id)
            continue
        if len(fields) != 3:
            fail(
                f"a question line has 3 tab-separated fields (question, answer, supporting "
                f"ids), found {len(fields)}"
            )
        question = tokenize(fields[0])
        if not question:
            fail(f"the question {fields[0]!r} has no words")
        answer = _parse_answer(fields[1], fail)
        ids = fields[2].split()
        if not ids:
            fail("a question needs the ids of its supporting sentences, found none")
        supporting = []
        for token in ids:
            if _SUPPORT_ID.fullmatch(token) is None or len(token) > 9:
                fail(f"supporting id {token[:20]!r} is not a line number of this story")
            ref = int(token)
            if ref in question_ids:
                fail(f"supporting id {ref} is a question, not a story sentence")
            if ref not in index_of:
                fail(
                    f"supporting id {ref} is not an earlier sentence of this story "
                    f"(its sentence ids so far: {_id_list(story_ids)})"
                )
            supporting.append(index_of[ref])
        question_ids.add(line_id)
        samples.append(
            Sample(
                story=tuple(story),
                story_line_ids=tuple(story_ids),
                question=tuple(question),
                answer=answer,
                supporting=tuple(supporting),
                task=task,
                line=lineno,
            )
        )
    return samples


def parse_text(data: bytes | str, source: str = "<text>", task: int = 0) -> list[Sample]:
    """Samples of a whole bAbI file's content (UTF-8 bytes or text)."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as err:
            line = data[: err.start].count(b"\n") + 1
            raise BabiFormatError(source, line, f"not UTF-8 text ({err.reason})") from None
    lines = data.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the newline that ends the last line
    samples = parse_lines(lines, source, task)
    if not samples:
        raise BabiFormatError(source, max(len(lines), 1), "no questions in the file")
    return samples


def read_file(path: str | PathLike[str], task: int = 0) -> list[Sample]:
    """Samples of the bAbI file at `path`, one per question, in file order.

    `task` is stored on each sample; with the default 0 it is taken from an official file name
    (`qa{N}_...`) when there is one.
    """
    path = Path(path)
    if task == 0 and (match := re.match(r"qa([0-9]+)_", path.name)):
        task = int(match.group(1))
    try:
        data = path.read_bytes()
    except OSError as err:
        raise BabiDataError(f"cannot read bAbI file {path}: {err.strerror or err}") from None
    return parse_text(data, str(path), task)
