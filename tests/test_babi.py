"""bAbI data layer: the reader on the official files and on broken ones, data preparation and
the fetcher (the generator: test_babi_generator.py)."""

from __future__ import annotations

import http.server
import io
import os
import tarfile
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from envs.babi import (
    PAD_ID,
    TASK_NAMES,
    UNKNOWN_ID,
    BabiDataConfig,
    BabiDataError,
    BabiFormatError,
    Vocabulary,
    encode,
    find_task_files,
    load_babi,
    load_samples,
    parse_text,
    prepare,
    read_file,
    split_validation,
    tokenize,
)
from envs.babi.fetch import BabiArchiveError, fetch_babi

REPO = Path(__file__).resolve().parents[1]


def _babi_root() -> Path | None:
    base = os.environ.get("MEMRL_DATA")
    root = Path(base) / "babi" if base else REPO.parent / "shared" / "data" / "babi"
    return root if (root / "en").is_dir() else None


BABI = _babi_root()
needs_babi = pytest.mark.skipif(
    BABI is None, reason="the bAbI files are absent (set MEMRL_DATA to the folder holding babi/)"
)

STORY = (
    "1 Mary moved to the bathroom.\n"
    "2 John went to the hallway.\n"
    "3 Where is Mary? \tbathroom\t1\n"
    "4 Daniel went back to the hallway.\n"
    "5 Where is Daniel? \thallway\t4\n"
    "1 Sandra got the milk there.\n"
    "2 What is Sandra carrying?\tmilk,apple\t1\n"
)


# ----------------------------------------------------------------------------- reader


@needs_babi
@pytest.mark.parametrize("task", sorted(TASK_NAMES))
def test_every_official_1k_test_file_has_1000_questions(task):
    samples = read_file(find_task_files(BABI, task, "1k").test)
    assert len(samples) == 1000
    assert {s.task for s in samples} == {task}
    for s in samples:
        assert s.supporting and all(0 <= k < len(s.story) for k in s.supporting)
        assert len(s.story) == len(s.story_line_ids)
        assert s.question and s.answer


@needs_babi
def test_supporting_ids_point_at_the_sentences_they_name():
    samples = read_file(find_task_files(BABI, 1, "1k").train)
    first = samples[0]  # 1 Mary moved to the bathroom. 2 John ... 3 Where is Mary? bathroom 1
    assert first.story == (
        ("mary", "moved", "to", "the", "bathroom"),
        ("john", "went", "to", "the", "hallway"),
    )
    assert first.question == ("where", "is", "mary")
    assert first.answer == ("bathroom",)
    assert first.supporting == (0,)
    # Task 1: the one supporting fact names the person and the answer.
    for s in samples:
        (fact,) = (s.story[k] for k in s.supporting)
        assert fact[0] == s.question[-1] and fact[-1] == s.answer[0]
    # Questions are not story sentences, so line ids skip them: sample 2 of story 1 cites line 4.
    assert samples[1].story_line_ids == (1, 2, 4, 5)
    assert samples[1].story[samples[1].supporting[0]][0] == "daniel"


@needs_babi
def test_multi_word_answers_of_tasks_8_and_19():
    lists = read_file(find_task_files(BABI, 8, "1k").train)
    assert max(len(s.answer) for s in lists) >= 2
    two = next(s for s in lists if len(s.answer) == 2)
    assert all(w.isalpha() for w in two.answer) and two.answer_label == ",".join(two.answer)
    paths = read_file(find_task_files(BABI, 19, "1k").test)
    assert all(len(s.answer) == 2 and set(s.answer) <= set("nsew") for s in paths)
    assert paths[0].answer == tuple(paths[0].answer_label.split(","))


