"""Stories told from a simulated world of people who move between places and pick up, put down
and hand over objects (tasks 1, 2, 3, 5, 6, 7, 8). The world keeps what the story has said
about everyone and everything, so answers and supporting facts are read off its state."""

from __future__ import annotations

from envs.babi.lexicon import Lexicon
from envs.babi.story import DROPS, GRABS, MOVES, Rng, Story


class World:
    """People, places and objects of tasks 1, 2, 3 and 6, with what the story has said.

    `at[person]` = (place, id of the line that put them there). An object is held
    (`holder`) or lies where it was put down (`lies`: place, drop line, the line that put its
    last holder there); `history[obj]` lists the places it has been in with the line that
    tells each, and `event[obj]` the line of the last pick-up or put-down.
    """

    def __init__(self, r: Rng, lex: Lexicon, story: Story, people: int = 4) -> None:
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


def _where_person(r: Rng, lex: Lexicon, s: Story) -> None:
    """Task 1: where is a person? The last place they moved to."""
    w = World(r, lex, s)
    for _ in range(5):
        w.move()
        w.move()
        person = r.choice(sorted(w.at))
        s.ask(f"Where is {person}?", w.at[person][0], [w.at[person][1]])


def _where_object(r: Rng, lex: Lexicon, s: Story) -> None:
    """Task 2: where is an object? Its holder's place, or where it was put down."""
    w = World(r, lex, s)
    for _ in range(5):
        for _ in range(r.integer(2, 6)):
            w.act(0.5)
        while not w.event:
            w.act(0.5)
        obj = r.choice(sorted(w.event))
        place, supports = w.where(obj)
        s.ask(f"Where is the {obj}?", place, supports)


def _where_before(r: Rng, lex: Lexicon, s: Story) -> None:
    """Task 3: where was an object before the place it is in now?"""
    w = World(r, lex, s)
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


def _yes_no(r: Rng, lex: Lexicon, s: Story) -> None:
    """Task 6: is a person in a place? Yes iff it is the last place they moved to."""
    w = World(r, lex, s)
    for _ in range(5):
        for _ in range(2):
            w.act(0.8)
        while not w.at:
            w.move()
        person = r.choice(sorted(w.at))
        place, line = w.at[person]
        asked = place if r.chance(0.5) else r.choice([p for p in w.places if p != place])
        s.ask(f"Is {person} in the {asked}?", "yes" if asked == place else "no", [line])


TASKS = {1: _where_person, 2: _where_object, 3: _where_before, 6: _yes_no}
