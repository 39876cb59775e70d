"""`memrl sweep`: values -> Ray Tune axes (grid, random, list-valued keys), clear errors before Ray
starts, the per-setting summary, and a 2-trial CartPole sweep through Ray Tune end to end."""

from __future__ import annotations

import json

import pytest

from rollout.cli import main
from rollout.config import ConfigError, read_yaml
from rollout.plot import group_runs, load_run
from rollout.run_dir import read_metrics
from rollout.sweep import summarise, summary_markdown
from rollout.sweep_space import parse_sweep

CONFIG = "configs/reinforce_cartpole.yaml"
TINY = [
    "agent.hidden=[8]",
    "rollout.num_workers=0",
    "rollout.envs_per_worker=2",
    "rollout.steps_per_sample=100",
    "run.total_env_steps=300",
    "run.eval_every_steps=0",
    "run.eval_episodes=2",
    "run.stop_return=null",
    "run.log_every_s=0",
]


def spec(*arguments: str):
    return parse_sweep(read_yaml(CONFIG), CONFIG, arguments)


def test_grid_random_and_fixed_values_become_axes():
    s = spec("learner.lr=[1e-3,3e-3]", "run.seed=[0,1,2]", "rollout.num_workers=0")
    assert [(a.key, a.kind, a.values) for a in s.axes] == [
        ("learner.lr", "grid", (0.001, 0.003)),
        ("run.seed", "grid", (0, 1, 2)),
    ]
    assert s.fixed == ["rollout.num_workers=0"] and s.grid_size() == 6 and not s.random
    s = spec(
        "learner.lr=loguniform(1e-4, 1e-2)",
        "agent.entropy_coef=uniform(0,0.1)",
        "run.seed=randint(0,9)",
        "agent.baseline=choice(learned,none)",
    )
    kinds = {a.key: (a.kind, a.values) for a in s.axes}
    assert kinds == {
        "learner.lr": ("loguniform", (1e-4, 1e-2)),
        "agent.entropy_coef": ("uniform", (0.0, 0.1)),
        "run.seed": ("randint", (0, 9)),
        "agent.baseline": ("choice", ("learned", "none")),
    }
    assert s.random and s.grid_size() == 1


def test_a_list_valued_key_takes_a_list_as_its_value_and_a_list_of_lists_as_a_grid():
    s = spec("agent.hidden=[64,64]")
    assert s.axes == [] and s.data["agent"]["hidden"] == [64, 64]
    s = spec("agent.hidden=[[16],[32,32]]")
    assert [(a.key, a.values) for a in s.axes] == [("agent.hidden", ([16], [32, 32]))]
    data = s.trial_data({"agent.hidden": [32, 32]})
    assert data["agent"]["hidden"] == [32, 32] and data["learner"]["lr"] == 0.003


@pytest.mark.parametrize(
    "argument, message",
    [
        ("run.seed=[0,1", r"sweep value 'run.seed=\[0,1': cannot read the list"),
        ("run.seed=[]", r"the list is empty"),
        ("learner.lrr=[1e-3,2e-3]", r"unknown key 'learner.lrr'.* Did you mean 'lr'\?"),
        ("run.seed=[0,x]", r"sweep value 'run.seed=\[0,x\]' \(value 'x'\).*must be int"),
        ("run.seed=uniform(0,5)", r"must be int.*Use randint\(lo, hi\) for the integer key"),
        ("learner.lr=uniform(1e-2,1e-3)", r"the range needs lo < hi"),
        ("learner.lr=loguniform(0,1)", r"loguniform\(lo, hi\) needs 0 < lo"),
        ("learner.lr=uniform(1)", r"uniform\(lo, hi\) takes two numbers"),
        ("learner.lr=normal(0,1)", r"unknown sampler 'normal'; use \[a,b,c\] \(grid\)"),
        ("agent.baseline=choice(learned,sometimes)", r"agent.baseline' must be one of"),
    ],
)
def test_bad_sweep_values_are_clear_errors(argument, message):
    with pytest.raises(ConfigError, match=message):
        spec(argument)


