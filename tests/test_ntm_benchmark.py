"""benchmarks/ntm.py's summary: seeds that did not converge count against the median."""

import json
import re

import pytest

from benchmarks.ntm import kept_runs, store_entry, summarise, train_cost_curve


def run(seed: int, sequences: int | None) -> dict:
    reached = sequences is not None
    return {
        "seed": seed,
        "reached": reached,
        "sequences": sequences,
        "time_s": sequences / 100 if reached else None,
    }


def test_unreached_seeds_count_as_beyond_the_budget():
    s = summarise([run(0, 30_000), run(1, None), run(2, 10_000), run(3, 20_000), run(4, None)])
    assert s["reached"] == "3/5"
    # sorted: 10k, 20k, 30k, >budget, >budget -> the median is the third seed, not 20k
    assert s["sequences"] == {"median": 30_000, "worst": None, "slowest_reached": 30_000}
    assert s["time_s"]["median"] == 300.0
    assert "worst_note" in s

    s = summarise([run(0, 10_000), run(1, None), run(2, None), run(3, 20_000)])
    assert s["sequences"]["median"] is None  # half the seeds did not reach it
    assert s["sequences"]["slowest_reached"] == 20_000

    s = summarise([run(0, 10_000), run(1, 20_000)])
    assert s["sequences"] == {"median": 15_000, "worst": 20_000, "slowest_reached": 20_000}
    assert "worst_note" not in s
    assert summarise([run(0, None)])["sequences"] == {
        "median": None,
        "worst": None,
        "slowest_reached": None,
    }


def test_a_seed_rerun_keeps_the_other_seeds_of_the_same_setup():
    setup = {
        "budget": {"max_time_s": 420, "max_sequences": 25_000},
        "overrides": [],
        "parallel_runs": 1,
        "machine": {"cpu": "AMD EPYC"},
    }
    stored = {**setup, "runs": [run(0, 10_000), run(1, None), run(2, 20_000)]}
    kept = kept_runs(stored, dict(setup), [1], "copy / ntm")
    assert [r["seed"] for r in kept] == [0, 2]
    assert kept_runs(None, dict(setup), [1], "copy / ntm") == []
    for key, value in (
        ("budget", {"max_time_s": 560, "max_sequences": 50_000}),
        ("overrides", ["learner.lr=0.0003"]),
        ("machine", {"cpu": "Intel Xeon"}),
    ):
        with pytest.raises(SystemExit, match=key if key != "machine" else "cpu"):
            kept_runs(stored, {**setup, key: value}, [1], "copy / ntm")


def test_finished_seeds_are_stored_when_another_seed_fails(tmp_path, monkeypatch):
    """Each seed is written to the JSON as it finishes; a failed run leaves the others stored
    and the benchmark exits with the failed seed named."""
    import json
    import sys
    import time

    import benchmarks.ntm as bench

    out = tmp_path / "ntm.json"
    seen: list[dict] = []

    def fake_run_once(agent, task, seed, *args) -> dict:
        if seed == 1:  # what a kill while seed 1 runs would leave behind (seed 0 is stored
            deadline = time.monotonic() + 10  # by the main thread as this one starts)
            while not out.is_file() and time.monotonic() < deadline:
                time.sleep(0.01)
            seen.append(json.loads(out.read_text())["tasks"]["copy"]["ntm"])
        if seed == 1:
            raise RuntimeError("memrl train ... failed:\nCUDA error: out of memory")
        return {**run(seed, 1000 * (seed + 1)), "generalisation": {}, "curve": []}

    monkeypatch.setattr(bench, "run_once", fake_run_once)
    monkeypatch.setattr(
        sys,
        "argv",
        [
            "ntm.py",
            "--tasks",
            "copy",
            "--agents",
            "ntm",
            "--seeds",
            "3",
            "--no-throughput",
            "--out",
            str(out),
        ],
    )
    with pytest.raises(SystemExit, match=r"(?s)seeds \[1\] failed.*out of memory"):
        bench.main()
    # seed 0 was stored, with 2 seeds pending, before seeds 1 and 2 ran
    assert [r["seed"] for r in seen[0]["runs"]] == [0] and seen[0]["pending_seeds"] == 2
    entry = json.loads(out.read_text())["tasks"]["copy"]["ntm"]
    assert [r["seed"] for r in entry["runs"]] == [0, 2]
    assert entry["failed_seeds"] == [1] and "pending_seeds" not in entry
    assert entry["summary"]["reached"] == "2/2"


