"""Stories told from a simulated world of people who move between places and pick up, put down
and hand over objects (tasks 1, 2, 3, 5, 6, 7, 8). The world keeps what the story has said
about everyone and everything, so answers and supporting facts are read off its state."""

from __future__ import annotations

from envs.babi.lexicon import Lexicon
from envs.babi.story import DROPS, GIVES, GRABS, MOVES, Rng, Story


class World:
    """People, places and objects, with what the story has said about them.

    `at[person]` = (place, id of the line that put them there). An object is held
    (`holder`, in the order the objects were taken) or lies where it was put down (`lies`:
    place, drop line, the line that put its last holder there); `history[obj]` lists the places
    it has been in with the line that tells each, and `event[obj]` the line of the last
    pick-up, put-down or hand-over. `involved[person]` lists the lines of everything a person
    took, put down, gave or received, and `gives` every hand-over (giver, object, receiver,
    line). A hand-over does not need the two people in one place (neither do the official
    files); only tasks 5 and 7 hand objects over, and they ask who has what, not where.
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
        self.involved: dict[str, list[int]] = {}
        self.gives: list[tuple[str, str, str, int]] = []

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
        self.involved.setdefault(person, []).append(self.event[obj])
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
        self.involved[person].append(line)
        self.lies[obj] = (place, line, moved)
        return True

    def give(self) -> bool:
        options = [(g, o, p) for o, g in self.holder.items() for p in self.people if p != g]
        if not options:
            return False
        giver, obj, receiver = self.r.choice(options)
        line = self.story.say(f"{giver} {self.r.choice(GIVES)} the {obj} to {receiver}.")
        del self.holder[obj]
        self.holder[obj] = receiver  # now last in the receiver's order of taking
        self.at.setdefault(receiver, self.at[giver])
        self.event[obj] = line
        self.involved.setdefault(giver, []).append(line)
        self.involved.setdefault(receiver, []).append(line)
        self.gives.append((giver, obj, receiver, line))
        return True

    def carrying(self, person: str) -> list[str]:
        """What `person` holds, in the order they took it."""
        return [obj for obj, holder in self.holder.items() if holder == person]

    def act(self, p_move: float, p_give: float = 0.0) -> None:
        """One sentence: a move with probability `p_move`, else a hand-over with probability
        `p_give` (where someone holds something), else a pick-up or a put-down."""
        if self.r.chance(p_move):
            self.move()
        elif p_give and self.r.chance(p_give) and self.give():
            return
        elif not (self.grab() if self.r.chance(0.5) else self.drop()):
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


def _giving(r: Rng, lex: Lexicon, s: Story) -> None:
    """Task 5: who gave what to whom; the last hand-over that fits the question answers it."""
    w = World(r, lex, s)
    for _ in range(5):
        for _ in range(r.integer(3, 7)):
            w.act(0.45, p_give=0.5)
        while not w.gives:
            w.act(0.3, p_give=0.7)
        giver, obj, receiver, _ = r.choice(w.gives[-3:])
        kind = r.integer(0, 4)
        if kind == 0:
            fits, asked, say = (0, 2), f"What did {giver} give to {receiver}?", 1
        elif kind == 1:
            fits, asked, say = (0, 1), f"Who did {giver} give the {obj} to?", 2
        elif kind == 2:
            fits, asked, say = (1, 2), f"Who gave the {obj} to {receiver}?", 0
        elif kind == 3:
            fits, asked, say = (1,), f"Who gave the {obj}?", 0
        else:
            fits, asked, say = (1,), f"Who received the {obj}?", 2
        key = (giver, obj, receiver)
        last = next(g for g in reversed(w.gives) if all(g[i] == key[i] for i in fits))
        s.ask(asked, last[say], [last[3]])


_COUNTS = ("none", "one", "two", "three")


def _counting(r: Rng, lex: Lexicon, s: Story) -> None:
    """Task 7: how many objects a person carries, after all they took, dropped and passed."""
    w = World(r, lex, s)
    for _ in range(5):
        for _ in range(r.integer(1, 4)):
            w.act(0.5, p_give=0.2)
        while not w.involved:
            w.act(0.5)
        person = r.choice(sorted(w.involved))
        count = _COUNTS[len(w.carrying(person))]
        s.ask(f"How many objects is {person} carrying?", count, w.involved[person])


def _lists(r: Rng, lex: Lexicon, s: Story) -> None:
    """Task 8: what a person carries, as a list in the order they took it ('nothing')."""
    w = World(r, lex, s)
    for _ in range(5):
        for _ in range(r.integer(1, 4)):
            w.act(0.5)
        while not w.involved:
            w.act(0.5)
        person = r.choice(sorted(w.involved))
        held = ",".join(w.carrying(person)) or "nothing"
        s.ask(f"What is {person} carrying?", held, w.involved[person])


TASKS = {
    1: _where_person,
    2: _where_object,
    3: _where_before,
    5: _giving,
    6: _yes_no,
    7: _counting,
    8: _lists,
}
