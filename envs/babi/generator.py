"""memrl's own bAbI stories: a small simulated world written out in the official file format.

People move between places and pick up and put down objects; the world tracks where everyone
and everything is, so every answer and every supporting fact follows from the world's state,
not from templates. Stories are written exactly as the official files are (same sentence
forms, the same line numbering, the same tab-separated answers), so `read_file` reads them and
a model trained on either sees one language. Generation is seeded and the names, places and
objects come from a `Lexicon`, so a test set can hold only words never seen in training.

`generate_lines(task, n_questions, seed, lexicon)` gives the lines of a file,
`generate_samples` the parsed samples and `write_task_file` writes a file atomically.
Tasks: see `GENERATED_TASKS`.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from os import PathLike
from pathlib import Path
from typing import TypeVar

import numpy as np

from envs.babi.lexicon import Lexicon, default_lexicon
from envs.babi.reader import TASK_NAMES, BabiDataError, Sample, parse_lines

T = TypeVar("T")

MOVES = ("moved to", "went to", "went back to", "journeyed to", "travelled to")
GRABS = ("got", "took", "picked up", "grabbed")
DROPS = ("dropped", "left", "discarded", "put down")
THEN = ("After that", "Afterwards", "Following that", "Then")
# Tasks whose official question lines have a space before the tab ("Where is Mary? \t...").
_SPACED = {1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14}


class _Rng:
    """The few draws the stories need, over one seeded numpy generator."""

    def __init__(self, seed: int) -> None:
        self.gen = np.random.default_rng(seed)

    def choice(self, items: Sequence[T]) -> T:
        return items[int(self.gen.integers(len(items)))]

    def sample(self, items: Sequence[T], k: int) -> list[T]:
        return [items[i] for i in self.gen.permutation(len(items))[:k]]

    def chance(self, p: float) -> bool:
        return bool(self.gen.random() < p)

    def integer(self, low: int, high: int) -> int:
        """Uniform in [low, high]."""
        return int(self.gen.integers(low, high + 1))


class _Story:
    """The lines of one story; `say` and `ask` return nothing but the said line's id."""

    def __init__(self, spaced: bool) -> None:
        self.lines: list[str] = []
        self.spaced = spaced

    def say(self, text: str) -> int:
        self.lines.append(text)
        return len(self.lines)

    def ask(self, question: str, answer: str, supports: Sequence[int]) -> None:
        space = " " if self.spaced else ""
        self.lines.append(f"{question}{space}\t{answer}\t{' '.join(map(str, supports))}")


class _World:
    """People, places and objects of tasks 1, 2, 3 and 6, with what the story has said.

    `at[person]` = (place, id of the line that put them there). An object is held
    (`holder`) or lies where it was put down (`lies`: place, drop line, the line that put its
    last holder there); `history[obj]` lists the places it has been in with the line that
    tells each, and `event[obj]` the line of the last pick-up or put-down.
    """

    def __init__(self, r: _Rng, lex: Lexicon, story: _Story, people: int = 4) -> None:
        self.r, self.story = r, story
        self.people = r.sample(lex.people, people)
        self.places = r.sample(lex.places, 6)
        self.objects = r.sample(lex.objects, 3)
        self.at: dict[str, tuple[str, int]] = {}
        self.holder: dict[str, str] = {}
        self.lies: dict[str, tuple[str, int, int]] = {}
        self.history: dict[str, list[tuple[str, int]]] = {}
        self.event: dict[str, int] = {}

    def move(self, person: str | None = None) -> int:
        person = person or self.r.choice(self.people)
        here = self.at.get(person, (None, 0))[0]
        place = self.r.choice([p for p in self.places if p != here])
        line = self.story.say(f"{person} {self.r.choice(MOVES)} the {place}.")
        self.at[person] = (place, line)
        for obj, holder in self.holder.items():
            if holder == person:
                self.history[obj].append((place, line))
        return line

    def grab(self) -> bool:
        options = [
            (person, obj)
            for person in self.people
            if person in self.at
            for obj in self.objects
            if obj not in self.holder
            and (obj not in self.lies or self.lies[obj][0] == self.at[person][0])
        ]
        if not options:
            return False
        person, obj = self.r.choice(options)
        place, moved = self.at[person]
        there = " there" if self.r.chance(0.5) else ""
        self.event[obj] = self.story.say(f"{person} {self.r.choice(GRABS)} the {obj}{there}.")
        self.holder[obj] = person
        self.lies.pop(obj, None)
        history = self.history.setdefault(obj, [])
        if not history or history[-1][0] != place:
            history.append((place, moved))
        return True

    def drop(self) -> bool:
        if not self.holder:
            return False
        obj = self.r.choice(sorted(self.holder))
        person = self.holder.pop(obj)
        place, moved = self.at[person]
        there = " there" if self.r.chance(0.3) else ""
        line = self.story.say(f"{person} {self.r.choice(DROPS)} the {obj}{there}.")
        self.event[obj] = line
        self.lies[obj] = (place, line, moved)
        return True

    def act(self, p_move: float) -> None:
        """One sentence: a move with probability `p_move`, else a pick-up or a put-down."""
        if self.r.chance(p_move) or not (self.grab() if self.r.chance(0.5) else self.drop()):
            self.move()

    def where(self, obj: str) -> tuple[str, list[int]]:
        """Where `obj` is, and the two facts that tell it (the object's, then the person's)."""
        if obj in self.holder:
            place, moved = self.at[self.holder[obj]]
            return place, [self.event[obj], moved]
        place, dropped, moved = self.lies[obj]
        return place, [dropped, moved]


