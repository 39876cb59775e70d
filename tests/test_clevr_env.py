"""memrl/ClevrVQA-v0: held-out scenes, K kept programs, the dataset arrays, and episodes whose
reward is the executed program's answer."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs  # noqa: F401  (registers memrl/*)
from envs.clevr.env import ClevrVQA
from envs.clevr.formats import clevr_data_dir
from envs.clevr.question_generator import TEMPLATES
from envs.clevr.tokens import program_to_prefix, tokenize_question

SMALL = {"num_scenes": 60, "valid_scenes": 8, "test_scenes": 8, "questions_per_scene": 5}


def test_registered_and_passes_the_env_checker() -> None:
    env = gym.make("memrl/ClevrVQA-v0", **SMALL, num_programs=9)
    check_env(env.unwrapped, skip_render_check=True)
    assert env.action_space.n == len(env.unwrapped.data.program_vocab)
    assert env.observation_space.shape == (40,) and env.observation_space.dtype == np.int64
    env.close()


def test_splits_are_held_out_scenes_and_k_programs_are_spread_over_families() -> None:
    env = ClevrVQA(**SMALL, num_programs=19)
    splits = env.data.splits
    images = {s: {q.image_index for q in splits[s].questions} for s in splits}
    assert len(images["valid"]) == len(images["test"]) == 8 and len(images["train"]) == 44
    assert not images["train"] & images["valid"] and not images["train"] & images["test"]
    assert not images["valid"] & images["test"]
    train = env.dataset("train")
    assert len(train) == 19 and splits["train"].has_program.sum() == 19
    assert sorted(train.groups.tolist()) == list(range(19))  # one per family
    assert train.group_names == tuple(t.name for t in TEMPLATES)
    # valid and test keep every program; all = -1
    assert len(env.dataset("test")) == len(splits["test"].questions)
    every = ClevrVQA(**SMALL)
    assert len(every.dataset("train")) == len(splits["train"].questions)
    # the same K on the same data seed is the same questions; another seed, other data
    again = ClevrVQA(**SMALL, num_programs=19)
    np.testing.assert_array_equal(
        again.dataset("train").arrays["question"], train.arrays["question"]
    )
    other = ClevrVQA(**SMALL, num_programs=19, data_seed=1)
    assert not np.array_equal(other.dataset("train").arrays["question"], train.arrays["question"])


def test_dataset_arrays_encode_questions_and_programs() -> None:
    env = ClevrVQA(**SMALL)
    d = env.dataset("valid")
    qv, pv = env.data.question_vocab, env.data.program_vocab
    a = d.arrays
    n = len(d)
    assert a["question"].shape == (n, 40) and a["program"].shape == (n, 34)
    assert a["program_mask"].shape == (n, 33) and a["question_mask"].dtype == np.float32
    assert (a["program"][:, 0] == pv.index["<START>"]).all()
    for row in range(3):
        q = env.data.splits["valid"].questions[int(a["question_index"][row])]
        assert qv.decode(a["question"][row]) == tokenize_question(q.question)
        assert pv.decode(a["program"][row]) == program_to_prefix(q.program)
        # the mask covers the program's tokens and its <END>
        assert a["program_mask"][row].sum() == len(program_to_prefix(q.program)) + 1
    assert env.answers_correct("valid", a["question_index"], a["program"][:, 1:]).all()


def _play(env: ClevrVQA, tokens: list[int], index: int) -> tuple[float, bool, bool, int, dict]:
    env.reset(seed=0, options={"index": index})
    for steps, t in enumerate(tokens, 1):
        _, reward, terminated, truncated, info = env.step(t)
        if terminated or truncated:
            return reward, terminated, truncated, steps, info
    raise AssertionError("the episode did not end")


def test_the_right_program_earns_1_and_anything_else_0() -> None:
    env = ClevrVQA(split="valid", **SMALL)
    end = env.end_id
    for index in range(10):
        obs, info = env.reset(seed=0, options={"index": index})
        target = list(info["target"])
        assert info["has_target"]
        np.testing.assert_array_equal(obs, env.data.splits["valid"].question_ids[index])
        program = target[: target.index(end) + 1]
        reward, terminated, truncated, steps, last = _play(env, program, index)
        assert (reward, terminated, truncated, steps) == (1.0, True, False, len(program))
        np.testing.assert_array_equal(last["target"], info["target"])
    # an empty program, a program with a token cut off, a special token: no answer
    assert _play(env, [end], 0)[0] == 0.0
    first = list(env.reset(options={"index": 0})[1]["target"])
    assert _play(env, first[: first.index(end) - 1] + [end], 0)[0] == 0.0
    assert _play(env, [env.data.program_vocab.index["<START>"], end], 0)[0] == 0.0
    # no <END>: the episode is cut after max_program_len + 1 tokens
    reward, terminated, truncated, steps, _ = _play(env, [5] * 100, 0)
    assert (terminated, truncated, steps) == (False, True, env.cfg.max_program_len + 1)


def test_a_wrong_program_with_the_right_answer_still_earns_the_reward() -> None:
    """The reward is answer correctness, not program match (what REINFORCE learns from)."""
    env = ClevrVQA(split="valid", **SMALL)
    pv = env.data.program_vocab
    yes_no = [
        i for i, q in enumerate(env.data.splits["valid"].questions) if q.answer in ("yes", "no")
    ]
    i = yes_no[0]
    want = env.data.splits["valid"].questions[i].answer
    # exist(scene) is "yes" on any scene; exist of things both large and small is "no"
    program = ["exist", "scene"]
    if want == "no":
        program = ["exist", "filter_size[large]", "filter_size[small]", "scene"]
    ids = [pv.index[t] for t in program] + [env.end_id]
    assert _play(env, ids, i)[0] == 1.0


def test_bad_kwargs_are_clear_errors(tmp_path) -> None:
    with pytest.raises(ValueError, match="split must be one of"):
        ClevrVQA(split="dev", **SMALL)
    with pytest.raises(ValueError, match=r"unknown kwargs \['num_program'\]"):
        ClevrVQA(num_program=3)
    with pytest.raises(ValueError, match="must exceed valid_scenes"):
        ClevrVQA(num_scenes=10, valid_scenes=5, test_scenes=5)
    with pytest.raises(ValueError, match="scenes='real' needs"):
        ClevrVQA(scenes="real", data_dir=str(tmp_path))
    with pytest.raises(ValueError, match="max_question_len"):
        ClevrVQA(**SMALL, max_question_len=8)
    with pytest.raises(ValueError, match="unknown split"):
        ClevrVQA(**SMALL).dataset("dev")


@pytest.mark.skipif(clevr_data_dir() is None, reason="no CLEVR data folder")
def test_real_scenes_with_generated_questions() -> None:
    env = ClevrVQA(
        scenes="real", num_scenes=40, valid_scenes=5, test_scenes=5, questions_per_scene=3
    )
    d = env.dataset("test")
    assert len(d) > 0
    assert env.answers_correct("test", d.arrays["question_index"], d.arrays["program"][:, 1:]).all()
    assert {q.image_index for q in env.data.splits["test"].questions} <= set(range(40))


@pytest.mark.skipif(clevr_data_dir() is None, reason="no CLEVR data folder")
def test_official_questions_each_in_the_split_of_its_scene(tmp_path) -> None:
    """questions='official': CLEVR's own question files (here the data folder's generator output,
    per-template files whose family indices restart at 0), each question in its scene's split,
    families numbered over (template file, index), K programs round-robin over them, and every
    ground-truth program executes to the file's answer."""
    env = ClevrVQA(scenes="real", questions="official", num_programs=30)
    data = env.data
    scenes_of = {split: {q.image_index for q in s.questions} for split, s in data.splits.items()}
    assert not scenes_of["train"] & scenes_of["test"] and not scenes_of["valid"] & scenes_of["test"]
    names = data.family_names
    assert len(names) == len(set(names)) > 6  # files share indices: (file, index) keeps apart
    train = data.splits["train"]
    assert train.has_program.sum() == 30
    assert len(set(train.families[train.has_program])) == min(30, len(set(train.families)))
    assert env.dataset("train").group_names == names
    for split in ("valid", "test"):
        s = data.splits[split]
        rows = np.arange(len(s.questions))
        assert s.has_program.all()
        assert env.answers_correct(split, rows, s.program_ids[:, 1:]).all()
    with pytest.raises(ValueError, match="set scenes='real'"):
        ClevrVQA(questions="official")
    with pytest.raises(ValueError, match="needs CLEVR questions JSON at"):
        ClevrVQA(scenes="real", questions="official", questions_path=str(tmp_path / "none.json"))
    with pytest.raises(ValueError, match="questions must be one of"):
        ClevrVQA(scenes="real", questions="real")
    (tmp_path / "q.json").write_text(
        '{"questions": [{"question": "Is there a cube?", "image_index": 999999, "answer": "yes",'
        ' "program": [{"function": "scene", "inputs": [], "value_inputs": []}]}]}'
    )
    with pytest.raises(ValueError, match="none of the 1 questions"):
        ClevrVQA(scenes="real", questions="official", questions_path=str(tmp_path / "q.json"))


@pytest.mark.skipif(clevr_data_dir() is None, reason="no CLEVR data folder")
def test_scenes_path_reads_a_scenes_file_of_any_name(tmp_path) -> None:
    """CLEVR_v1.0 names its file CLEVR_train_scenes.json: scenes_path takes it as it is."""
    import shutil

    path = tmp_path / "CLEVR_train_scenes.json"
    shutil.copy(clevr_data_dir() / "CLEVR_train_scenes_1000.json", path)
    env = ClevrVQA(scenes="real", scenes_path=str(path), questions="official", num_programs=5)
    default = ClevrVQA(scenes="real", questions="official", num_programs=5)
    assert env.data.scenes.keys() == default.data.scenes.keys()
    assert [q.question for q in env.data.splits["test"].questions] == [
        q.question for q in default.data.splits["test"].questions
    ]
    with pytest.raises(ValueError, match="scenes_path .* is not a file"):
        ClevrVQA(scenes="real", scenes_path=str(tmp_path / "missing.json"))
