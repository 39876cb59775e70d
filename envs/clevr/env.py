"""`memrl/ClevrVQA-v0`: CLEVR question answering over scene graphs, as a dataset task and as an
episodic env for REINFORCE (issue 24; Johnson et al. 2017, Yi et al. 2018).

The data: scenes (CLEVR's 1000 real train scenes from the data folder, or seeded generated
ones), split by scene into train / valid / test (the held-out questions are asked over held-out
scenes), and memrl's generated questions over each split's scenes, or (`questions: official`,
with real scenes) the questions of CLEVR's own question files (`questions_path`: a questions
JSON file such as CLEVR_v1.0's CLEVR_train_questions.json, or a folder of them; default the data
folder's questions_train/), each in the split of its scene; questions on scenes not loaded are
left out. `num_programs` (K) training
questions keep their ground-truth program, chosen round-robin over the question families (as
NS-VQA's 270 = 3 per family); the others keep only their answer.

As a dataset task, `dataset(split)` gives the questions with programs (train: the K; valid and
test: all), batch-major: `question` ids [N, Lq] (<START> ... <END>, <NULL>-padded),
`question_mask`, `program` ids [N, Lp + 2] (<START> prefix tokens <END>), `program_mask`
[N, Lp + 1] over `program[:, 1:]`, and `question_index` (the question's row in the split);
groups are the question families.

As an episodic env: the observation is the question's ids (a fixed-size int Box), the agent emits
one program token per step (Discrete over the program vocabulary), the episode ends at <END>
(terminated) or after `max_program_len + 1` tokens (truncated), and the last step's reward is 1
if `execute(prefix_to_program(tokens), scene)` gives the question's answer, else 0. `info`
carries `target`, the ground-truth program ids ([Lp + 1], prefix tokens then <END>, padded), all
<NULL> where the split keeps no program, and `has_target`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from envs.clevr.executor import ExecutionError, execute
from envs.clevr.formats import Question, clevr_data_dir, read_questions, read_scenes
from envs.clevr.question_generator import TEMPLATES, QuestionConfig, generate_questions
from envs.clevr.scene_generator import generate_scenes
from envs.clevr.tokens import (
    END,
    Vocab,
    prefix_to_program,
    program_to_prefix,
    program_vocab,
    question_vocab,
    tokenize_question,
)
from envs.dataset import SPLITS, Dataset

REAL_SCENES_FILE = "CLEVR_train_scenes_1000.json"
SCENE_SOURCES = ("real", "generated")
QUESTION_SOURCES = ("generated", "official")
OFFICIAL_QUESTIONS_DIR = "questions_train"


@dataclass(frozen=True)
class VQADataConfig:
    """Which data the env holds; `num_programs` -1 keeps every training program."""

    scenes: str = "generated"
    data_dir: str | None = None
    scenes_path: str | None = None  # a CLEVR scenes JSON; default data_dir's REAL_SCENES_FILE
    questions: str = "generated"
    questions_path: str | None = None
    num_scenes: int = 1000
    valid_scenes: int = 100
    test_scenes: int = 100
    questions_per_scene: int = 10
    num_programs: int = -1
    data_seed: int = 0
    max_question_len: int = 40
    max_program_len: int = 32

    def validate(self) -> None:
        where = "memrl/ClevrVQA-v0"
        if self.scenes not in SCENE_SOURCES:
            raise ValueError(f"{where}: scenes must be one of {SCENE_SOURCES}, got {self.scenes!r}")
        if self.questions not in QUESTION_SOURCES:
            raise ValueError(
                f"{where}: questions must be one of {QUESTION_SOURCES}, got {self.questions!r}"
            )
        if self.questions == "official" and self.scenes != "real":
            raise ValueError(
                f"{where}: questions='official' are asked about CLEVR's real scenes: set "
                "scenes='real' (generated scenes have no official questions)"
            )
        if self.valid_scenes < 1 or self.test_scenes < 1:
            raise ValueError(f"{where}: valid_scenes and test_scenes must be >= 1")
        if self.num_scenes <= self.valid_scenes + self.test_scenes:
            raise ValueError(
                f"{where}: num_scenes ({self.num_scenes}) must exceed valid_scenes + test_scenes "
                f"({self.valid_scenes + self.test_scenes}) to leave training scenes"
            )
        if self.questions_per_scene < 1:
            raise ValueError(f"{where}: questions_per_scene must be >= 1")
        if self.num_programs < -1:
            raise ValueError(f"{where}: num_programs is K >= 0, or -1 for all")
        if self.max_question_len < 3 or self.max_program_len < 1:
            raise ValueError(f"{where}: max_question_len >= 3 and max_program_len >= 1")


@dataclass
class Split:
    """One split's questions and their encodings (row i of each array is questions[i])."""

    questions: list[Question]
    question_ids: np.ndarray  # [N, Lq] int64
    program_ids: np.ndarray  # [N, Lp + 2] int64, <START> ... <END>; <NULL> rows without one
    has_program: np.ndarray  # [N] bool
    families: np.ndarray  # [N] int64