@needs_babi
def test_ten_k_files_and_the_missing_task_3_train_file():
    files = find_task_files(BABI, 1, "10k")
    assert len(read_file(files.train)) == 10000
    if not (BABI / "en-10k" / "qa3_three-supporting-facts_train.txt").exists():
        with pytest.raises(BabiDataError, match="qa3_three-supporting-facts_train.txt is missing"):
            find_task_files(BABI, 3, "10k")


def test_tokenize_drops_punctuation_and_lowercases():
    assert tokenize("Where is Mary? ") == ["where", "is", "mary"]
    assert tokenize("The box of chocolates fits inside the chest.") == [
        "the", "box", "of", "chocolates", "fits", "inside", "the", "chest",
    ]  # fmt: skip


def test_parse_text_stories_restart_and_answers_split_on_commas():
    samples = parse_text(STORY, "story.txt")
    assert [s.line for s in samples] == [3, 5, 7]
    assert samples[2].story == (("sandra", "got", "the", "milk", "there"),)
    assert samples[2].answer == ("milk", "apple")
    assert samples[2].answer_label == "milk,apple"
    assert parse_text(STORY.replace("\n", "\r\n").encode(), "crlf.txt") == samples


BAD_CASES = [
    ("2 Mary moved.\n3 Where? \tx\t2\n", 1, "should be 1"),
    ("1 Mary moved.\n3 Where is Mary?\tx\t1\n", 2, "should be 2 or 1"),
    ("1 Mary moved.\nWhere is Mary?\tx\t1\n", 2, "is not '<id> <sentence>'"),
    ("1 Mary moved.\n\n2 Where is Mary?\tx\t1\n", 2, "an empty line"),
    ("1 Mary moved.\n2 Where is Mary?\tx\n", 2, "3 tab-separated fields .*, found 2"),
    ("1 Mary moved.\n2 Where is Mary?\tx\t1\t1\n", 2, "found 4"),
    ("1 Mary moved.\n2 Where is Mary?\t\t1\n", 2, "answer"),
    ("1 Mary moved.\n2 Where is Mary?\tx,,y\t1\n", 2, "answer"),
    ("1 Mary moved.\n2 Where is Mary?\tthe hall\t1\n", 2, "answer"),
    ("1 Mary moved.\n2 Where is Mary?\tx\t\n", 2, "found none"),
    ("1 Mary moved.\n2 Where is Mary?\tx\tone\n", 2, "'one' is not a line number"),
    ("1 Mary moved.\n2 Where is Mary?\tx\t2\n", 2, "not an earlier sentence"),
    ("1 Mary moved.\n2 Where is Mary?\tx\t7\n", 2, "supporting id 7"),
    ("1 A b.\n2 Where?\tx\t1\n3 Who?\ty\t2\n", 3, "is a question"),
    ("1 A b.\n2 Where?\tx\t1\n1 C d.\n2 Who?\ty\t1\n3 Why?\tz\t4\n", 5, "supporting id 4"),
    ("1 ...\n2 Where?\tx\t1\n", 1, "has no words"),
    ("1 Mary moved.\n2 ?\tx\t1\n", 2, "has no words"),
    ("1 Mary moved.\n2 John moved.\n", 2, "no questions"),
    ("", 1, "no questions"),
    (b"1 Mary moved.\n2 Wh\xffere?\tx\t1\n", 2, "not UTF-8"),
    ("1 A b.\n99999999999 Where?\tx\t1\n", 2, "too large"),
]


@pytest.mark.parametrize(("text", "line", "problem"), BAD_CASES)
def test_malformed_files_name_the_file_and_line(tmp_path, text, line, problem):
    path = tmp_path / "qa1_bad.txt"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(BabiFormatError, match=problem) as caught:
        read_file(path)
    assert caught.value.line == line
    assert str(caught.value).startswith(f"{path}:{line}: ")
    assert isinstance(caught.value, ValueError)


def test_a_missing_file_is_a_data_error(tmp_path):
    with pytest.raises(BabiDataError, match="cannot read bAbI file"):
        read_file(tmp_path / "nope.txt")