def test_two_benchmark_processes_keep_each_others_entries(tmp_path):
    """Two runs of the benchmark side by side (each read ntm.json at its start): storing one's
    entry must not drop the entry the other stored meanwhile."""
    import json

    path = tmp_path / "ntm.json"
    path.write_text(json.dumps({"tasks": {"copy": {"old": {"runs": []}}}}))
    first = json.loads(path.read_text())
    second = json.loads(path.read_text())
    run = {"seed": 0, "reached": True, "sequences": 100, "time_s": 1.0}
    store_entry(first, path, "copy", "a", {}, [run], pending=1)
    store_entry(second, path, "repeat_copy", "b", {}, [run], pending=0)
    store_entry(first, path, "copy", "a", {}, [run, {**run, "seed": 1}], pending=0)
    stored = json.loads(path.read_text())["tasks"]
    assert set(stored["copy"]) == {"old", "a"} and set(stored["repeat_copy"]) == {"b"}
    assert [r["seed"] for r in stored["copy"]["a"]["runs"]] == [0, 1]
    assert "pending_seeds" not in stored["copy"]["a"]


def test_train_cost_curve_averages_the_logged_costs_per_window():
    """The paper's axis (cost in bits per sequence) from the log rows: the mean of each window's
    rows at its last logged sequence count; rows without a cost (evaluation-only) skipped."""
    rows = [
        {"sequences": 1000, "cost_bits": 120.0},
        {"sequences": 4000, "cost_bits": 100.0},
        {"sequences": 5000, "cost_bits": 110.0},  # the window's edge belongs to it
        {"sequences": 6000, "eval_return_mean": -50.0},
        {"sequences": 7000, "cost_bits": 80.0},
        {"sequences": 23000, "cost_bits": 40.0},  # empty windows in between: no point
        {"sequences": 24000, "cost_bits": 30.0},
    ]
    assert train_cost_curve(rows) == [[5000, 110.0], [7000, 80.0], [24000, 35.0]]
    assert train_cost_curve(rows, window=100_000) == [[24000, 80.0]]
    assert train_cost_curve([{"sequences": 10, "loss": 0.5}]) == []


def test_sort_cost_points_names_each_run_with_a_cost_curve(tmp_path):
    from benchmarks.ntm_plot import plot_sort_cost, sort_cost_points

    result = {
        "tasks": {
            "priority_sort": {
                "ntm (old)": {"runs": [{"seed": 0, "curve": [[1000, 5.0, 60.0]]}]},
                "ntm": {
                    "runs": [
                        {"seed": 0, "train_cost_curve": [[5000, 120.0], [10000, 100.0]]},
                        {"seed": 1, "train_cost_curve": []},
                    ]
                },
            },
            "copy": {"ntm": {"runs": [{"seed": 0, "train_cost_curve": [[5000, 1.0]]}]}},
        }
    }
    assert sort_cost_points(result) == {"ntm, seed 0": [(5000, 120.0), (10000, 100.0)]}
    plot_sort_cost(result, tmp_path / "sort.png")
    assert (tmp_path / "sort.png").stat().st_size > 1000


def test_ngrams_gap_is_summarised_and_tabled_for_protocol_runs_only():
    """Dynamic n-grams runs carry their gap to the Bayes-optimal cost; the summary gives the
    median and worst gap, and the n-grams table lists only the runs measured that way."""
    from benchmarks.ntm_plot import ngrams_table

    old = {**run(0, None), "curve": [[9648, 200.9, 76.97]], "total_time_s": 208.6}
    new = [
        {
            **run(seed, None),
            "curve": [[200_000, 3000.0, 70.0]],
            "total_time_s": 3010.4,
            "final_cost_bits": 134.1 + seed,
            "bayes_optimal": [133.6],
            "gap_bits": 0.5 + seed,
        }
        for seed in (0, 1, 2)
    ]
    assert "gap_bits" not in summarise([old])
    assert summarise(new)["gap_bits"] == {"median": 1.5, "worst": 2.5}
    machine = {"cpu": "AMD EPYC", "gpu": None}
    result = {
        "machine": machine,
        "tasks": {"dynamic_ngrams": {"ntm": {"runs": [old, *new]}}},
    }
    new[1]["report_weights"] = "final"
    new[2]["final_weights"] = {"cost_bits": 134.0, "bayes_optimal": 133.6, "gap_bits": 0.4}
    rows = ngrams_table(result).splitlines()[2:]
    assert len(rows) == 4
    assert rows[0] == "| ntm | AMD EPYC | 0 | best | 134.10 | 133.60 | 0.50 | 200,000 | 3,010 |"
    assert rows[1].startswith("| ntm | AMD EPYC | 1 | final | 135.10 |")
    assert rows[3] == "| ntm | AMD EPYC | 2 | final | 134.00 | 133.60 | 0.40 | 200,000 | 3,010 |"