def _where_person(r: _Rng, lex: Lexicon, s: _Story) -> None:
    """Task 1: where is a person? The last place they moved to."""
    w = _World(r, lex, s)
    for _ in range(5):
        w.move()
        w.move()
        person = r.choice(sorted(w.at))
        s.ask(f"Where is {person}?", w.at[person][0], [w.at[person][1]])


def _where_object(r: _Rng, lex: Lexicon, s: _Story) -> None:
    """Task 2: where is an object? Its holder's place, or where it was put down."""
    w = _World(r, lex, s)
    for _ in range(5):
        for _ in range(r.integer(2, 6)):
            w.act(0.5)
        while not w.event:
            w.act(0.5)
        obj = r.choice(sorted(w.event))
        place, supports = w.where(obj)
        s.ask(f"Where is the {obj}?", place, supports)


def _where_before(r: _Rng, lex: Lexicon, s: _Story) -> None:
    """Task 3: where was an object before the place it is in now?"""
    w = _World(r, lex, s)
    for _ in range(5):
        for _ in range(r.integer(5, 20)):
            w.act(0.6)
        while not (askable := sorted(o for o, h in w.history.items() if len(h) >= 2)):
            w.act(0.6)
        obj = r.choice(askable)
        (before, told_before), (now, told_now) = w.history[obj][-2:]
        s.ask(
            f"Where was the {obj} before the {now}?", before, [w.event[obj], told_now, told_before]
        )


def _yes_no(r: _Rng, lex: Lexicon, s: _Story) -> None:
    """Task 6: is a person in a place? Yes iff it is the last place they moved to."""
    w = _World(r, lex, s)
    for _ in range(5):
        for _ in range(2):
            w.act(0.8)
        while not w.at:
            w.move()
        person = r.choice(sorted(w.at))
        place, line = w.at[person]
        asked = place if r.chance(0.5) else r.choice([p for p in w.places if p != place])
        s.ask(f"Is {person} in the {asked}?", "yes" if asked == place else "no", [line])


def _negation(r: _Rng, lex: Lexicon, s: _Story) -> None:
    """Task 9: statements and negated statements; the last fact about a person decides."""
    people, places = r.sample(lex.people, 4), r.sample(lex.places, 6)
    facts: dict[str, tuple[str, bool, int]] = {}  # person -> (place, is there, line)
    for _ in range(5):
        for _ in range(2):
            person, place = r.choice(people), r.choice(places)
            kind = r.integer(0, 3)
            if kind == 0:
                text, there = f"{person} {r.choice(MOVES)} the {place}.", True
            elif kind == 1:
                text, there = f"{person} is in the {place}.", True
            else:
                text, there = f"{person} is {('not', 'no longer')[kind - 2]} in the {place}.", False
            facts[person] = (place, there, s.say(text))
        person = r.choice(sorted(facts))
        place, there, line = facts[person]
        asked = place if not there or r.chance(0.5) else r.choice([p for p in places if p != place])
        s.ask(f"Is {person} in the {asked}?", "yes" if there and asked == place else "no", [line])


