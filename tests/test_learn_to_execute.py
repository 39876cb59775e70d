"""Learning to Execute: the program generator's length and nesting, memrl's interpreter against a
reference evaluation (Python's, here only), the curriculum strategies' mixtures, the task's
layout (teacher forcing), the env checker, and a smoke training through Ray (in
tests/test_train_smoke.py, which starts Ray once for every agent's)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs
from envs.learn_to_execute import (
    CHAR_ID,
    VOCAB,
    LearnToExecute,
    ProgramError,
    _Builder,
    decode,
    generate_addition,
    generate_program,
    program_split,
    run_program,
)


def reference(code: str) -> int:
    """Python's own evaluation of a generated program (the reference, in the test only)."""
    scope: dict = {}
    exec(code.replace("print(", "_printed=("), {}, scope)  # noqa: S102
    return scope["_printed"]


@pytest.mark.parametrize("length", [1, 2, 4, 6])
@pytest.mark.parametrize("nesting", [1, 2, 3, 4])
def test_interpreter_agrees_with_python(length, nesting):
    rng = np.random.default_rng(length * 10 + nesting)
    for _ in range(60):
        code, value = generate_program(length, nesting, rng)
        assert value == reference(code), code
        assert set(code) <= set(VOCAB)


def test_generator_respects_length_and_nesting():
    rng = np.random.default_rng(0)
    for length in (1, 3, 5):
        for nesting in (1, 2, 3):
            for _ in range(40):
                builder = _Builder(length, rng)
                builder.expression(nesting)
                assert builder.operations == nesting
            code, _ = generate_program(length, nesting, rng)
            # constants have `length` digits; loop counts and multipliers are small (<= 4 length)
            small = {int(n) for n in re.findall(r"range\((\d+)\)|\*(\d+)", code) for n in n if n}
            for number in map(int, re.findall(r"\d+", code)):
                assert len(str(number)) == length or number in small or length == 1
            assert all(1 <= n <= 4 * length for n in small)
    code, value = generate_addition(9, rng)
    a, b = map(int, re.fullmatch(r"print\((\d{9})\+(\d{9})\)", code).groups())
    assert value == a + b


def test_interpreter_refuses_what_is_not_the_language():
    for bad, where in [
        ("print(1+)", "line 1"),
        ("x=1\nprint(y)", "unknown name 'y'"),
        ("x=1", "no print"),
        ("print(1)\nx=2", "print must be the last line"),
        ("for x in range(3):y+=1\nprint(1)", "defined variable"),
        ("import os\nprint(1)", "not a statement"),
        ("print(2**3)", "line 1"),
        ("print(1;2)", "unexpected character"),
    ]:
        with pytest.raises(ProgramError, match=re.escape(where)):
            run_program(bad)


def test_curriculum_strategies_draw_the_documented_mixtures():
    rng = np.random.default_rng(0)

    def draws(strategy, n=2000):
        task = LearnToExecute(
            length=2, nesting=1, target_length=6, target_nesting=3, strategy=strategy
        )
        return [task._difficulty(rng) for _ in range(n)]

    assert set(draws("baseline")) == {(6, 3)}
    assert set(draws("naive")) == {(2, 1)}  # the curriculum's current level
    mix = draws("mix")
    assert {length for length, _ in mix} == set(range(1, 7))
    assert {nesting for _, nesting in mix} == {1, 2, 3}
    combined = draws("combined")
    at_level = sum(d == (2, 1) for d in combined) / len(combined)
    # 4/5 naive plus the mix's own (2, 1) draws (1/18 of the other 1/5)
    assert at_level == pytest.approx(0.8 + 0.2 / 18, abs=0.03)


def test_sequence_layout_is_teacher_forced():
    task = LearnToExecute(task="addition", length=3, nesting=0)
    inputs, targets, mask = task.sample_batch(4, np.random.default_rng(1))
    assert targets.dtype == np.int64 and inputs.shape[:2] == targets.shape == mask.shape
    for b in range(4):
        out = np.flatnonzero(mask[:, b])
        code = decode(inputs[: out[0], b, : len(VOCAB)].argmax(-1))
        printed = decode(targets[out, b])
        assert printed == f"{run_program(code)}." and printed.endswith(".")
        assert inputs[out, b, len(VOCAB)].all()  # the output-phase flag
        # each output step after the first reads the previous target character
        for t_prev, t in zip(out[:-1], out[1:]):
            assert inputs[t, b, targets[t_prev, b]] == 1.0
    assert CHAR_ID["."] == targets[np.flatnonzero(mask[:, 0])[-1], 0]


