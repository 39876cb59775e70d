"""The words memrl's bAbI generator builds its worlds from: people, places and objects.

The lexicon is a parameter of the generator so that a test set can be written with names,
places and objects that never occur in training (Weston et al. 2014's "new words at question
time"). The defaults are the official tasks' own words, task by task; `NOVEL_LEXICON` shares
no word with any of them nor with the official files' vocabulary.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from envs.babi.reader import BabiDataError

_NAME = re.compile(r"[A-Za-z]+")


@dataclass(frozen=True)
class Lexicon:
    """People (by grammatical gender, for the pronouns of task 11), places and objects.

    Names are written as given (capitalised names read like the official files); places and
    objects are lower-case single words.
    """

    female: tuple[str, ...] = ("Mary", "Sandra")
    male: tuple[str, ...] = ("John", "Daniel")
    places: tuple[str, ...] = ("bathroom", "bedroom", "garden", "hallway", "kitchen", "office")
    objects: tuple[str, ...] = ("apple", "football", "milk")

    def __post_init__(self) -> None:
        for key in ("female", "male", "places", "objects"):
            words = tuple(getattr(self, key))
            object.__setattr__(self, key, words)
            for word in words:
                if not isinstance(word, str) or _NAME.fullmatch(word) is None:
                    raise BabiDataError(f"lexicon {key}: {word!r} is not a single word")
                if key in ("places", "objects") and word != word.lower():
                    raise BabiDataError(f"lexicon {key}: {word!r} should be lower-case")
        if len(self.people) < 4 or len(self.places) < 4 or len(self.objects) < 3:
            raise BabiDataError(
                "a lexicon needs at least 4 people, 4 places and 3 objects, got "
                f"{len(self.people)}, {len(self.places)} and {len(self.objects)}"
            )
        every = [w.lower() for w in (*self.people, *self.places, *self.objects)]
        if len(set(every)) != len(every):
            twice = sorted({w for w in every if every.count(w) > 1})
            raise BabiDataError(f"lexicon: {twice} listed more than once")

    @property
    def people(self) -> tuple[str, ...]:
        return self.female + self.male

    def pronoun(self, name: str) -> str:
        return "she" if name in self.female else "he"

    def words(self) -> set[str]:
        """Every word of the lexicon, lower-case as the reader tokenises them."""
        return {w.lower() for w in (*self.people, *self.places, *self.objects)}


DEFAULT_LEXICON = Lexicon()

# The official tasks that use other names or places than tasks 1-3 do.
_TIME_LEXICON = Lexicon(
    female=("Julie", "Mary"),
    male=("Fred", "Bill"),
    places=("park", "office", "cinema", "school", "bedroom", "kitchen"),
)
_TASK_LEXICONS: dict[int, Lexicon] = {
    5: Lexicon(female=("Mary",), male=("Bill", "Fred", "Jeff")),
    10: _TIME_LEXICON,
    14: _TIME_LEXICON,
    15: Lexicon(female=("Gertrude", "Winona", "Emily", "Jessica"), male=()),
    16: Lexicon(female=("Lily",), male=("Bernhard", "Brian", "Julius", "Greg")),
    20: Lexicon(female=(), male=("Sumit", "Yann", "Jason", "Antoine")),
}

NOVEL_LEXICON = Lexicon(
    female=("Alice", "Olivia", "Nora", "Ruth", "Clara"),
    male=("Oscar", "Victor", "Hugo", "Peter", "Felix"),
    places=("attic", "cellar", "garage", "library", "studio", "porch"),
    objects=("book", "hammer", "lamp", "kite"),
)


def default_lexicon(task: int) -> Lexicon:
    """The lexicon whose words the official files of `task` use."""
    return _TASK_LEXICONS.get(task, DEFAULT_LEXICON)


def all_default_words() -> set[str]:
    """Every word of every task's default lexicon."""
    return DEFAULT_LEXICON.words().union(*(lex.words() for lex in _TASK_LEXICONS.values()))