def _indefinite(r: _Rng, lex: Lexicon, s: _Story) -> None:
    """Task 10: 'X is either in A or B' makes the answer 'maybe' for A and B, 'no' elsewhere."""
    people, places = r.sample(lex.people, 4), r.sample(lex.places, 6)
    facts: dict[str, tuple[tuple[str, ...], int]] = {}  # person -> (possible places, line)
    for _ in range(5):
        for _ in range(2):
            person = r.choice(people)
            kind = r.integer(0, 2)
            if kind == 2:
                a, b = r.sample(places, 2)
                facts[person] = ((a, b), s.say(f"{person} is either in the {a} or the {b}."))
            else:
                place = r.choice(places)
                verb = r.choice(MOVES) if kind == 0 else "is in"
                facts[person] = ((place,), s.say(f"{person} {verb} the {place}."))
        person = r.choice(sorted(facts))
        possible, line = facts[person]
        inside = r.chance(0.5 if len(possible) == 1 else 0.67)
        asked = r.choice(possible) if inside else r.choice([p for p in places if p not in possible])
        answer = "no" if not inside else ("yes" if len(possible) == 1 else "maybe")
        s.ask(f"Is {person} in the {asked}?", answer, [line])


def _coreference(r: _Rng, lex: Lexicon, s: _Story) -> None:
    """Task 11: a pronoun refers to the person of the sentence before."""
    people, places = r.sample(lex.people, 4), r.sample(lex.places, 6)
    at: dict[str, tuple[str, list[int]]] = {}
    for _ in range(5):
        person = r.choice(people)
        first, then = r.sample(places, 2)
        named = s.say(f"{person} {r.choice(MOVES)} the {first}.")
        pronoun = lex.pronoun(person)
        line = s.say(f"{r.choice(THEN)} {pronoun} {r.choice(MOVES)} the {then}.")
        at[person] = (then, [named, line])
        asked = r.choice(sorted(at))
        s.ask(f"Where is {asked}?", *at[asked])


def _conjunction(r: _Rng, lex: Lexicon, s: _Story) -> None:
    """Task 12: two people move together."""
    people, places = r.sample(lex.people, 4), r.sample(lex.places, 6)
    at: dict[str, tuple[str, int]] = {}
    for _ in range(5):
        for _ in range(2):
            pair, place = r.sample(people, 2), r.choice(places)
            line = s.say(f"{pair[0]} and {pair[1]} {r.choice(MOVES)} the {place}.")
            at.update({p: (place, line) for p in pair})
        asked = r.choice(sorted(at))
        s.ask(f"Where is {asked}?", at[asked][0], [at[asked][1]])


def _compound_coreference(r: _Rng, lex: Lexicon, s: _Story) -> None:
    """Task 13: 'they' refers to the two people of the sentence before."""
    people, places = r.sample(lex.people, 4), r.sample(lex.places, 6)
    at: dict[str, tuple[str, list[int]]] = {}
    for _ in range(5):
        pair = r.sample(people, 2)
        first, then = r.sample(places, 2)
        named = s.say(f"{pair[0]} and {pair[1]} {r.choice(MOVES)} the {first}.")
        line = s.say(f"{r.choice(THEN)} they {r.choice(MOVES)} the {then}.")
        at.update({p: (then, [named, line]) for p in pair})
        asked = r.choice(sorted(at))
        s.ask(f"Where is {asked}?", *at[asked])


_SPECIES = (("mouse", "mice"), ("cat", "cats"), ("sheep", "sheep"), ("wolf", "wolves"))


