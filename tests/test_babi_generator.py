"""memrl's bAbI generator: every generated story parses back, and every answer and supporting
fact follows from the world's rules, re-derived here from the sentences alone."""

from __future__ import annotations

import numpy as np
import pytest

from envs.babi import (
    PAD_ID,
    UNKNOWN_ID,
    BabiDataConfig,
    BabiDataError,
    Vocabulary,
    find_task_files,
    load_babi,
    parse_text,
    read_file,
)
from envs.babi.generator import (
    GENERATED_TASKS,
    generate_lines,
    generate_samples,
    task_file_name,
    write_task_file,
)
from envs.babi.lexicon import (
    DEFAULT_LEXICON,
    NOVEL_LEXICON,
    Lexicon,
    all_default_words,
    default_lexicon,
)
from tests.test_babi import BABI, needs_babi

# The checkers below re-derive every answer from the parsed sentences with the world's rules,
# independently of the generator's own bookkeeping.

_ANSWERS_BY_RULE = {}


def _rule(task):
    def register(fn):
        _ANSWERS_BY_RULE[task] = fn
        return fn

    return register


def _moves_to(sentence):
    """The place of a movement sentence ('... to the PLACE'), else None."""
    if len(sentence) >= 3 and sentence[-3] == "to" and sentence[-2] == "the":
        return sentence[-1]
    return None


def _subjects(sentence, previous):
    if sentence[0] in ("after", "afterwards", "following", "then"):
        return previous  # 'he', 'she', 'they': the people of the sentence before
    return [sentence[0], sentence[2]] if sentence[1] == "and" else [sentence[0]]


def _people_places(story):
    """person -> (place, indices of the sentences that tell it), for movement stories."""
    at, previous = {}, []
    for i, sentence in enumerate(story):
        subjects = _subjects(sentence, previous)
        place = _moves_to(sentence)
        if place is not None:
            referring = sentence[0] in ("after", "afterwards", "following", "then")
            for person in subjects:
                at[person] = (place, [i - 1, i] if referring else [i])
        previous = subjects
    return at


@_rule(1)
@_rule(11)
@_rule(12)
@_rule(13)
def _check_where_person(s):
    place, told = _people_places(s.story)[s.question[-1]]
    return place, told


@_rule(6)
def _check_yes_no(s):
    person, asked = s.question[1], s.question[-1]
    place, told = _people_places(s.story)[person]
    return ("yes" if place == asked else "no"), told


_GRAB = {"got", "took", "picked", "grabbed"}
_DROP = {"dropped", "left", "discarded", "put"}


def _objects(story):
    """obj -> (place, the last object sentence, the sentence that told the place, history)."""
    at, holder, state, history = {}, {}, {}, {}
    for i, sentence in enumerate(story):
        person, verb = sentence[0], sentence[1]
        if (place := _moves_to(sentence)) is not None:
            at[person] = (place, i)
            for obj, who in holder.items():
                if who == person:
                    history[obj].append((place, i))
            continue
        obj = sentence[sentence.index("the") + 1]
        if verb in _GRAB:
            holder[obj] = person
            if not history.get(obj) or history[obj][-1][0] != at[person][0]:
                history.setdefault(obj, []).append(at[person])
        else:
            assert verb in _DROP and holder.pop(obj) == person
        state[obj] = i
    result = {}
    for obj, event in state.items():
        if obj in holder:
            place, told = at[holder[obj]]
        else:  # where the person was when they put it down
            person = story[event][0]
            told = max(j for j, x in enumerate(story[:event]) if x[0] == person and _moves_to(x))
            place = story[told][-1]
        result[obj] = (place, event, told, history[obj])
    return result


@_rule(2)
def _check_where_object(s):
    place, event, told, _ = _objects(s.story)[s.question[-1]]
    return place, [event, told]


@_rule(3)
def _check_where_before(s):
    obj, now = s.question[3], s.question[-1]
    _, event, _, history = _objects(s.story)[obj]
    assert history[-1][0] == now
    return history[-2][0], [event, history[-1][1], history[-2][1]]


@_rule(9)
def _check_negation(s):
    person, asked = s.question[1], s.question[-1]
    told = max(i for i, x in enumerate(s.story) if x[0] == person)
    fact = s.story[told]
    there = "not" not in fact and "longer" not in fact
    return ("yes" if there and fact[-1] == asked else "no"), [told]


@_rule(10)
def _check_indefinite(s):
    person, asked = s.question[1], s.question[-1]
    told = max(i for i, x in enumerate(s.story) if x[0] == person)
    fact = s.story[told]
    if "either" in fact:
        return ("maybe" if asked in (fact[-4], fact[-1]) else "no"), [told]
    return ("yes" if fact[-1] == asked else "no"), [told]