def test_env_checker_and_registered_id():
    check_env(envs.make("memrl/LearnToExecute-v0").unwrapped, skip_render_check=True)
    with pytest.raises(envs.EnvSpecError, match="strategy"):
        envs.make("memrl/LearnToExecute-v0", strategy="random")
    with pytest.raises(envs.EnvSpecError, match="length"):
        envs.make("memrl/LearnToExecute-v0", length=0)


def test_episode_return_is_character_accuracy_minus_one():
    """The curriculum threshold and the evaluation read as the paper's per-character accuracy."""
    env = LearnToExecute(task="addition", length=3, target_length=3, strategy="baseline")

    def episode(right_chars: int) -> tuple[float, int]:
        """Answer the first `right_chars` output characters right and the rest wrong."""
        env.reset(seed=3)
        total, outputs, done = 0.0, 0, False
        while not done:
            t = env._t
            target = int(env._targets[t])
            action = target if outputs < right_chars else (target + 1) % len(VOCAB)
            outputs += int(bool(env._mask[t]))
            _, reward, done, _, _ = env.step(np.int64(action))
            total += reward
        return total, outputs

    total, outputs = episode(0)
    assert outputs >= 4  # e.g. "1234." for two 3-digit numbers
    assert total == pytest.approx(-1.0)
    assert episode(2)[0] == pytest.approx(2 / outputs - 1.0)
    assert episode(outputs)[0] == 0.0


def test_report_grid_covers_every_difficulty_up_to_the_target():
    addition = LearnToExecute(task="addition", length=1, target_length=4, strategy="combined")
    assert [v[1] for v in addition.report_variants] == [1, 2, 3, 4]
    assert all(v[2]["strategy"] == "baseline" for v in addition.report_variants)
    programs = LearnToExecute(length=1, nesting=1, target_length=3, target_nesting=2)
    cells = {(v[2]["length"], v[2]["nesting"]) for v in programs.report_variants}
    assert cells == {(k, m) for k in (1, 2, 3) for m in (1, 2)}


def test_the_benchmark_records_where_each_curriculum_level_began() -> None:
    from benchmarks.l2e import level_changes

    rows = [
        {"updates": 1, "sequences": 100, "curriculum_level": 0},
        {"updates": 50, "sequences": 5000},  # an evaluation row without the level
        {"updates": 90, "sequences": 9000, "curriculum_level": 0},
        {"updates": 110, "sequences": 11000, "curriculum_level": 1},
        {"updates": 130, "sequences": 13000, "curriculum_level": 1},
        {"updates": 150, "sequences": 15000, "curriculum_level": 2},
    ]
    assert level_changes(rows) == [
        {"level": 0, "updates": 1, "sequences": 100},
        {"level": 1, "updates": 110, "sequences": 11000},
        {"level": 2, "updates": 150, "sequences": 15000},
    ]
    assert level_changes([]) == []


def test_splits_hold_disjoint_thirds_of_the_programs():
    """As the reference's hash split: a test program is never a training one."""
    rng = np.random.default_rng(0)
    seen = {}
    for split in ("train", "validation", "test"):
        task = LearnToExecute(task="addition", length=1, target_length=1, split=split)
        seen[split] = {task.draw(rng) for _ in range(2000)}
        assert all(program_split(code, out) == split for code, out in seen[split])
    assert not seen["train"] & seen["test"] and not seen["train"] & seen["validation"]
    assert not seen["validation"] & seen["test"]
    # 1-digit addition has 100 programs (0-9 + 0-9): the three thirds hold all of them
    every = {LearnToExecute(task="addition", length=1).draw(rng) for _ in range(5000)}
    assert len(every) == 100 and set().union(*seen.values()) == every
    assert all(20 <= len(programs) <= 46 for programs in seen.values())
    # programs with nesting: same rule, and the split is a function of the text alone
    programs = LearnToExecute(length=2, nesting=2, split="validation")
    drawn = [programs.draw(np.random.default_rng(1)) for _ in range(2)]
    assert drawn[0] == drawn[1] and program_split(*drawn[0]) == "validation"


def test_a_split_task_reports_on_test_programs_and_bad_splits_are_refused():
    held = LearnToExecute(task="addition", length=1, target_length=3, split="train")
    assert all(v[2]["split"] == "test" for v in held.report_variants)
    assert all("split" not in v[2] for v in LearnToExecute(task="addition").report_variants)
    with pytest.raises(envs.EnvSpecError, match="split.*valid"):
        envs.make("memrl/LearnToExecute-v0", split="holdout")
