"""benchmarks/babi.py's bookkeeping: which runs are of one recipe, and where they are stored."""

from pathlib import Path

import pytest

from benchmarks.babi import config_changes, markdown_table, paper, recipe, store_runs
from rollout.config import config_to_dict, dump_config, load_config

ROOT = Path(__file__).resolve().parents[1]


def run_folder(tmp_path: Path, name: str, overrides: list[str]) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    cfg = load_config(ROOT / "configs" / "memn2n_babi_1k.yaml", overrides)
    (folder / "config.yaml").write_text(dump_config(cfg))
    return folder


def test_the_recipe_is_the_fields_away_from_their_defaults(tmp_path):
    cfg = config_to_dict(load_config(ROOT / "configs" / "memn2n_babi_1k.yaml"))
    changes = config_changes(cfg)
    assert changes["learner"]["lr_milestones"] == [44, 59, 74, 89]
    assert "amsgrad" not in changes["learner"]  # at its default
    assert changes["agent"] == {"linear_start_epochs": 30}  # the config repeats the rest's defaults
    assert changes["env"]["kwargs"]["size"] == "1k"  # env kwargs are kept whole

    a = recipe(run_folder(tmp_path, "a", ["run.seed=1"]))
    b = recipe(run_folder(tmp_path, "b", ["run.seed=2", "learner.amsgrad=false"]))
    c = recipe(run_folder(tmp_path, "c", ["run.seed=1", "learner.lr=0.02"]))
    assert a == b != c

    # a field written at its default and one left out (a field added later) hash the same
    d = run_folder(tmp_path, "d", ["run.seed=3"])
    text = (d / "config.yaml").read_text()
    (d / "config.yaml").write_text(text.replace("  amsgrad: false\n", ""))
    assert "amsgrad" not in (d / "config.yaml").read_text() and recipe(d) == a


def entry_run(seed: int, recipe_hash: str, train_error: float, mean: float) -> dict:
    errors = {f"qa{t}": mean for t in range(1, 21)}
    return {
        "seed": seed,
        "recipe": recipe_hash,
        "wall_clock_s": 1.0,
        "epochs": 90,
        "best_valid_accuracy": 0.9,
        "train_error_pct": train_error,
        "test_error_pct": errors,
        "mean_error_pct": mean,
        "failed_tasks": 20 if mean > 5 else 0,
        "failed": [],
    }


def test_runs_accumulate_by_recipe_and_size():
    result: dict = {}
    store_runs(result, [entry_run(1, "r1", 8.0, 15.0)], [])
    entry = store_runs(result, [entry_run(2, "r1", 6.0, 14.0)], [])
    assert entry["runs"] == 2 and entry["selected_seed"] == 2  # the lower training error
    assert entry["mean_error_pct_over_runs"] == 14.5
    assert (
        round(entry["paper"]["mean_error_pct"], 1) == 12.4 and entry["paper"]["failed_tasks"] == 11
    )

    ten_k = store_runs(result, [entry_run(1, "r10", 2.0, 8.0)], [], size="10k")
    assert result["joint_1k"]["runs"] == 2 and ten_k["runs"] == 1
    assert ten_k["config"] == "configs/memn2n_babi_10k.yaml"
    assert round(ten_k["paper"]["mean_error_pct"], 1) == 7.5 and ten_k["paper"]["failed_tasks"] == 6

    store_runs(result, [entry_run(3, "r2", 5.0, 13.0)], [])  # another recipe: the old one moves
    assert result["joint_1k"]["runs"] == 1 and result["joint_1k_superseded"]["runs"] == 2
    store_runs(result, [entry_run(4, "r3", 5.0, 13.0)], [])
    assert result["joint_1k_superseded_2"]["recipe"] == "r2"
    with pytest.raises(ValueError, match="different recipes"):
        store_runs(result, [entry_run(5, "r3", 1, 1), entry_run(6, "r4", 1, 1)], [])

    # a named variant entry sits beside joint_1k and leaves it alone
    variant = store_runs(result, [entry_run(7, "r5", 4.0, 12.0)], ["x=1"], name="joint_1k_lr")
    assert variant["runs"] == 1 and result["joint_1k"]["recipe"] == "r3"
    assert result["joint_1k_lr"]["overrides"] == ["x=1"]


def test_the_papers_columns():
    assert paper("1k")["test_error_pct"]["qa19"] == 88.0
    assert paper("10k")["test_error_pct"]["qa17"] == 41.8


def test_the_docs_table_has_a_column_per_run_and_the_paper():
    result: dict = {}
    store_runs(result, [entry_run(1, "r", 8.0, 15.0), entry_run(2, "r", 6.0, 14.0)], [])
    lines = markdown_table(result["joint_1k"], "1k").splitlines()
    assert lines[0] == (
        "| task | memrl MemN2N 1k, best of 2 by training error (seed 2) | seed 1 | seed 2 "
        "| paper 1k (best of 10) |"
    )
    assert lines[2] == "| qa1 | 14.0 | 15.0 | 14.0 | 0.0 |"
    assert "| **mean error %** | **14.0** | 15.0 | 14.0 | **12.4** |" in lines
    assert "| training error % (all tasks) | 6.00 | 8.00 | 6.00 |  |" in lines