_SINGULAR = {"mice": "mouse", "cats": "cat", "sheep": "sheep", "wolves": "wolf"}


@_rule(15)
def _check_deduction(s):
    name = s.question[2]
    told = next(i for i, x in enumerate(s.story) if x[0] == name and x[1] == "is")
    kind = s.story[told][-1]
    rule = next(i for i, x in enumerate(s.story) if _SINGULAR.get(x[0]) == kind)
    return _SINGULAR[s.story[rule][-1]], [told, rule]


@_rule(16)
def _check_induction(s):
    name = s.question[-1]
    told = next(i for i, x in enumerate(s.story) if x[0] == name and x[2] == "a")
    kind = s.story[told][-1]
    same = [i for i, x in enumerate(s.story) if x[-1] == kind and x[0] != name]
    for i in same:
        colour = [j for j, x in enumerate(s.story) if x[0] == s.story[i][0] and x[2] != "a"]
        if colour:
            return s.story[colour[0]][-1], [told, i, colour[0]]
    raise AssertionError("no animal of the same kind has a colour")


_OFFSETS = {"left": (-1, 0), "right": (1, 0), "above": (0, 1), "below": (0, -1)}


def _shape_relation(words):
    """(subject, relation, object) of 'the A is REL the B' / 'is the A REL the B'."""
    text = " ".join(words)
    for relation, phrase in [("left", "to the left of"), ("right", "to the right of"),
                             ("above", "above"), ("below", "below")]:  # fmt: skip
        if f" {phrase} " in text:
            a, b = text.split(f" {phrase} ")
            a = a.removeprefix("is ").removesuffix(" is").removeprefix("the ")
            return a, relation, b.removeprefix("the ")
    raise AssertionError(text)


@_rule(17)
def _check_positional(s):
    where, told = {}, {}
    for i, sentence in enumerate(s.story):
        subject, relation, obj = _shape_relation(sentence)
        dx, dy = _OFFSETS[relation]
        if obj not in where and subject not in where:
            where[obj] = (0, 0)
        if obj in where:
            where[subject] = (where[obj][0] + dx, where[obj][1] + dy)
        else:
            where[obj] = (where[subject][0] - dx, where[subject][1] - dy)
        told.setdefault(subject, []).append(i)
        told.setdefault(obj, []).append(i)
    a, relation, b = _shape_relation(s.question)
    dx, dy = _OFFSETS[relation]
    delta = (where[a][0] - where[b][0], where[a][1] - where[b][1])
    holds = (dx and delta[0] * dx > 0) or (dy and delta[1] * dy > 0)
    assert len(told[a]) == len(told[b]) == 1  # the two outer shapes, told once each
    return ("yes" if holds else "no"), told[a] + told[b]


@_rule(18)
def _check_size(s):
    direct = {}  # (smaller, bigger) -> sentence index
    for i, sentence in enumerate(s.story):
        text = " ".join(sentence).removeprefix("the ")
        if " fits inside the " in text:
            a, b = text.split(" fits inside the ")
        else:
            b, a = text.split(" is bigger than the ")
        direct[(a, b)] = i
    smaller, changed = set(direct), True
    while changed:
        closure = {(a, c) for a, b in smaller for b2, c in smaller if b == b2} - smaller
        changed, smaller = bool(closure), smaller | closure
    text = " ".join(s.question)
    if text.startswith("does"):
        x, y = text.removeprefix("does the ").removesuffix(" fit").split(" fit in the ")
        answer = "yes" if (x, y) in smaller else "no"
    else:
        x, y = text.removeprefix("is the ").split(" bigger than the ")
        answer = "yes" if (y, x) in smaller else "no"
    low, high = (x, y) if (x, y) in smaller else (y, x)
    chains = {  # two told facts low < middle < high
        tuple(sorted((i, direct[(m, high)])))
        for (a, m), i in direct.items()
        if a == low and (m, high) in direct
    }
    return answer, chains


_WHERE = {"hungry": "kitchen", "thirsty": "kitchen", "tired": "bedroom", "bored": "garden"}


@_rule(20)
def _check_motivation(s):
    name = s.question[2]
    told = max(i for i, x in enumerate(s.story) if x[0] == name and x[-1] in _WHERE)
    feeling = s.story[told][-1]
    return (_WHERE[feeling] if s.question[0] == "where" else feeling), [told]


def _holdings(story):
    """person -> (objects held in the order taken, lines of all their object events)."""
    held, events = {}, {}
    for i, sentence in enumerate(story):
        person, verb = sentence[0], sentence[1]
        if _moves_to(sentence) is not None:
            continue
        obj = sentence[sentence.index("the") + 1]
        events.setdefault(person, []).append(i)
        if verb in _GRAB:
            held.setdefault(person, []).append(obj)
        elif verb in _DROP:
            held[person].remove(obj)
        else:
            assert verb in ("gave", "handed", "passed") and sentence[-2] == "to"
            held[person].remove(obj)
            held.setdefault(sentence[-1], []).append(obj)
            events.setdefault(sentence[-1], []).append(i)
    return held, events


