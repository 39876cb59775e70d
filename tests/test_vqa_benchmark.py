"""benchmarks/vqa.py's bookkeeping: the evaluation report per question type and family with
wrong programs, and stored rows that a rerun supersedes but never deletes."""

from __future__ import annotations

import numpy as np
import torch

from agents import make_agent, program_generator
from benchmarks import vqa
from envs.clevr.env import ClevrVQA
from envs.clevr.executor import execute
from envs.clevr.tokens import prefix_to_program

DATA = {
    "scenes": "generated",
    "num_scenes": 40,
    "valid_scenes": 6,
    "test_scenes": 6,
    "questions_per_scene": 5,
    "num_programs": 20,
}


def test_measure_reports_types_families_and_wrong_programs() -> None:
    torch.manual_seed(0)
    env = ClevrVQA(**DATA)
    cfg = program_generator.Config(objective="mle", embed_dim=8, hidden_size=16, layers=1)
    agent = make_agent(cfg, env.observation_space, env.action_space)  # untrained: mostly wrong
    report = vqa.measure(agent, env, wrong_per_family=2)
    n = len(env.dataset("test"))
    assert report["questions"] == n
    assert report["wrong_answers"] == round(n * (1 - report["answer_accuracy"]))
    families = report["families"]
    assert sum(f["questions"] for f in families.values()) == n
    assert sum(t["questions"] for t in report["question_types"].values()) == n
    assert sum(f["wrong_answers"] for f in families.values()) == report["wrong_answers"]
    questions = {q.question: q for q in env.data.splits["test"].questions}
    shown = 0
    for name, f in families.items():
        assert f["type"] == vqa.FAMILY_TYPE[name]
        assert len(f["wrong_examples"]) == min(2, f["wrong_answers"])
        for w in f["wrong_examples"]:
            shown += 1
            q = questions[w["question"]]
            assert w["answer"] == str(q.answer) and w["predicted_answer"] != w["answer"]
            truth = prefix_to_program(w["program"].split())
            assert execute(truth, env.data.scenes[q.image_index]) == q.answer
        for w in f["other_program_right_answer"]:  # another program with the right answer
            assert w["predicted"] != w["program"] and w["predicted_answer"] == w["answer"]
    assert shown > 0


def test_a_rerun_supersedes_a_stored_row_and_the_table_shows_the_new_one() -> None:
    def row(answer: float) -> dict:
        m = {"program_accuracy": 0.5, "answer_accuracy": answer, "wall_s": 1.0}
        return {"K": 270, "seed": 0, "size": "small", "label": "x", "mle": m}

    other = {**row(0.3), "seed": 1}
    stored: dict = {"rows": [other]}
    vqa.store_row(stored, row(0.7))
    vqa.store_row(stored, row(0.9))
    rows = stored["rows"]
    assert [r["mle"]["answer_accuracy"] for r in rows] == [0.3, 0.7, 0.9]
    assert [bool(r.get("superseded")) for r in rows] == [False, True, False]
    lines = vqa.table(rows).splitlines()[2:]
    assert len(lines) == 2 and "| 90.0 |" in lines[1] and "70.0" not in "".join(lines)


def test_execution_guided_decoding_takes_the_first_beam_that_runs() -> None:
    torch.manual_seed(0)
    env = ClevrVQA(**DATA)
    d = env.dataset("test")
    batch = d.take(np.arange(len(d)))
    rows, truth = batch["question_index"], batch["program"][:, 1:]
    assert env.programs_run("test", rows, truth).all()  # every ground-truth program runs
    assert env.answers_correct("test", rows, truth).all()
    garbage = np.zeros_like(truth)
    assert not env.programs_run("test", rows, garbage).any()
    cfg = program_generator.Config(objective="mle", embed_dim=8, hidden_size=16, layers=1)
    agent = make_agent(cfg, env.observation_space, env.action_space).eval()
    width = truth.shape[1]
    beams = agent.decode_beam(torch.as_tensor(batch["question"]), width, 4).numpy()
    chosen = vqa._decode(agent, env, "test", batch, width, beam=4)
    for i in range(len(d)):
        runs = [env.programs_run("test", rows[i : i + 1], beams[i, k][None])[0] for k in range(4)]
        want = runs.index(True) if any(runs) else 0
        np.testing.assert_array_equal(chosen[i], beams[i, want])
    report = vqa.measure(agent, env, beam=4)
    assert report["decoding"] == "beam 4, first that runs"
    np.testing.assert_array_equal(
        vqa._decode(agent, env, "test", batch, width, 0),
        agent.decode(torch.as_tensor(batch["question"]), width).numpy(),
    )


def test_official_question_rows_are_kept_apart_and_typed_by_their_template_file() -> None:
    """--questions official: a row on CLEVR's question files does not supersede the generated
    questions' row of the same K/seed/size/label, the table says which it is, and families
    named after CLEVR's template files get that file's group as their type."""
    mle = {"program_accuracy": 0.5, "answer_accuracy": 0.5, "wall_s": 1.0}
    generated = {"K": 72, "seed": 0, "size": "small", "label": "x", "mle": mle}
    official = {**generated, "questions": "official"}
    stored: dict = {}
    vqa.store_row(stored, generated)
    vqa.store_row(stored, official)
    rows = stored["rows"]
    assert not any(r.get("superseded") for r in rows)
    assert "x (official questions)" in vqa.table(rows)
    assert vqa.family_type("1_compare_integer#2") == "compare_integer"
    assert vqa.family_type("family 12") == "family 12"
    assert vqa.family_type("exist_zero") == vqa.FAMILY_TYPE["exist_zero"]