# Property tests: any input is either read or rejected with memrl's own error, and a valid
# file broken in a known way is rejected at the line that was broken.

_VALID_LINES = STORY.splitlines()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=200), st.text(max_size=200)))
def test_random_input_is_read_or_rejected_with_a_format_error(data):
    try:
        samples = parse_text(data, "random.txt")
    except BabiFormatError as err:
        assert err.source == "random.txt" and err.line >= 1
    else:
        assert samples and all(s.answer and s.question for s in samples)


@st.composite
def _mutated(draw):
    """(text, broken line) of the valid STORY with one line broken in a known way."""
    lines = list(_VALID_LINES)
    question_lines = [i for i, line in enumerate(lines) if "\t" in line]
    kind = draw(
        st.sampled_from(
            ["drop_field", "extra_field", "bad_support", "future_support", "bad_id", "no_id",
             "empty_answer", "skip_id", "question_support", "binary"]
        )
    )  # fmt: skip
    i = draw(st.sampled_from(question_lines))
    number, _, rest = lines[i].partition(" ")
    question, answer, support = rest.split("\t")
    if kind == "drop_field":
        lines[i] = f"{number} {question}\t{answer}"
    elif kind == "extra_field":
        lines[i] = f"{lines[i]}\t{draw(st.text(max_size=5))}"
    elif kind == "bad_support":
        word = draw(st.text(alphabet="abcxyz-+.", min_size=1, max_size=4))
        lines[i] = f"{number} {question}\t{answer}\t{word}"
    elif kind == "future_support":
        ahead = draw(st.integers(min_value=int(number), max_value=10**6))
        lines[i] = f"{number} {question}\t{answer}\t{ahead}"
    elif kind == "question_support":
        lines.insert(i + 1, f"{int(number) + 1} Why?\tx\t{number}")
        i += 1
    elif kind == "empty_answer":
        lines[i] = f"{number} {question}\t{draw(st.sampled_from(['', ',', ' ', 'a,']))}\t{support}"
    elif kind == "skip_id":
        lines[i] = f"{int(number) + draw(st.integers(2, 50))} {rest}"
    else:
        i = draw(st.integers(0, len(lines) - 1))
        if kind == "bad_id":
            bad = draw(st.sampled_from(["x", "-1", "0x1", "", "1.5", "+2"]))
            lines[i] = f"{bad} {lines[i].partition(' ')[2]}"
        elif kind == "no_id":
            lines[i] = lines[i].partition(" ")[2]
        else:  # binary: a byte that is not UTF-8 in that line
            encoded = [line.encode() for line in lines]
            encoded[i] += b"\xc3"
            return b"\n".join(encoded) + b"\n", i + 1
    return "\n".join(lines) + "\n", i + 1


@settings(max_examples=300, deadline=None)
@given(_mutated())
def test_mutated_files_are_rejected_at_the_broken_line(case):
    text, line = case
    with pytest.raises(BabiFormatError) as caught:
        parse_text(text, "mutated.txt")
    assert caught.value.line == line, (text, caught.value)


# ----------------------------------------------------------------------------- preparation


def _samples(n_stories: int, task: int = 1, story_len: int = 3):
    lines = []
    for _ in range(n_stories):
        for k in range(1, story_len + 1):
            lines.append(f"{k} Mary went to the room{k}.")
        lines.append(f"{story_len + 1} Where is Mary?\troom{story_len}\t{story_len}")
    return parse_text("\n".join(lines), "made.txt", task)


def test_vocabulary_has_padding_unknown_and_sorted_words():
    samples = parse_text(STORY)
    vocab = Vocabulary.build(samples)
    assert vocab.words[PAD_ID] == "<pad>" and vocab.words[UNKNOWN_ID] == "<unk>"
    assert list(vocab.words[2:]) == sorted(vocab.words[2:])
    assert "milk,apple" in vocab and "mary" in vocab and "?" not in vocab
    assert vocab.id("zebra") == UNKNOWN_ID
    assert Vocabulary.build(list(reversed(samples))) == vocab