@dataclass
class VQAData:
    scenes: dict[int, dict[str, Any]]
    question_vocab: Vocab
    program_vocab: Vocab
    splits: dict[str, Split]
    family_names: tuple[str, ...]


def _scenes(cfg: VQADataConfig) -> list[dict[str, Any]]:
    if cfg.scenes == "generated":
        return generate_scenes(cfg.num_scenes, cfg.data_seed)
    if cfg.scenes_path:
        path = Path(cfg.scenes_path)
        if not path.is_file():
            raise ValueError(f"memrl/ClevrVQA-v0: scenes_path {path} is not a file")
    else:
        folder = Path(cfg.data_dir) if cfg.data_dir else clevr_data_dir()
        if folder is None or not (folder / REAL_SCENES_FILE).is_file():
            raise ValueError(
                f"memrl/ClevrVQA-v0: scenes='real' needs {REAL_SCENES_FILE} in data_dir "
                f"({cfg.data_dir or 'default: $MEMRL_DATA/clevr or ../shared/data/clevr'}), "
                "which is not there; give data_dir or scenes_path, or use scenes='generated'"
            )
        path = folder / REAL_SCENES_FILE
    scenes = read_scenes(path)
    if len(scenes) < cfg.num_scenes:
        raise ValueError(
            f"memrl/ClevrVQA-v0: num_scenes={cfg.num_scenes}, but {path} holds {len(scenes)} scenes"
        )
    return scenes[: cfg.num_scenes]