def test_bad_values_exit_2_before_ray_starts(capsys, tmp_path):
    assert main(["sweep", CONFIG, "run.seeds=[0,1]", "--dir", str(tmp_path)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "unknown key 'run.seeds'" in err and "Did you mean 'seed'?" in err
    assert main(["sweep", CONFIG, "run.seed=[0,1]", "--samples", "0"]) == 2
    assert "--samples must be >= 1" in capsys.readouterr().err
    assert main(["sweep", CONFIG, "env.id=CartPol-v1", "run.seed=[0,1]"]) == 2
    assert "CartPole-v1" in capsys.readouterr().err  # the env spec error names the closest id
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_summary_groups_seeds_of_a_setting_with_median_min_max():
    trials = [
        {
            "trial": i,
            "values": {"learner.lr": lr, "run.seed": seed},
            "eval_score": score,
            "best_eval_return": score + 1,
            "run_dir": f"r{i}",
        }
        for i, (lr, seed, score) in enumerate(
            [(0.1, 0, 10.0), (0.1, 1, 30.0), (0.1, 2, 20.0), (0.2, 0, 5.0), (0.2, 1, 7.0)]
        )
    ]
    trials.append({"trial": 5, "values": {"learner.lr": 0.2, "run.seed": 2}, "error": "boom"})
    summary = summarise(trials, ["learner.lr", "run.seed"])
    first, second = summary["settings"]
    assert first["setting"] == {"learner.lr": 0.1} and first["trials"] == 3
    assert first["final"] == {"median": 20.0, "min": 10.0, "max": 30.0}
    assert first["best"] == {"median": 21.0, "min": 11.0, "max": 31.0}
    assert second["final"] == {"median": 6.0, "min": 5.0, "max": 7.0} and second["failed"] == 1
    table = summary_markdown(summary, "eval score")
    assert "| 0.1 | 3 | 20 [10, 30] | 21 [11, 31] |" in table
    assert "| 0.2 | 2 (1 failed) | 6 [5, 7] | 7 [6, 8] |" in table


def test_trial_numbers_come_from_tunes_trial_folders():
    from rollout.sweep import _trial_index

    assert _trial_index("/runs/x-sweep-1/tune/trial-f2629_00012") == 12
    assert _trial_index("/runs/x-sweep-1/tune/trial-f2629_00000/") == 0


def test_two_trial_sweep_through_ray_tune_writes_runs_and_summary(ray_local, tmp_path, capsys):
    args = ["sweep", CONFIG, *TINY, "--dir", str(tmp_path), "run.seed=[0,1]"]  # any order
    assert main(args) == 0
    out = capsys.readouterr().out
    (sweep_dir,) = tmp_path.iterdir()
    assert sweep_dir.name.startswith("reinforce_cartpole-sweep-")
    runs = sorted(p for p in sweep_dir.iterdir() if (p / "config.yaml").is_file())
    assert [p.name.split("-")[1] for p in runs] == ["t0", "t1"]
    for seed, run in enumerate(runs):
        config = read_yaml(run / "config.yaml")
        assert config["run"]["seed"] == seed and config["agent"]["hidden"] == [8]
        rows = read_metrics(run / "metrics.jsonl")
        assert rows[-1]["env_steps"] >= 300 and "eval_score" in rows[-1]
        assert (run / "checkpoints" / "best").is_dir()
    summary = json.loads((sweep_dir / "summary.json").read_text())
    (setting,) = summary["settings"]
    assert setting["trials"] == 2 and setting["failed"] == 0 and sorted(setting["seeds"]) == [0, 1]
    scores = [t["eval_score"] for t in summary["trials"]]
    assert setting["final"]["min"] == min(scores) and setting["final"]["max"] == max(scores)
    assert (sweep_dir / "summary.md").read_text() in out
    assert f"plot with: memrl plot {sweep_dir}" in " ".join(out.split())

    # the sweep folder plots as one setting: the two seeds grouped
    assert [len(g.runs) for g in group_runs([load_run(p) for p in runs])] == [2]
    png = tmp_path / "sweep.png"
    assert main(["plot", str(sweep_dir), "--metric", "eval", "-o", str(png)]) == 0
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_a_trials_rollout_workers_use_the_cpus_its_placement_group_reserved(ray_local):
    """Inside a trial whose group holds [driver, 1 CPU per worker], WorkerGroup places the
    workers in bundles 1..N instead of asking the cluster for a second group."""
    import ray
    from ray.util.placement_group import placement_group, remove_placement_group
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    group = placement_group([{"CPU": 0.5}, {"CPU": 1.0}])
    ray.get(group.ready(), timeout=60)

    @ray.remote(num_cpus=0.5)
    def inside() -> tuple[str | None, str | None]:
        from rollout.worker_group import _trial_group

        one, two = _trial_group(1), _trial_group(2)
        return (one.id.hex() if one else None, two.id.hex() if two else None)

    strategy = PlacementGroupSchedulingStrategy(group, 0, placement_group_capture_child_tasks=True)
    try:
        one, two = ray.get(inside.options(scheduling_strategy=strategy).remote(), timeout=60)
    finally:
        remove_placement_group(group)
    assert one == group.id.hex() and two is None
    from rollout.worker_group import _trial_group

    assert _trial_group(1) is None  # the driver is in no placement group