def test_encoding_shapes_padding_and_the_last_50_sentences():
    long_story = _samples(1, story_len=60)
    short = _samples(1, story_len=2)
    samples = long_story + short
    vocab = Vocabulary.build(samples)
    enc = encode(samples, vocab, memory_size=50)
    assert enc.stories.shape == (2, 50, 5)  # "mary went to the roomK"
    assert enc.questions.shape == (2, 5) and enc.answers.shape == (2,)
    assert enc.stories.dtype == np.int32
    assert enc.story_lengths.tolist() == [50, 2]
    # The long story keeps sentences 11..60, oldest first.
    assert enc.stories[0, 0, 4] == vocab.id("room11")
    assert enc.stories[0, 49, 4] == vocab.id("room60")
    assert (enc.stories[1, 2:] == PAD_ID).all()
    assert enc.questions[0].tolist() == [vocab.id("where"), vocab.id("is"), vocab.id("mary"), 0, 0]
    assert enc.answers.tolist() == [vocab.id("room60"), vocab.id("room2")]
    assert enc.supports[:, 0].tolist() == [49, 1] and enc.tasks.tolist() == [1, 1]
    # A supporting fact that fell out of the memory becomes -1.
    early = parse_text("1 A b.\n" + "".join(f"{k} C d.\n" for k in range(2, 6)) + "6 Q?\tb\t1")
    assert encode(early, Vocabulary.build(early), memory_size=3).supports.tolist() == [[-1]]
    # Unknown words encode as 1; a sentence too long for the shape is an error.
    other = encode(parse_text("1 Zed went home.\n2 Where is Zed?\thome\t1"), vocab, 50, 5)
    assert other.stories[0, 0, 0] == UNKNOWN_ID and other.answers[0] == UNKNOWN_ID
    with pytest.raises(BabiDataError, match="does not fit sentence_size 2"):
        encode(samples, vocab, sentence_size=2)


def test_validation_split_is_deterministic_disjoint_and_per_task():
    samples = _samples(40, task=1) + _samples(20, task=2)
    train, valid = split_validation(samples, 0.1, seed=3)
    again = split_validation(samples, 0.1, seed=3)
    assert (train, valid) == again
    ids = {id(s) for s in train}
    assert not ids & {id(s) for s in valid}
    assert len(train) + len(valid) == len(samples)
    assert [s.task for s in valid].count(1) == 4 and [s.task for s in valid].count(2) == 2
    other = split_validation(samples, 0.1, seed=4)[1]
    assert [id(s) for s in other] != [id(s) for s in valid]


def test_prepare_gives_every_split_one_shape():
    train, test = _samples(30, story_len=4), _samples(10, story_len=7)
    data = prepare(train, test, memory_size=5)
    assert len(data.train) == 27 and len(data.valid) == 3 and len(data.test) == 10
    assert data.train.stories.shape[1:] == data.test.stories.shape[1:] == (5, 5)
    assert data.train.supports.shape[1] == data.test.supports.shape[1]
    assert len(data.test.for_task(1)) == 10 and len(data.test.for_task(2)) == 0
    assert set(data.train.arrays()) == {
        "stories", "story_lengths", "questions", "answers", "tasks", "supports",
    }  # fmt: skip