def test_cost_tasks_head_the_table_with_their_cost_not_the_seeds_that_reached():
    """Priority sort and n-grams have no 0.1-bit target: the table's first figure for them is
    the median (worst) cost on the training distribution, or gap to the Bayes-optimal cost."""
    from benchmarks.ntm import headline

    runs = [
        {**run(seed, None), "cost_bits": [cost, 300.0]} for seed, cost in ((0, 40.0), (1, 50.0))
    ]
    summary = summarise(runs)
    assert summary["cost_bits"] == {"median": 45.0, "worst": 50.0}
    assert headline("priority_sort", summary) == "cost 45.00 (50.00)"
    assert headline("copy", summary) == "0/2"
    gaps = summarise([{**run(0, None), "gap_bits": 0.9}, {**run(1, None), "gap_bits": 2.1}])
    assert headline("dynamic_ngrams", gaps) == "gap 1.50 (2.10)"
    assert headline("dynamic_ngrams", summarise([run(0, None)])) == "0/1"  # before the protocol


def test_curve_table_reads_the_figures_off_each_seeds_evaluation_curve():
    from benchmarks.ntm_plot import curve_table

    def run(seed: int, curve: list[list[float]]) -> dict:
        report = {"training distribution": 0.5 * seed, "length 20 x 10 repeats": 3.0}
        return {
            "seed": seed,
            "curve": curve,
            "total_time_s": 100.0 + seed,
            "generalisation": report,
        }

    curves = {
        1: [[1000, 1, 90.0], [2000, 2, 4.0], [3000, 3, 0.05], [4000, 4, 60.0], [5000, 5, 0.0]],
        0: [[1000, 1, 0.1], [2000, 2, 0.2]],  # reached at the first evaluation
        2: [[1000, 1, 80.0], [2000, 2, 6.0]],  # never <= 5
    }
    result = {"tasks": {"repeat_copy": {"x": {"runs": [run(s, c) for s, c in curves.items()]}}}}
    rows = curve_table(result, "repeat_copy", ["x"]).splitlines()
    assert rows[0].endswith("| training distribution | length 20 x 10 repeats |")
    assert rows[2] == "| x | 0 | 1,000 | 1,000 | 100 | 0.20 (0 of 1 > 1) | 0.00 | 3.00 |"
    assert rows[3] == "| x | 1 | 2,000 | 3,000 | 101 | 60.00 (1 of 2 > 1) | 0.50 | 3.00 |"
    assert rows[4] == "| x | 2 | - | - | 102 | - | 1.00 | 3.00 |"


def test_plot_cli_prints_a_tasks_curves_and_names_what_is_missing(tmp_path, capsys):
    from benchmarks.ntm_plot import main

    run = {"seed": 0, "curve": [[500, 1, 0.0]], "total_time_s": 9.0, "generalisation": {}}
    path = tmp_path / "ntm.json"
    path.write_text(json.dumps({"tasks": {"copy": {"a": {"runs": [run]}}}}))
    main([str(path), "--curves", "copy"])
    assert "| a | 0 | 500 | 500 | 9 | - |" in capsys.readouterr().out
    for argv, message in (
        ([str(path), "--curves", "sort"], "no task 'sort' in .*; tasks: copy"),
        ([str(path), "--curves", "copy", "b"], "no entry 'b' for copy; entries: a"),
        ([str(tmp_path / "none.json"), "--table"], "cannot read .*none.json"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
        assert re.search(message, capsys.readouterr().err)
