"""benchmarks/results_store.py: concurrent benchmark processes never drop each other's rows."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest

from benchmarks.results_store import read_json, update_json


def _add_rows(path: str, name: str, count: int) -> None:
    for i in range(count):
        update_json(Path(path), lambda d, i=i: d.setdefault("rows", []).append(f"{name}{i}"))


def test_two_processes_updating_at_once_keep_every_row(tmp_path: Path) -> None:
    path = tmp_path / "results" / "bench.json"  # the folder does not exist yet
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_add_rows, args=(str(path), n, 40)) for n in "ab"]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=60)
        assert w.exitcode == 0
    rows = json.loads(path.read_text())["rows"]
    assert sorted(rows) == sorted(f"{n}{i}" for n in "ab" for i in range(40))
    assert [r for r in rows if r[0] == "a"] == [f"a{i}" for i in range(40)]  # each in order


def test_read_and_update_return_what_is_stored(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    assert read_json(path) == {}
    assert read_json(tmp_path / "missing" / "r.json") == {}
    written = update_json(path, lambda d: d.update(x=1))
    assert written == {"x": 1} == read_json(path) == json.loads(path.read_text())


@pytest.mark.parametrize("text", ["{not json", "[1, 2]"])
def test_a_broken_file_is_an_error_naming_it_and_is_left_alone(tmp_path: Path, text: str) -> None:
    path = tmp_path / "r.json"
    path.write_text(text)
    with pytest.raises(ValueError, match="r.json"):
        update_json(path, lambda d: d.update(x=1))
    assert path.read_text() == text