@needs_babi
def test_joint_1k_preparation_on_the_official_files():
    data = load_babi(BabiDataConfig(root=str(BABI), tasks=(1, 8, 19)))
    assert (len(data.train), len(data.valid), len(data.test)) == (2700, 300, 3000)
    assert data.train.stories.shape[1] == 50
    assert np.bincount(data.valid.tasks, minlength=20)[[1, 8, 19]].tolist() == [100] * 3
    assert (data.test.answers > UNKNOWN_ID).all()  # every answer is in the vocabulary
    assert "n,w" in data.vocab and "milk,football" in data.vocab
    single = load_babi(BabiDataConfig(root=str(BABI), tasks=(1,)))
    assert set(single.test.tasks.tolist()) == {1} and len(single.vocab) < len(data.vocab)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("source", "web", "source: 'web'"),
        ("test_words", "novel", "needs source: generated"),
        ("generated_questions", 0, "generated_questions"),
        ("tasks", (0,), "task 0 does not exist"),
        ("tasks", (), "at least one"),
        ("tasks", (1, 1), "twice"),
        ("size", "5k", "size: '5k'"),
        ("fallback_size", "2k", "fallback_size: '2k'"),
        ("memory_size", 0, "memory_size"),
        ("valid_fraction", 1.0, "valid_fraction"),
    ],
)
def test_data_config_names_the_bad_key(key, value, message):
    with pytest.raises(BabiDataError, match=message):
        BabiDataConfig(root="x", **{key: value})


def test_find_task_files_says_what_it_looked_for(tmp_path):
    with pytest.raises(BabiDataError, match="no bAbI 1k folder"):
        find_task_files(tmp_path, 1)
    (tmp_path / "tasks_1-20_v1-2" / "en").mkdir(parents=True)
    with pytest.raises(BabiDataError, match="qa2_two-supporting-facts_train.txt is missing"):
        find_task_files(tmp_path, 2)
    with pytest.raises(BabiDataError, match="1..20"):
        find_task_files(tmp_path, 21)


def test_a_missing_train_file_is_read_at_the_fallback_size(tmp_path):
    """Some 10k copies lack task 3's train file: `fallback_size` reads the 1k one instead, the
    test file stays the 10k one; without it, or with the fallback missing too, it is an error."""
    story = "1 Mary moved to the hallway.\n2 Where is Mary?\thallway\t1\n"
    stem = "qa3_three-supporting-facts"
    for folder, names in (("en", ["train", "test"]), ("en-10k", ["test"])):
        (tmp_path / folder).mkdir()
        for name in names:
            (tmp_path / folder / f"{stem}_{name}.txt").write_text(story)
    files = find_task_files(tmp_path, 3, "10k", fallback_size="1k")
    assert files.train == tmp_path / "en" / f"{stem}_train.txt" and files.train_size == "1k"
    assert files.test == tmp_path / "en-10k" / f"{stem}_test.txt"
    assert find_task_files(tmp_path, 3, "1k", fallback_size="10k").train_size == "1k"
    with pytest.raises(BabiDataError, match=f"{stem}_train.txt is missing"):
        find_task_files(tmp_path, 3, "10k")
    (tmp_path / "en" / f"{stem}_train.txt").unlink()
    with pytest.raises(BabiDataError, match=f"en/{stem}_train.txt is missing"):
        find_task_files(tmp_path, 3, "10k", fallback_size="1k")
    config = BabiDataConfig(root=str(tmp_path), tasks=(3,), size="10k", fallback_size="1k")
    (tmp_path / "en" / f"{stem}_train.txt").write_text(story)
    train, test = load_samples(config)
    assert len(train) == len(test) == 1 and train[0].answer == ("hallway",)


