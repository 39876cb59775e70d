"""memrl's own CLEVR question templates and a generator that asks them over scenes.

Nineteen families cover CLEVR's five question types (exist, count, compare integer, query
attribute, compare attribute) with chain-structured programs (filters, unique, one or two relate
hops, same_*) and tree-structured ones (union/intersect of two branches, comparisons of two
counts or two objects). An instance is a scene's objects described by random attribute subsets;
it is kept only if it is well posed, as CLEVR's generator requires:

- every unique() sees exactly one object (a description names one thing or is rejected);
- a relate hop is trivial when the filters after it pick the same objects from the whole scene;
  as in CLEVR's generator, only a tenth of the trivial draws are kept;
- no other degenerate form: a queried or compared attribute is not in the description, the two
  branches of a tree differ (distinct objects, descriptions or sets, neither set inside the other
  for union/intersect), zero-hop exist/count describe something, counts compared are not both 0;
- answers stay balanced per family as CLEVR's generator keeps them: an answer is refused while
  its count exceeds 1.1 times the next most frequent answer's or 5 times the median (at least 5).

`generate_questions` returns `Question`s in CLEVR's format; `write_questions` writes its JSON.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from envs.clevr.catalog import ATTRIBUTES, RELATIONS, SYNONYMS
from envs.clevr.executor import Answer, ExecutionError, Node, execute_steps, to_answer
from envs.clevr.formats import Question

Desc = dict[str, str]  # attribute -> value, a description of objects
ATTR_ORDER = ("size", "color", "material", "shape")  # CLEVR's <Z> <C> <M> <S> filter order
REL_TEXT = {"left": "left of", "right": "right of", "behind": "behind", "front": "in front of"}
TEMPLATE_FILENAME = "memrl_templates"
TRIVIAL_RELATE_FRACTION = 0.1  # CLEVR's trivial_frac


class _Reject(Exception):
    """An instance that is ill posed on this scene; the generator draws another."""


class _Ctx:
    """One attempt at a template on a scene: draws descriptions, builds the program."""

    def __init__(self, scene: Mapping[str, Any], rng: np.random.Generator) -> None:
        self.scene = scene
        self.objects = scene["objects"]
        self.rng = rng
        self.nodes: list[Node] = []

    # -- drawing ---------------------------------------------------------------------------
    def pick(self, seq: Sequence[Any]) -> Any:
        if not seq:
            raise _Reject("nothing to pick from")
        return seq[int(self.rng.integers(len(seq)))]

    def attr(self, exclude: Sequence[str] = ()) -> str:
        return self.pick([a for a in ATTR_ORDER if a not in exclude])

    def matches(self, desc: Desc, candidates: Sequence[int]) -> list[int]:
        return [j for j in candidates if all(self.objects[j][a] == v for a, v in desc.items())]

    def unique_desc(
        self, candidates: Sequence[int], exclude: Sequence[str] = (), avoid: Sequence[int] = ()
    ) -> tuple[Desc, int]:
        """A description naming exactly one of `candidates` (not one in `avoid`)."""
        target = self.pick([j for j in candidates if j not in avoid])
        attrs = [a for a in ATTR_ORDER if a not in exclude]
        for _ in range(4):
            k = int(self.rng.integers(0 if len(candidates) == 1 else 1, len(attrs) + 1))
            chosen = set(self.rng.permutation(attrs)[:k].tolist())
            desc = {a: self.objects[target][a] for a in ATTR_ORDER if a in chosen}
            if self.matches(desc, candidates) == [target]:
                return desc, target
        raise _Reject("no unique description")

    def set_desc(self, candidates: Sequence[int], exclude: Sequence[str] = ()) -> Desc:
        """A description of some objects: each attribute kept with probability 0.45, its value
        taken from one of `candidates` or the vocabulary (so counts are not mostly 0)."""
        desc: Desc = {}
        source = self.pick(candidates) if candidates and self.rng.random() < 0.7 else None
        for a in ATTR_ORDER:
            if a in exclude or self.rng.random() >= 0.45:
                continue
            desc[a] = self.objects[source][a] if source is not None else self.pick(ATTRIBUTES[a][1])
        return desc

    def related(self, obj: int, rel: str) -> list[int]:
        return [j for j in self.scene["relationships"][rel][obj] if j != obj]

    def same(self, obj: int, attr: str) -> list[int]:
        me = self.objects[obj][attr]
        return [j for j, o in enumerate(self.objects) if j != obj and o[attr] == me]

    # -- program building ------------------------------------------------------------------
    def add(self, function: str, inputs: Sequence[int] = (), value: str | None = None) -> int:
        self.nodes.append(Node(function, tuple(inputs), () if value is None else (value,)))
        return len(self.nodes) - 1

    def filtered(self, inp: int, desc: Desc) -> int:
        for a in ATTR_ORDER:
            if a in desc:
                inp = self.add(f"filter_{a}", [inp], desc[a])
        return inp

    def scene_filter(self, desc: Desc) -> int:
        return self.filtered(self.add("scene"), desc)

    def unique_of(self, desc: Desc) -> int:
        return self.add("unique", [self.scene_filter(desc)])

    # -- text ------------------------------------------------------------------------------
    def word(self, value: str) -> str:
        return self.pick(SYNONYMS.get(value, (value,)))

    def text(self, desc: Desc, plural: bool = False) -> str:
        words = [self.word(desc[a]) for a in ("size", "color", "material") if a in desc]
        noun = self.word(desc["shape"]) if "shape" in desc else self.pick(("thing", "object"))
        return " ".join([*words, noun + ("s" if plural else "")])


Builder = Callable[[_Ctx], str]
ALL = "all"


def _all(c: _Ctx) -> list[int]:
    return list(range(len(c.objects)))


# -- chain-structured families ---------------------------------------------------------------
def exist_zero(c: _Ctx) -> str:
    d = c.set_desc(_all(c))
    if not d:
        raise _Reject("'are there any things' is always yes")
    c.add("exist", [c.scene_filter(d)])
    return f"Are there any {c.text(d, True)}?"


def count_zero(c: _Ctx) -> str:
    d = c.set_desc(_all(c))
    if not d:
        raise _Reject("counting all things")
    c.add("count", [c.scene_filter(d)])
    return f"How many {c.text(d, True)} are there?"


def query_zero(c: _Ctx) -> str:
    a = c.attr()
    d, _ = c.unique_desc(_all(c), exclude=[a])
    c.add(f"query_{a}", [c.unique_of(d)])
    return c.pick((f"What {a} is the {c.text(d)}?", f"What is the {a} of the {c.text(d)}?"))


def _relate_hop(c: _Ctx) -> tuple[Desc, int, str, int]:
    d1, o1 = c.unique_desc(_all(c))
    rel = c.pick(RELATIONS)
    return d1, o1, rel, c.add("relate", [c.unique_of(d1)], rel)


def exist_relate(c: _Ctx) -> str:
    d1, o1, rel, r = _relate_hop(c)
    d2 = c.set_desc(c.related(o1, rel))
    c.add("exist", [c.filtered(r, d2)])
    return f"Are there any {c.text(d2, True)} {REL_TEXT[rel]} the {c.text(d1)}?"


def count_relate(c: _Ctx) -> str:
    d1, o1, rel, r = _relate_hop(c)
    d2 = c.set_desc(c.related(o1, rel))
    c.add("count", [c.filtered(r, d2)])
    return f"How many {c.text(d2, True)} are {REL_TEXT[rel]} the {c.text(d1)}?"


def query_relate(c: _Ctx) -> str:
    a = c.attr()
    d1, o1, rel, r = _relate_hop(c)
    d2, _ = c.unique_desc(c.related(o1, rel), exclude=[a])
    c.add(f"query_{a}", [c.add("unique", [c.filtered(r, d2)])])
    return f"What {a} is the {c.text(d2)} {REL_TEXT[rel]} the {c.text(d1)}?"


def count_two_hop(c: _Ctx) -> str:
    d1, o1, rel1, r1 = _relate_hop(c)
    d2, o2 = c.unique_desc(c.related(o1, rel1))
    rel2 = c.pick(RELATIONS)
    r2 = c.add("relate", [c.add("unique", [c.filtered(r1, d2)])], rel2)
    d3 = c.set_desc(c.related(o2, rel2))
    c.add("count", [c.filtered(r2, d3)])
    return (
        f"How many {c.text(d3, True)} are {REL_TEXT[rel2]} the {c.text(d2)} that is "
        f"{REL_TEXT[rel1]} the {c.text(d1)}?"
    )


def same_count(c: _Ctx) -> str:
    a = c.attr()
    d, _ = c.unique_desc(_all(c), exclude=[a])
    c.add("count", [c.add(f"same_{a}", [c.unique_of(d)])])
    return f"How many other things are the same {a} as the {c.text(d)}?"


def same_exist(c: _Ctx) -> str:
    a = c.attr()
    d1, o1 = c.unique_desc(_all(c), exclude=[a])
    d2 = c.set_desc(c.same(o1, a), exclude=[a])
    c.add("exist", [c.filtered(c.add(f"same_{a}", [c.unique_of(d1)]), d2)])
    return f"Are there any other {c.text(d2, True)} that have the same {a} as the {c.text(d1)}?"


def same_query(c: _Ctx) -> str:
    a = c.attr()
    q = c.attr(exclude=[a])
    d1, o1 = c.unique_desc(_all(c), exclude=[a])
    d2, _ = c.unique_desc(c.same(o1, a), exclude=[a, q])
    s = c.add(f"same_{a}", [c.unique_of(d1)])
    c.add(f"query_{q}", [c.add("unique", [c.filtered(s, d2)])])
    return f"What {q} is the other {c.text(d2)} that has the same {a} as the {c.text(d1)}?"


# -- tree-structured families ----------------------------------------------------------------
def _two_sets(c: _Ctx) -> tuple[Desc, Desc]:
    d1, d2 = c.set_desc(_all(c)), c.set_desc(_all(c))
    if not d1 or not d2 or d1 == d2:
        raise _Reject("the two descriptions must differ and say something")
    return d1, d2


def _check_branches(c: _Ctx, s1: Sequence[int], s2: Sequence[int]) -> None:
    a, b = set(s1), set(s2)
    if a <= b or b <= a:
        raise _Reject("one branch's set holds the other's: the combination is degenerate")


def or_count(c: _Ctx) -> str:
    d1, d2 = _two_sets(c)
    _check_branches(c, c.matches(d1, _all(c)), c.matches(d2, _all(c)))
    c.add("count", [c.add("union", [c.scene_filter(d1), c.scene_filter(d2)])])
    return f"How many things are {c.text(d1, True)} or {c.text(d2, True)}?"


def _two_relates(c: _Ctx, combine: str) -> tuple[Desc, str, Desc, str, int, list[int]]:
    d1, o1 = c.unique_desc(_all(c))
    d2, o2 = c.unique_desc(_all(c), avoid=[o1])
    rel1, rel2 = c.pick(RELATIONS), c.pick(RELATIONS)
    s1, s2 = c.related(o1, rel1), c.related(o2, rel2)
    _check_branches(c, s1, s2)
    r1 = c.add("relate", [c.unique_of(d1)], rel1)
    r2 = c.add("relate", [c.unique_of(d2)], rel2)
    both = c.add(combine, [r1, r2])
    members = sorted(set(s1) & set(s2)) if combine == "intersect" else sorted(set(s1) | set(s2))
    return d1, rel1, d2, rel2, both, members


def and_count(c: _Ctx) -> str:
    d1, rel1, d2, rel2, both, members = _two_relates(c, "intersect")
    d3 = c.set_desc(members)
    c.add("count", [c.filtered(both, d3)])
    return (
        f"How many {c.text(d3, True)} are {REL_TEXT[rel1]} the {c.text(d1)} and "
        f"{REL_TEXT[rel2]} the {c.text(d2)}?"
    )


def and_exist(c: _Ctx) -> str:
    d1, rel1, d2, rel2, both, members = _two_relates(c, "intersect")
    d3 = c.set_desc(members)
    c.add("exist", [c.filtered(both, d3)])
    return (
        f"Are there any {c.text(d3, True)} that are {REL_TEXT[rel1]} the {c.text(d1)} and "
        f"{REL_TEXT[rel2]} the {c.text(d2)}?"
    )


def or_exist(c: _Ctx) -> str:
    d1, rel1, d2, rel2, both, members = _two_relates(c, "union")
    d3 = c.set_desc(members)
    c.add("exist", [c.filtered(both, d3)])
    return (
        f"Are there any {c.text(d3, True)} that are {REL_TEXT[rel1]} the {c.text(d1)} or "
        f"{REL_TEXT[rel2]} the {c.text(d2)}?"
    )


def _compare_counts(c: _Ctx, function: str) -> tuple[Desc, Desc]:
    d1, d2 = _two_sets(c)
    if not c.matches(d1, _all(c)) and not c.matches(d2, _all(c)):
        raise _Reject("comparing two counts of 0")
    n1 = c.add("count", [c.scene_filter(d1)])
    n2 = c.add("count", [c.scene_filter(d2)])
    c.add(function, [n1, n2])
    return d1, d2


def compare_more(c: _Ctx) -> str:
    d1, d2 = _compare_counts(c, "greater_than")
    return f"Are there more {c.text(d1, True)} than {c.text(d2, True)}?"


def compare_fewer(c: _Ctx) -> str:
    d1, d2 = _compare_counts(c, "less_than")
    return f"Are there fewer {c.text(d1, True)} than {c.text(d2, True)}?"


def compare_equal(c: _Ctx) -> str:
    d1, d2 = _compare_counts(c, "equal_integer")
    return f"Are there the same number of {c.text(d1, True)} and {c.text(d2, True)}?"


def compare_attr(c: _Ctx) -> str:
    a = c.attr()
    d1, o1 = c.unique_desc(_all(c), exclude=[a])
    d2, _ = c.unique_desc(_all(c), exclude=[a], avoid=[o1])
    q1 = c.add(f"query_{a}", [c.unique_of(d1)])
    q2 = c.add(f"query_{a}", [c.unique_of(d2)])
    c.add(f"equal_{a}", [q1, q2])
    return f"Does the {c.text(d1)} have the same {a} as the {c.text(d2)}?"


def compare_attr_relate(c: _Ctx) -> str:
    a = c.attr()
    d1, o1, rel, r = _relate_hop(c)
    d2, o2 = c.unique_desc(c.related(o1, rel), exclude=[a])
    d3, _ = c.unique_desc(_all(c), exclude=[a], avoid=[o2])
    q1 = c.add(f"query_{a}", [c.add("unique", [c.filtered(r, d2)])])
    q2 = c.add(f"query_{a}", [c.unique_of(d3)])
    c.add(f"equal_{a}", [q1, q2])
    return f"Is the {c.text(d2)} {REL_TEXT[rel]} the {c.text(d1)} the same {a} as the {c.text(d3)}?"


@dataclass(frozen=True)
class Template:
    """A question family: its index (`question_family_index`), question type and structure."""

    family: int
    name: str
    question_type: str
    structure: str
    build: Builder


_FAMILIES: list[tuple[Builder, str, str]] = [
    (exist_zero, "exist", "chain"),
    (count_zero, "count", "chain"),
    (query_zero, "query_attribute", "chain"),
    (exist_relate, "exist", "chain"),
    (count_relate, "count", "chain"),
    (query_relate, "query_attribute", "chain"),
    (count_two_hop, "count", "chain"),
    (same_count, "count", "chain"),
    (same_exist, "exist", "chain"),
    (same_query, "query_attribute", "chain"),
    (or_count, "count", "tree"),
    (and_count, "count", "tree"),
    (and_exist, "exist", "tree"),
    (or_exist, "exist", "tree"),
    (compare_more, "compare_integer", "tree"),
    (compare_fewer, "compare_integer", "tree"),
    (compare_equal, "compare_integer", "tree"),
    (compare_attr, "compare_attribute", "tree"),
    (compare_attr_relate, "compare_attribute", "tree"),
]
TEMPLATES: tuple[Template, ...] = tuple(
    Template(i, fn.__name__, qtype, structure, fn)
    for i, (fn, qtype, structure) in enumerate(_FAMILIES)
)
QUESTION_TYPES = ("exist", "count", "compare_integer", "query_attribute", "compare_attribute")


def trivial_relates(nodes: Sequence[Node], scene: Mapping[str, Any], outputs: Sequence[Any]) -> int:
    """How many relate hops add nothing: the filters after the relate pick the same objects
    from the related ones as from the whole scene (CLEVR's `find_relate_filter_options` calls
    these trivial and keeps only a tenth of them)."""
    objects = scene["objects"]
    trivial = 0
    for i, node in enumerate(nodes):
        if node.function != "relate":
            continue
        desc: Desc = {}
        last = i
        while True:
            nxt = [j for j, n in enumerate(nodes) if last in n.inputs]
            if len(nxt) != 1 or not nodes[nxt[0]].function.startswith("filter_"):
                break
            last = nxt[0]
            desc[nodes[last].function[7:]] = nodes[last].value_inputs[0]
        everywhere = [j for j, o in enumerate(objects) if all(o[a] == v for a, v in desc.items())]
        if outputs[last] == everywhere:
            trivial += 1
    return trivial


def possible_answers(template: Template) -> tuple[Answer, ...]:
    """Every answer a family can have, for balancing (counts 0..10, as CLEVR v1.0)."""
    if template.question_type == "count":
        return tuple(range(11))
    if template.question_type == "query_attribute":
        return tuple(v for _, values in ATTRIBUTES.values() for v in values)
    return ("yes", "no")


class AnswerBalancer:
    """CLEVR's answer balancing per family: refuses an answer whose count would exceed 1.1 times
    the next most frequent answer's, or 5 times the median count (at least 5)."""

    def __init__(self) -> None:
        self.counts: dict[int, dict[Answer, int]] = {}

    def _counts(self, template: Template) -> dict[Answer, int]:
        if template.family not in self.counts:
            self.counts[template.family] = dict.fromkeys(possible_answers(template), 0)
        return self.counts[template.family]

    def accepts(self, template: Template, answer: Answer) -> bool:
        counts = self._counts(template)
        ranked = sorted(counts.values())
        cur = counts.get(answer, 0)
        median = max(ranked[len(ranked) // 2], 5)
        return not (cur > 1.1 * ranked[-2] or cur > 5 * median)

    def add(self, template: Template, answer: Answer) -> None:
        counts = self._counts(template)
        counts[answer] = counts.get(answer, 0) + 1


def ask(
    template: Template, scene: Mapping[str, Any], rng: np.random.Generator
) -> tuple[str, tuple[Node, ...], Answer] | None:
    """One attempt at `template` on `scene`: (text, program, answer), or None if the draw was
    ill posed."""
    c = _Ctx(scene, rng)
    try:
        text = template.build(c)
    except _Reject:
        return None
    nodes = tuple(c.nodes)
    trace = execute_steps(nodes, scene)
    if isinstance(trace.answer, ExecutionError):
        return None
    if trivial_relates(nodes, scene, trace.outputs) and rng.random() >= TRIVIAL_RELATE_FRACTION:
        return None
    return text, nodes, trace.answer


@dataclass(frozen=True)
class QuestionConfig:
    """How many questions per scene, from which families (names; None: all), how hard to try."""

    questions_per_scene: int = 10
    families: tuple[str, ...] | None = None
    tries_per_question: int = 100
    balance: bool = True

    def __post_init__(self) -> None:
        known = {t.name for t in TEMPLATES}
        unknown = set(self.families or ()) - known
        if unknown:
            raise ValueError(
                f"QuestionConfig.families: unknown {sorted(unknown)}; known: {sorted(known)}"
            )
        if self.questions_per_scene < 0 or self.tries_per_question < 1:
            raise ValueError("QuestionConfig: questions_per_scene >= 0, tries_per_question >= 1")


def generate_questions(
    scenes: Sequence[Mapping[str, Any]], seed: int, config: QuestionConfig | None = None
) -> list[Question]:
    """Questions over `scenes`, families taken in turn (a family that finds no well-posed,
    balanced instance on a scene in `tries_per_question` draws leaves that slot empty)."""
    cfg = config or QuestionConfig()
    rng = np.random.default_rng(seed)
    templates = [t for t in TEMPLATES if cfg.families is None or t.name in cfg.families]
    balancer = AnswerBalancer()
    questions: list[Question] = []
    turn = 0
    for scene in scenes:
        asked: set[str] = set()
        for _ in range(cfg.questions_per_scene):
            template = templates[turn % len(templates)]
            turn += 1
            for _try in range(cfg.tries_per_question):
                got = ask(template, scene, rng)
                if got is None or got[0] in asked:
                    continue
                text, nodes, answer = got
                if cfg.balance and not balancer.accepts(template, answer):
                    continue
                balancer.add(template, answer)
                asked.add(text)
                questions.append(
                    Question(
                        question=text,
                        image_index=scene["image_index"],
                        answer=to_answer(answer),
                        program=nodes,
                        question_index=len(questions),
                        question_family_index=template.family,
                        image_filename=scene.get("image_filename"),
                        split=scene.get("split"),
                        template_filename=TEMPLATE_FILENAME,
                    )
                )
                break
    return questions


def template_of(question: Question) -> Template | None:
    """The memrl template a generated question came from."""
    f = question.question_family_index
    if question.template_filename != TEMPLATE_FILENAME or f is None or not 0 <= f < len(TEMPLATES):
        return None
    return TEMPLATES[f]