@_rule(7)
def _check_counting(s):
    held, events = _holdings(s.story)
    person = s.question[4]
    return ["none", "one", "two", "three"][len(held.get(person, []))], events[person]


@_rule(8)
def _check_lists(s):
    held, events = _holdings(s.story)
    person = s.question[2]
    return ",".join(held.get(person, [])) or "nothing", events[person]


@_rule(5)
def _check_giving(s):
    gives = [  # (giver, object, receiver, sentence)
        (x[0], x[3], x[5], i) for i, x in enumerate(s.story) if x[1] in ("gave", "handed", "passed")
    ]
    q = s.question
    if q[0] == "what":  # what did A give to B
        fits, answer = (lambda g: g[0] == q[2] and g[2] == q[5]), 1
    elif q[1] == "did":  # who did A give the O to
        fits, answer = (lambda g: g[0] == q[2] and g[1] == q[5]), 2
    elif q[1] == "received":  # who received the O
        fits, answer = (lambda g: g[1] == q[3]), 2
    elif len(q) == 4:  # who gave the O
        fits, answer = (lambda g: g[1] == q[3]), 0
    else:  # who gave the O to B
        fits, answer = (lambda g: g[1] == q[3] and g[2] == q[5]), 0
    last = [g for g in gives if fits(g)][-1]
    return last[answer], [last[3]]


_STEP = {"north": (0, 1), "south": (0, -1), "east": (1, 0), "west": (-1, 0)}


def _grid(story):
    """place -> cell from 'the A is DIR of the B' facts, and the facts by place pair."""
    facts = {}
    for i, x in enumerate(story):
        facts[(x[1], x[6])] = (x[3], i)  # the A is DIR of the B
    cell = {next(iter(facts))[1]: (0, 0)}
    while len(cell) < len({p for pair in facts for p in pair}):
        for (a, b), (d, _) in facts.items():
            dx, dy = _STEP[d]
            if b in cell and a not in cell:
                cell[a] = (cell[b][0] + dx, cell[b][1] + dy)
            elif a in cell and b not in cell:
                cell[b] = (cell[a][0] - dx, cell[a][1] - dy)
    return cell, facts


@_rule(4)
def _check_directions(s):
    cell, facts = _grid(s.story)
    q = s.question
    if q[2] == "the":  # what is the A DIR of
        a, d = q[3], q[4]
        dx, dy = _STEP[d]
        want = (cell[a][0] - dx, cell[a][1] - dy)
    else:  # what is DIR of the B
        b, d = q[-1], q[2]
        dx, dy = _STEP[d]
        want = (cell[b][0] + dx, cell[b][1] + dy)
    (answer,) = [p for p, c in cell.items() if c == want]
    (told,) = [
        i for pair, (_, i) in facts.items() if answer in pair and (q[3] in pair or q[-1] in pair)
    ]
    return answer, [told]


@_rule(19)
def _check_path(s):
    cell, facts = _grid(s.story)
    start, goal = s.question[6], s.question[-1]
    linked = {}
    for (a, b), (_, i) in facts.items():
        linked.setdefault(a, []).append((b, i))
        linked.setdefault(b, []).append((a, i))
    for middle, i in linked[start]:
        for end, j in linked[middle]:
            if end == goal:
                steps = []
                for x, y in ((start, middle), (middle, end)):
                    dx, dy = cell[y][0] - cell[x][0], cell[y][1] - cell[x][1]
                    steps.append({v: k for k, v in _STEP.items()}[(dx, dy)][0])
                return ",".join(steps), [i, j]
    raise AssertionError("no two-step path")


_TIMES = ["yesterday", "morning", "afternoon", "evening"]


@_rule(14)
def _check_time(s):
    person, now = s.question[2], s.question[-1]
    when = {}  # time index -> (place, sentence)
    for i, x in enumerate(s.story):
        if person in x:
            (t,) = [k for k, word in enumerate(_TIMES) if word in x]
            place = x[x.index("the") + 1]
            when[t] = (place, i)
    (t,) = [k for k, (place, _) in when.items() if place == now]
    return when[t - 1][0], [when[t][1], when[t - 1][1]]