def test_fallback_generated_writes_a_missing_train_file(tmp_path):
    """`fallback_size: generated`: memrl's generator writes as many training questions as the
    missing file would hold (1,000 at 1k), seeded; the test file stays the official one; a file
    that exists is read; a missing test file is still an error."""
    story = "1 Mary moved to the hallway.\n2 Where is Mary?\thallway\t1\n"
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "qa3_three-supporting-facts_test.txt").write_text(story)
    for split in ("train", "test"):
        (tmp_path / "en" / f"qa1_{TASK_NAMES[1]}_{split}.txt").write_text(story)
    config = BabiDataConfig(root=str(tmp_path), tasks=(1, 3), fallback_size="generated", seed=5)
    files = find_task_files(tmp_path, 3, "1k", fallback_size="generated")
    assert files.train_size == "generated" and files.test.name.endswith("_test.txt")
    train, test = load_samples(config)
    assert len(test) == 2 and len(train) == 1 + 1000
    generated = [s for s in train if s.task == 3]
    assert len(generated) == 1000 and all(s.question[:2] == ("where", "was") for s in generated)
    assert generated == load_samples(config)[0][1:]  # seeded: the same questions again
    assert generated != load_samples(replace(config, seed=6))[0][1:]
    with pytest.raises(BabiDataError, match=r"qa4_.*_test.txt is missing"):
        load_samples(replace(config, tasks=(4,)))
    with pytest.raises(BabiDataError, match="fallback_size: 'generate'"):
        BabiDataConfig(fallback_size="generate")


# ----------------------------------------------------------------------------- fetcher


def _babi_files() -> dict[str, bytes]:
    """A few task files: real ones where the data is present, else the hand-written story."""
    names = ["en/qa1_single-supporting-fact_test.txt", "en/qa19_path-finding_test.txt"]
    if BABI is not None:
        return {name: (BABI / name).read_bytes() for name in names}
    return {name: STORY.encode() for name in names}


def _tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _official_like(path: Path) -> Path:
    folder = tarfile.TarInfo("tasks_1-20_v1-2")
    folder.type = tarfile.DIRTYPE
    files = [(tarfile.TarInfo(f"tasks_1-20_v1-2/{n}"), d) for n, d in _babi_files().items()]
    return _tar(path, [(folder, None), *files])


def test_fetch_unpacks_a_local_archive_atomically(tmp_path):
    archive = _official_like(tmp_path / "tasks_1-20_v1-2.tar.gz")
    dest = fetch_babi(tmp_path / "data" / "babi", archive=archive)
    assert dest == tmp_path / "data" / "babi"
    for name, data in _babi_files().items():
        assert (dest / name).read_bytes() == data
    assert len(read_file(dest / "en/qa19_path-finding_test.txt")) >= 1
    assert sorted(p.name for p in dest.parent.iterdir()) == ["babi"]  # no temp folder left
    # Already there: returned as it is, the archive is not read again.
    assert fetch_babi(dest, archive=tmp_path / "missing.tar.gz") == dest
    with pytest.raises(BabiArchiveError, match="sha256"):
        fetch_babi(tmp_path / "other", archive=archive, sha256="0" * 64)
    # An empty folder may be the target; a folder with something else in it may not.
    (tmp_path / "empty").mkdir()
    assert (fetch_babi(tmp_path / "empty", archive=archive) / "en").is_dir()
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(BabiDataError, match="not empty"):
        fetch_babi(tmp_path / "busy", archive=archive)
    assert [p.name for p in (tmp_path / "busy").iterdir()] == ["notes.txt"]
    with pytest.raises(BabiArchiveError, match="not a readable tar archive"):
        fetch_babi(tmp_path / "nothing", archive=tmp_path / "missing.tar.gz")


def test_fetch_downloads_over_http(tmp_path):
    payload = _official_like(tmp_path / "served.tar.gz").read_bytes()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the http.server API)
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/tasks_1-20_v1-2.tar.gz"
        seen: list[tuple[int, int | None]] = []
        dest = fetch_babi(
            tmp_path / "babi", url=url, timeout=10, progress=lambda *a: seen.append(a)
        )
    finally:
        server.shutdown()
        server.server_close()
    assert (dest / "en" / "qa1_single-supporting-fact_test.txt").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["babi", "served.tar.gz"]
    assert seen and seen[-1] == (len(payload), len(payload))  # the bar's figures
    with pytest.raises(BabiDataError, match="cannot download .*archive="):
        fetch_babi(tmp_path / "b2", url="http://127.0.0.1:9/x.tar.gz", timeout=5)
    with pytest.raises(BabiDataError, match="not an http"):
        fetch_babi(tmp_path / "b3", url="file:///etc/passwd")
    assert not (tmp_path / "b2").exists() and not (tmp_path / "b3").exists()