def _deduction(r: _Rng, lex: Lexicon, s: _Story) -> None:
    """Task 15: 'Mice are afraid of wolves. Gertrude is a mouse.' -> Gertrude fears wolves."""
    fears = {kind: r.choice([k for k in _SPECIES if k != kind]) for kind in _SPECIES}
    names = r.sample(lex.people, 4)
    kind_of = {name: r.choice(_SPECIES) for name in names}
    facts = [("rule", kind) for kind in _SPECIES] + [("name", name) for name in names]
    line_of: dict[tuple[str, object], int] = {}
    for i in r.gen.permutation(len(facts)):
        what, who = facts[i]
        if what == "rule":
            text = f"{who[1].capitalize()} are afraid of {fears[who][1]}."
        else:
            text = f"{who} is a {kind_of[who][0]}."
        line_of[facts[i]] = s.say(text)
    for _ in range(4):
        name = r.choice(names)
        kind = kind_of[name]
        s.ask(
            f"What is {name.lower()} afraid of?",
            fears[kind][0],
            [line_of[("name", name)], line_of[("rule", kind)]],
        )


_ANIMALS = ("frog", "lion", "swan", "rhino")
_COLOURS = ("yellow", "green", "gray", "white")


def _induction(r: _Rng, lex: Lexicon, s: _Story) -> None:
    """Task 16: one member of a species has a colour, so another one has it too."""
    if len(lex.people) < 5:
        raise BabiDataError("task 16 needs a lexicon with at least 5 people")
    colour = dict(zip(_ANIMALS, r.sample(_COLOURS, 4), strict=True))
    target, witness, *others = r.sample(lex.people, 5)
    kind = r.choice(_ANIMALS)
    kind_of = {target: kind, witness: kind}
    kind_of.update({name: r.choice([a for a in _ANIMALS if a != kind]) for name in others})
    # Each named animal is introduced before its colour is told; the target's colour never is.
    pending = [[(name, "kind"), (name, "colour")] for name in (witness, *others)] + [
        [(target, "kind")]
    ]
    line_of: dict[tuple[str, str], int] = {}
    while pending:
        queue = pending[r.integer(0, len(pending) - 1)]
        name, what = queue.pop(0)
        pending = [q for q in pending if q]
        value = f"a {kind_of[name]}" if what == "kind" else colour[kind_of[name]]
        line_of[(name, what)] = s.say(f"{name} is {value}.")
    supports = [line_of[(target, "kind")], line_of[(witness, "kind")], line_of[(witness, "colour")]]
    s.ask(f"What color is {target}?", colour[kind], supports)


_SHAPES = ("triangle", "pink rectangle", "blue square", "red square", "red sphere", "yellow square")
_DIRECTIONS = {  # relation -> (axis, sign): "a is <relation> b" means a = b + sign along axis
    "to the left of": (0, -1),
    "to the right of": (0, 1),
    "above": (1, 1),
    "below": (1, -1),
}
_OPPOSITE = {"to the left of": "to the right of", "above": "below"}
_OPPOSITE.update({v: k for k, v in _OPPOSITE.items()})


def _positional(r: _Rng, lex: Lexicon, s: _Story) -> None:
    """Task 17: two placements around a middle shape; questions relate the two outer ones."""
    middle, first, second = r.sample(_SHAPES, 3)
    where = {middle: np.zeros(2, int)}
    relation_one = r.choice(sorted(_DIRECTIONS))
    relation_two = r.choice(
        # On one axis, only the opposite side of the middle shape keeps the answers certain.
        [d for d in _DIRECTIONS if _DIRECTIONS[d][0] != _DIRECTIONS[relation_one][0]]
        + [_OPPOSITE[relation_one]]
    )
    line_of = {}
    for shape, relation in [(first, relation_one), (second, relation_two)]:
        axis, sign = _DIRECTIONS[relation]
        where[shape] = where[middle].copy()
        where[shape][axis] += sign
        if r.chance(0.5):
            line_of[shape] = s.say(f"The {shape} is {relation} the {middle}.")
        else:
            line_of[shape] = s.say(f"The {middle} is {_OPPOSITE[relation]} the {shape}.")
    for _ in range(8):
        a, b = r.sample([first, second], 2)
        relation = r.choice(sorted(_DIRECTIONS))
        axis, sign = _DIRECTIONS[relation]
        holds = sign * (where[a][axis] - where[b][axis]) > 0
        s.ask(f"Is the {a} {relation} the {b}?", "yes" if holds else "no", [line_of[a], line_of[b]])


_BOXES = ("chocolate", "box of chocolates", "box", "suitcase", "chest", "container")