@pytest.mark.parametrize("task", GENERATED_TASKS)
def test_generated_stories_parse_back_and_answer_by_the_worlds_rules(task):
    lines = generate_lines(task, 300, seed=task)
    samples = parse_text("\n".join(lines), f"generated{task}", task)
    assert len(samples) == 300
    assert samples == generate_samples(task, 300, seed=task)
    for s in samples:
        answer, supports = _ANSWERS_BY_RULE[task](s)
        assert s.answer_label == answer, s
        if isinstance(supports, set):  # any of several chains of facts
            assert tuple(sorted(s.supporting)) in supports, s
        else:
            assert sorted(s.supporting) == sorted(supports), s
    assert len({s.answer for s in samples}) >= 2  # not one answer for everything


def test_generator_is_seeded_and_rejects_what_it_cannot_make(tmp_path):
    assert generate_lines(2, 50, seed=7) == generate_lines(2, 50, seed=7)
    assert generate_lines(2, 50, seed=7) != generate_lines(2, 50, seed=8)
    with pytest.raises(BabiDataError, match="cannot generate bAbI task 21"):
        generate_lines(21, 10)
    with pytest.raises(BabiDataError, match="n_questions"):
        generate_lines(1, 0)
    with pytest.raises(BabiDataError, match="at least 5 people"):
        generate_lines(16, 5, lexicon=Lexicon())
    with pytest.raises(BabiDataError, match="not a single word"):
        Lexicon(places=("living room", "a", "b", "c"))
    with pytest.raises(BabiDataError, match="more than once"):
        Lexicon(female=("Mary", "Sandra"), male=("John", "Mary"))
    path = write_task_file(tmp_path / task_file_name(1, "train"), 1, 20, seed=1)
    assert path.name == "qa1_single-supporting-fact_train.txt"
    assert len(read_file(path)) == 20 and read_file(path)[0].task == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


@needs_babi
@pytest.mark.parametrize("task", GENERATED_TASKS)
def test_generated_stories_read_like_the_official_files(task):
    """Same words, same answers, same question-line layout as the official task file."""
    official_path = find_task_files(BABI, task, "1k").train
    official = read_file(official_path)
    generated = generate_samples(task, 1000, seed=0)

    def words(samples):
        return {w for s in samples for x in (*s.story, s.question, s.answer) for w in x}

    assert words(generated) <= words(official)
    if task != 8:  # lists: the official files hold only some of the orders of 2 and 3 objects
        assert {s.answer for s in generated} <= {s.answer for s in official}
    spaced = " \t" in official_path.read_text()
    assert (" \t" in "\n".join(generate_lines(task, 5))) == spaced
    mean = lambda xs: sum(map(len, xs)) / len(xs)  # noqa: E731
    assert 0.5 < mean([s.story for s in generated]) / mean([s.story for s in official]) < 2.0


@pytest.mark.parametrize("task", GENERATED_TASKS)
def test_novel_lexicon_shares_no_name_with_the_defaults(task):
    assert not NOVEL_LEXICON.words() & all_default_words()
    novel = generate_samples(task, 200, seed=1, lexicon=NOVEL_LEXICON)
    default = generate_samples(task, 200, seed=1)
    novel_words = set(Vocabulary.build(novel).words)
    assert not novel_words & (default_lexicon(task).words() | DEFAULT_LEXICON.words()) - {
        "kitchen", "bedroom", "garden", "apple", "milk", "football",  # task 20's fixed motives
    }  # fmt: skip
    if task not in (17, 18):  # shapes and boxes are not the lexicon's
        assert novel_words & NOVEL_LEXICON.words()
        assert Vocabulary.build(default).words != Vocabulary.build(novel).words
    if BABI is not None:
        official = set(Vocabulary.build(read_file(find_task_files(BABI, task, "1k").test)).words)
        assert not NOVEL_LEXICON.words() & official


def test_generated_source_needs_no_files_and_can_test_on_novel_words():
    config = BabiDataConfig(source="generated", tasks=(1, 2), generated_questions=100, seed=5)
    data = load_babi(config)
    assert (len(data.train), len(data.valid), len(data.test)) == (180, 20, 200)
    assert data.seen_in_training[data.test.answers].all()  # default words: all seen
    assert not data.seen_in_training[[PAD_ID, UNKNOWN_ID]].any()
    again = load_babi(config)
    assert all(
        (a == b).all() for a, b in zip(data.test.arrays().values(), again.test.arrays().values())
    )
    novel = load_babi(BabiDataConfig(**{**vars(config), "test_words": "novel"}))
    words = lambda d: np.array(d.vocab.words)[d.train.stories]  # noqa: E731
    assert (words(novel) == words(data)).all()  # the same training questions
    names = {novel.vocab.id(w) for w in NOVEL_LEXICON.words()} & set(novel.test.questions.ravel())
    assert names and not novel.seen_in_training[sorted(names)].any()
    assert not novel.seen_in_training[novel.test.answers].any()  # every answer is a new place
