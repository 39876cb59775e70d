"""Stories whose tasks need no carried objects: directions, negation, indefinite knowledge,
coreference, conjunction, time, deduction, induction, positions, sizes, paths and motivations
(tasks 4, 9-20). Each keeps its own small world (where each place lies on a grid, who is
where when, which animal fears which, where each shape is, which box is bigger) and reads
answers and supporting facts off it."""

from __future__ import annotations

import numpy as np

from envs.babi.lexicon import Lexicon
from envs.babi.reader import BabiDataError
from envs.babi.story import GRABS, MOVES, THEN, Rng, Story


def _negation(r: Rng, lex: Lexicon, s: Story) -> None:
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


def _indefinite(r: Rng, lex: Lexicon, s: Story) -> None:
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


def _coreference(r: Rng, lex: Lexicon, s: Story) -> None:
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


def _conjunction(r: Rng, lex: Lexicon, s: Story) -> None:
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


def _compound_coreference(r: Rng, lex: Lexicon, s: Story) -> None:
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


def _deduction(r: Rng, lex: Lexicon, s: Story) -> None:
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


def _induction(r: Rng, lex: Lexicon, s: Story) -> None:
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


def _positional(r: Rng, lex: Lexicon, s: Story) -> None:
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


def _size(r: Rng, lex: Lexicon, s: Story) -> None:
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


def _motivation(r: Rng, lex: Lexicon, s: Story) -> None:
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


_COMPASS = {"north": (0, 1), "south": (0, -1), "east": (1, 0), "west": (-1, 0)}
_AGAINST = {"north": "south", "south": "north", "east": "west", "west": "east"}


def _map(r: Rng, places: list[str]) -> list[tuple[str, str, str]]:
    """Places laid on a grid as a tree, each next to one placed before it; the facts
    (a, direction, b) say 'the a is <direction> of the b'. A tree has one path between any two
    places, and no two places share a cell, so every answer is unique."""
    cell = {places[0]: (0, 0)}
    facts = []
    for new in places[1:]:
        options = [
            (anchor, d, (cell[anchor][0] + dx, cell[anchor][1] + dy))
            for anchor in cell
            for d, (dx, dy) in _COMPASS.items()
            if (cell[anchor][0] + dx, cell[anchor][1] + dy) not in cell.values()
        ]
        anchor, d, where = r.choice(options)
        cell[new] = where
        facts.append((new, d, anchor) if r.chance(0.5) else (anchor, _AGAINST[d], new))
    return facts


def _directions(r: Rng, lex: Lexicon, s: Story) -> None:
    """Task 4: 'The office is north of the kitchen.' -> what is north of the kitchen?"""
    facts = _map(r, r.sample(lex.places, 3))
    lines = [s.say(f"The {a} is {d} of the {b}.") for a, d, b in facts]
    i = r.integer(0, len(facts) - 1)
    a, d, b = facts[i]
    if r.chance(0.5):
        s.ask(f"What is {d} of the {b}?", a, [lines[i]])
    else:
        s.ask(f"What is the {a} {d} of?", b, [lines[i]])


def _path(r: Rng, lex: Lexicon, s: Story) -> None:
    """Task 19: the two steps (n, s, e, w) from one place to another on a map of facts."""
    facts = _map(r, r.sample(lex.places, 6))
    order = r.gen.permutation(len(facts))
    line_of = {}
    for i in order:
        a, d, b = facts[i]
        line_of[i] = s.say(f"The {a} is {d} of the {b}.")
    step = {}  # (from, to) -> (direction letter, fact index)
    for i, (a, d, b) in enumerate(facts):
        step[(b, a)] = (d[0], i)
        step[(a, b)] = (_AGAINST[d][0], i)
    routes = [(x, y, z) for (x, y) in step for (y2, z) in step if y2 == y and z != x]
    x, y, z = r.choice(routes)
    (first, i), (second, j) = step[(x, y)], step[(y, z)]
    s.ask(f"How do you go from the {x} to the {z}?", f"{first},{second}", [line_of[i], line_of[j]])


_TIMES = ("yesterday", "this morning", "this afternoon", "this evening")


def _time(r: Rng, lex: Lexicon, s: Story) -> None:
    """Task 14: where was someone before a place, told out of order with times of day."""
    people, places = r.sample(lex.people, 4), r.sample(lex.places, 6)
    plan = {person: r.sample(places, 4) for person in people}  # a place per time, no repeats
    untold = [(person, k) for person in people for k in range(4)]
    told: dict[tuple[str, int], int] = {}

    def tell() -> None:
        person, k = untold.pop(r.integer(0, len(untold) - 1))
        verb, place, when = r.choice(MOVES), plan[person][k], _TIMES[k]
        if r.chance(0.5):
            told[(person, k)] = s.say(f"{when.capitalize()} {person} {verb} the {place}.")
        else:
            told[(person, k)] = s.say(f"{person} {verb} the {place} {when}.")

    for _ in range(5):
        for _ in range(r.integer(1, 3)):
            if untold:
                tell()
        while not (askable := sorted(pk for pk in told if pk[1] and (pk[0], pk[1] - 1) in told)):
            tell()
        person, k = r.choice(askable)
        s.ask(
            f"Where was {person} before the {plan[person][k]}?",
            plan[person][k - 1],
            [told[(person, k)], told[(person, k - 1)]],
        )


TASKS = {
    4: _directions,
    9: _negation,
    10: _indefinite,
    11: _coreference,
    12: _conjunction,
    13: _compound_coreference,
    14: _time,
    15: _deduction,
    16: _induction,
    17: _positional,
    18: _size,
    19: _path,
    20: _motivation,
}