def _size(r: _Rng, lex: Lexicon, s: _Story) -> None:
    """Task 18: sizes compared through a middle object ('fits inside', 'is bigger than')."""
    while True:
        # As in the official files: chocolate < box of chocolates < the four containers, whose
        # sizes are drawn anew for every story.
        order = [*_BOXES[:2], *r.sample(_BOXES[2:], 4)]
        boxes = [order[i] for i in sorted(r.sample(range(6), 5))]  # smallest first
        rank = {box: i for i, box in enumerate(boxes)}
        pairs = [(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1 :]]
        facts = r.sample(pairs, r.integer(4, 6))
        told = set(facts)
        chains = [
            (a, c, (a, b), (b, c))
            for a, b in facts
            for b2, c in facts
            if b2 == b and (a, c) not in told
        ]
        if chains:
            break
    line_of = {}
    for small, big in facts:
        if r.chance(0.5):
            line_of[(small, big)] = s.say(f"The {small} fits inside the {big}.")
        else:
            line_of[(small, big)] = s.say(f"The {big} is bigger than the {small}.")
    for _ in range(r.integer(2, 6)):
        small, big, lower, upper = r.choice(chains)
        x, y = (small, big) if r.chance(0.5) else (big, small)
        first, second = (lower, upper) if x == small else (upper, lower)
        supports = [line_of[first], line_of[second]]
        if r.chance(0.5):
            s.ask(f"Does the {x} fit in the {y}?", "yes" if rank[x] < rank[y] else "no", supports)
        else:
            s.ask(
                f"Is the {x} bigger than the {y}?", "yes" if rank[x] > rank[y] else "no", supports
            )


_MOTIVES = {  # feeling -> (where one goes, what one gets there)
    "hungry": ("kitchen", "apple"),
    "thirsty": ("kitchen", "milk"),
    "tired": ("bedroom", "pajamas"),
    "bored": ("garden", "football"),
}


def _motivation(r: _Rng, lex: Lexicon, s: _Story) -> None:
    """Task 20: a feeling sends a person to a place, where they get a thing."""
    people = r.sample(lex.people, r.integer(2, 4))
    feeling = {p: r.choice(sorted(_MOTIVES)) for p in people}
    steps = {p: ["feel", "go", "get"][: r.integer(1, 3)] for p in people}
    told: dict[str, int] = {}
    while any(steps.values()):
        person = r.choice([p for p in people if steps[p]])
        step, name = steps[person].pop(0), person.lower()
        place, thing = _MOTIVES[feeling[person]]
        if step == "feel":
            told[person] = s.say(f"{person} is {feeling[person]}.")
            s.ask(f"Where will {name} go?", place, [told[person]])
        elif step == "go":
            s.say(f"{person} {r.choice(MOVES)} the {place}.")
            s.ask(f"Why did {name} go to the {place}?", feeling[person], [told[person]])
        else:
            s.say(f"{person} {r.choice(GRABS)} the {thing} there.")
            s.ask(f"Why did {name} get the {thing}?", feeling[person], [told[person]])


_GENERATORS: dict[int, Callable[[_Rng, Lexicon, _Story], None]] = {
    1: _where_person,
    2: _where_object,
    3: _where_before,
    6: _yes_no,
    9: _negation,
    10: _indefinite,
    11: _coreference,
    12: _conjunction,
    13: _compound_coreference,
    15: _deduction,
    16: _induction,
    17: _positional,
    18: _size,
    20: _motivation,
}
GENERATED_TASKS: tuple[int, ...] = tuple(sorted(_GENERATORS))


def generate_lines(
    task: int, n_questions: int, seed: int = 0, lexicon: Lexicon | None = None
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
    r = _Rng(seed)
    lines: list[str] = []
    asked = 0
    while asked < n_questions:
        story = _Story(spaced=task in _SPACED)
        _GENERATORS[task](r, lexicon, story)
        for line_id, text in enumerate(story.lines, start=1):
            lines.append(f"{line_id} {text}")
            asked += "\t" in text
            if asked == n_questions:
                break
    return lines


def generate_samples(
    task: int, n_questions: int, seed: int = 0, lexicon: Lexicon | None = None
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
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