def test_memrl_data_babi_unpacks_an_archive_and_says_what_it_holds(tmp_path, capsys):
    from rollout.cli import main

    stem = "tasks_1-20_v1-2/en/qa1_single-supporting-fact"
    files = [
        (tarfile.TarInfo(f"{stem}_{split}.txt"), STORY.encode()) for split in ("train", "test")
    ]
    archive = _tar(tmp_path / "babi.tar.gz", files)
    dest = tmp_path / "babi"
    assert main(["data", "babi", "--dest", str(dest), "--archive", str(archive)]) == 0
    out = capsys.readouterr().out
    assert f"bAbI in {dest}" in out and "1k: 1 of 20 tasks" in out and "missing: qa2, qa3" in out
    assert "10k: 0 of 20" in out
    written = read_file(dest / "en" / "qa1_single-supporting-fact_train.txt")
    assert written == parse_text(STORY, task=1)
    assert main(["data", "babi", "--dest", str(tmp_path / "x"), "--archive", "nope.tgz"]) == 1
    assert "nope.tgz" in capsys.readouterr().err and not (tmp_path / "x").exists()
    empty = _tar(tmp_path / "empty.tar.gz", [])
    assert main(["data", "babi", "--dest", str(tmp_path / "e"), "--archive", str(empty)]) == 1


def _link(name: str, target: str, kind: bytes) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, None


def _device(name: str) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = tarfile.CHRTYPE
    return info, None


@pytest.mark.parametrize(
    ("member", "problem"),
    [
        ((tarfile.TarInfo("/etc/evil.txt"), b"x"), "absolute path"),
        ((tarfile.TarInfo("en/../../evil.txt"), b"x"), "leaves the target folder"),
        ((tarfile.TarInfo("../evil.txt"), b"x"), "leaves the target folder"),
        (_link("en/qa1_link.txt", "/etc/passwd", tarfile.SYMTYPE), "is a link"),
        (_link("en/qa1_hard.txt", "/etc/passwd", tarfile.LNKTYPE), "is a link"),
        (_device("en/tty"), "not a plain file"),
    ],
)
def test_fetch_refuses_a_malicious_archive_and_writes_nothing(tmp_path, member, problem):
    good = [(tarfile.TarInfo(n), d) for n, d in _babi_files().items()]
    archive = _tar(tmp_path / "evil.tar.gz", [*good, member])
    with pytest.raises(BabiArchiveError, match=problem):
        fetch_babi(tmp_path / "out" / "babi", archive=archive)
    assert list((tmp_path / "out").iterdir()) == []
    assert not (tmp_path.parent / "evil.txt").exists()


def test_fetch_refuses_archives_that_are_not_babi(tmp_path):
    not_tar = tmp_path / "a.tar.gz"
    not_tar.write_bytes(b"\x1f\x8b broken")
    with pytest.raises(BabiArchiveError, match="not a readable tar archive"):
        fetch_babi(tmp_path / "x", archive=not_tar)
    other = _tar(tmp_path / "b.tar.gz", [(tarfile.TarInfo("README"), b"hello")])
    with pytest.raises(BabiArchiveError, match="not the bAbI tasks archive"):
        fetch_babi(tmp_path / "y", archive=other)
    full = _official_like(tmp_path / "c.tar.gz")
    truncated = tmp_path / "d.tar.gz"
    truncated.write_bytes(full.read_bytes()[: len(full.read_bytes()) // 2])
    with pytest.raises(BabiArchiveError):
        fetch_babi(tmp_path / "z", archive=truncated)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "a.tar.gz",
        "b.tar.gz",
        "c.tar.gz",
        "d.tar.gz",
    ]