def _keep_programs(families: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """K rows taken round-robin over the families, each family's rows in a seeded order."""
    keep = np.zeros(len(families), bool)
    if k < 0 or k >= len(families):
        keep[:] = True
        return keep
    queues = [list(rng.permutation(np.flatnonzero(families == f))) for f in np.unique(families)]
    taken = 0
    while taken < k:
        for q in queues:
            if q and taken < k:
                keep[q.pop(0)] = True
                taken += 1
    return keep


def _encode(
    questions: list[Question], qv: Vocab, pv: Vocab, keep: np.ndarray, cfg: VQADataConfig
) -> Split:
    n = len(questions)
    qids = np.zeros((n, cfg.max_question_len), np.int64)
    pids = np.zeros((n, cfg.max_program_len + 2), np.int64)
    for i, q in enumerate(questions):
        ids = qv.encode(tokenize_question(q.question))
        if len(ids) > cfg.max_question_len:
            raise ValueError(
                f"memrl/ClevrVQA-v0: question {q.question!r} has {len(ids)} tokens with "
                f"<START>/<END>, more than max_question_len={cfg.max_question_len}"
            )
        qids[i, : len(ids)] = ids
        if keep[i] and q.program is not None:
            prog = pv.encode(program_to_prefix(q.program))
            if len(prog) > cfg.max_program_len + 2:
                raise ValueError(
                    f"memrl/ClevrVQA-v0: the program of {q.question!r} has {len(prog) - 2} "
                    f"tokens, more than max_program_len={cfg.max_program_len}"
                )
            pids[i, : len(prog)] = prog
    families = np.array([q.question_family_index or 0 for q in questions], np.int64)
    has = keep & np.array([q.program is not None for q in questions])
    return Split(questions, qids, pids, has, families)


def _official_questions(
    cfg: VQADataConfig, split_of: dict[int, str]
) -> tuple[dict[str, list[Question]], tuple[str, ...]]:
    """CLEVR's question files, each question in its scene's split, with family ids numbered
    over (template file, family index): the generator's per-template files restart their
    indices at 0, the public release numbers its 90 families globally."""
    if cfg.questions_path:
        path = Path(cfg.questions_path)
    else:
        folder = Path(cfg.data_dir) if cfg.data_dir else clevr_data_dir()
        path = (folder or Path("<no data folder>")) / OFFICIAL_QUESTIONS_DIR
    files = sorted(path.glob("*.json")) if path.is_dir() else [path]
    if not files or not all(f.is_file() for f in files):
        raise ValueError(
            f"memrl/ClevrVQA-v0: questions='official' needs CLEVR questions JSON at {path} (a file "
            "or a folder of *.json); give questions_path, or use questions='generated'"
        )
    read = [q for f in files for q in read_questions(f, restore_dropped_values=True)]
    kept = [q for q in read if q.image_index in split_of and q.answer is not None]
    if not kept:
        raise ValueError(
            f"memrl/ClevrVQA-v0: none of the {len(read)} questions in {path} is about one of the "
            f"{len(split_of)} scenes loaded (image_index {min(split_of)}..{max(split_of)}) with "
            "an answer; raise num_scenes or give the questions of these scenes"
        )
    key_of = [(q.template_filename or "", q.question_family_index or 0) for q in kept]
    family = {key: i for i, key in enumerate(sorted(set(key_of)))}
    names = tuple(f"{Path(t).stem or 'family'}#{f}" if t else f"family {f}" for t, f in family)
    out: dict[str, list[Question]] = {split: [] for split in SPLITS}
    for q, key in zip(kept, key_of):
        out[split_of[q.image_index]].append(replace(q, question_family_index=family[key]))
    for split, qs in out.items():
        if not qs:
            raise ValueError(
                f"memrl/ClevrVQA-v0: no question in {path} is about a {split} scene; the "
                "questions must cover the scenes of every split (raise questions or scenes)"
            )
    return out, names


@functools.lru_cache(maxsize=4)
def build_data(cfg: VQADataConfig) -> VQAData:
    """The env's splits for `cfg` (cached: the envs of a vector env share one copy)."""
    cfg.validate()
    scenes = _scenes(cfg)
    order = np.random.default_rng(cfg.data_seed).permutation(len(scenes))
    cut = {"test": order[: cfg.test_scenes]}
    cut["valid"] = order[cfg.test_scenes : cfg.test_scenes + cfg.valid_scenes]
    cut["train"] = order[cfg.test_scenes + cfg.valid_scenes :]
    if cfg.questions == "official":
        split_of = {scenes[i]["image_index"]: split for split, rows in cut.items() for i in rows}
        questions, family_names = _official_questions(cfg, split_of)
    else:
        questions = {
            split: generate_questions(
                [scenes[i] for i in sorted(cut[split])],
                cfg.data_seed * 7 + k,
                QuestionConfig(questions_per_scene=cfg.questions_per_scene),
            )
            for k, split in enumerate(SPLITS)
        }
        family_names = tuple(t.name for t in TEMPLATES)
    qv = question_vocab(q.question for q in questions["train"])
    pv = program_vocab()
    rng = np.random.default_rng(cfg.data_seed + 1)
    splits = {}
    for split, qs in questions.items():
        families = np.array([q.question_family_index or 0 for q in qs], np.int64)
        k = cfg.num_programs if split == "train" else -1
        splits[split] = _encode(qs, qv, pv, _keep_programs(families, k, rng), cfg)
    return VQAData({s["image_index"]: s for s in scenes}, qv, pv, splits, family_names)


class ClevrVQA(gym.Env):
    """See the module docstring. kwargs: `split` (which questions episodes ask) and the fields
    of `VQADataConfig`."""

    metadata = {"render_modes": []}

    def __init__(self, split: str = "train", **data_kwargs: Any):
        if split not in SPLITS:
            raise ValueError(f"memrl/ClevrVQA-v0: split must be one of {SPLITS}, got {split!r}")
        known = set(VQADataConfig.__dataclass_fields__)
        unknown = set(data_kwargs) - known
        if unknown:
            raise ValueError(
                f"memrl/ClevrVQA-v0: unknown kwargs {sorted(unknown)}; valid: split, "
                f"{', '.join(sorted(known))}"
            )
        self.cfg = VQADataConfig(**data_kwargs)
        self.data = build_data(self.cfg)
        self.split = split
        self.questions = self.data.splits[split]
        if not self.questions.questions:
            raise ValueError(f"memrl/ClevrVQA-v0: the {split} split has no questions")
        qv, pv = self.data.question_vocab, self.data.program_vocab
        self.observation_space = gym.spaces.Box(
            0, len(qv) - 1, (self.cfg.max_question_len,), np.int64
        )
        self.action_space = gym.spaces.Discrete(len(pv))
        self.end_id = pv.index[END]
        self.max_steps = self.cfg.max_program_len + 1
        self.index = 0
        self.tokens: list[int] = []
        self._datasets: dict[str, Dataset] = {}

    # ------------------------------------------------------------------ dataset task
    def dataset(self, split: str) -> Dataset:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
        if split not in self._datasets:
            s = self.data.splits[split]
            rows = np.flatnonzero(s.has_program)
            program = s.program_ids[rows]
            self._datasets[split] = Dataset(
                {
                    "question": s.question_ids[rows],
                    "question_mask": (s.question_ids[rows] != 0).astype(np.float32),
                    "program": program,
                    "program_mask": (program[:, 1:] != 0).astype(np.float32),
                    "question_index": rows.astype(np.int64),
                },
                batch_axis=0,
                groups=s.families[rows],
                group_names=self.data.family_names,
                name=f"ClevrVQA {split}",
            )
        return self._datasets[split]

    def answers_correct(self, split: str, rows: np.ndarray, programs: np.ndarray) -> np.ndarray:
        """Whether each program (token ids [N, T], read up to <END>) answers question
        `rows[i]` of `split` right on its scene: answer accuracy for any decoder."""
        s = self.data.splits[split]
        return np.array(
            [self._correct(s.questions[int(r)], list(p)) for r, p in zip(rows, programs)], bool
        )

    def programs_run(self, split: str, rows: np.ndarray, programs: np.ndarray) -> np.ndarray:
        """Whether each program (token ids [N, T], read up to <END>) is a program that gives
        an answer, right or wrong, on question `rows[i]`'s scene (no execution error): what a
        decoder may check without the answer (execution-guided decoding)."""
        s = self.data.splits[split]
        return np.array(
            [
                not isinstance(self._answer(s.questions[int(r)], list(p)), ExecutionError)
                for r, p in zip(rows, programs)
            ],
            bool,
        )

    def _answer(self, q: Question, ids: list[int]) -> Any:
        if self.end_id in ids:
            ids = ids[: ids.index(self.end_id)]
        tokens = [self.data.program_vocab.tokens[int(i)] for i in ids]
        program = prefix_to_program(tokens)
        if isinstance(program, ExecutionError):
            return program
        return execute(program, self.data.scenes[q.image_index])

    def _correct(self, q: Question, ids: list[int]) -> bool:
        answer = self._answer(q, ids)
        return not isinstance(answer, ExecutionError) and answer == q.answer

    # ------------------------------------------------------------------ episodes
    def _info(self) -> dict[str, Any]:
        s = self.questions
        return {
            "target": s.program_ids[self.index, 1:].copy(),
            "has_target": bool(s.has_program[self.index]),
        }

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        n = len(self.questions.questions)
        if options and "index" in options:
            self.index = int(options["index"]) % n
        else:
            self.index = int(self.np_random.integers(n))
        self.tokens = []
        return self.questions.question_ids[self.index].copy(), self._info()

    def step(self, action: Any):
        token = int(action)
        obs = self.questions.question_ids[self.index].copy()
        terminated = token == self.end_id
        if not terminated:
            self.tokens.append(token)
        truncated = not terminated and len(self.tokens) >= self.max_steps
        reward = 0.0
        if terminated or truncated:
            q = self.questions.questions[self.index]
            reward = float(self._correct(q, self.tokens))
        return obs, reward, terminated, truncated, self._info()
