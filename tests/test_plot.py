"""`memrl plot`: learning curves of real (tiny) runs in one PNG, seeds aggregated, clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rollout.cli import main
from rollout.plot import aggregate, group_runs, load_run, plot_runs

TINY = [
    "train",
    "configs/reinforce_cartpole.yaml",
    "env.id=tests.fakes:Corridor",
    "agent.hidden=[8]",
    "rollout.num_workers=0",
    "rollout.envs_per_worker=2",
    "rollout.steps_per_sample=40",
    "run.total_env_steps=400",
    "run.eval_every_steps=100",
    "run.eval_episodes=2",
    "run.stop_return=null",
    "run.log_every_s=0",
]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two seeds of one config and one run with another learning rate."""
    root = tmp_path_factory.mktemp("runs")
    for extra in (["run.seed=0"], ["run.seed=1"], ["run.seed=0", "learner.lr=0.01"]):
        assert main([*TINY, *extra, f"run.dir={root}"]) == 0
    paths = sorted(root.iterdir(), key=lambda p: p.stat().st_mtime)
    assert len(paths) == 3
    return paths


def test_plot_two_seeds_and_another_config_writes_png(runs, tmp_path, capsys):
    out = tmp_path / "curves.png"
    args = ["plot", *map(str, runs), "--metric", "eval", "-o", str(out)]
    assert main(args) == 0
    assert f"wrote {out} (eval_return_mean)" in " ".join(capsys.readouterr().out.split())
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    import matplotlib.image

    height, width = matplotlib.image.imread(out).shape[:2]
    assert width > 1.8 * height  # both x axes (env steps, time) side by side by default

    groups = group_runs([load_run(p) for p in runs])
    assert [len(g.runs) for g in groups] == [2, 1]
    assert "learner.lr=0.003" in groups[0].label and "median of 2 seeds" in groups[0].label
    assert "learner.lr=0.01" in groups[1].label and "(seed 0)" in groups[1].label


def test_plot_one_axis_default_metric_and_default_output(runs, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path, key, notes = plot_runs([runs[0]], None, ("time",))
    assert key == "return_mean" and notes == []
    assert path == tmp_path.joinpath("plot_return_mean.png").relative_to(tmp_path)
    assert (tmp_path / path).stat().st_size > 5_000


def test_plot_errors_exit_2(runs, tmp_path, capsys):
    assert main(["plot", str(tmp_path)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"'{tmp_path}' is not a memrl run directory (no config.yaml in it)" in err

    assert main(["plot", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err

    assert main(["plot", str(runs[0]), "--metric", "bit_errors"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "no run logged metric 'bit_errors'" in err
    for metric in ("eval_return_mean", "loss", "return_mean", "entropy"):
        assert metric in err
    assert "iteration" not in err  # counters are not offered as metrics

    assert main(["plot", str(runs[0]), "-o", str(tmp_path / "x.pdf")]) == 2
    assert "must be a .png file" in " ".join(capsys.readouterr().err.split())


def test_run_without_the_metric_is_left_out_with_a_note(runs, tmp_path):
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "config.yaml").write_text((runs[0] / "config.yaml").read_text())
    rows = [{"env_steps": 10, "time_s": 1.0, "loss": 0.5}]
    (bare / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    path, key, notes = plot_runs([runs[0], bare], "eval", ("env_steps",), tmp_path / "p.png")
    assert key == "eval_return_mean" and path.is_file()
    assert notes == [f"{bare} has no 'eval_return_mean' rows; left out"]


def test_aggregate_median_band_on_common_grid():
    a = (np.array([0.0, 10.0, 20.0]), np.array([0.0, 10.0, 20.0]))
    b = (np.array([0.0, 20.0, 30.0]), np.array([2.0, 22.0, 99.0]))
    c = (np.array([5.0, 20.0]), np.array([5.0, 5.0]))
    x, median, low, high = aggregate([a, b, c])
    np.testing.assert_allclose(x, [5.0, 10.0, 20.0])  # the range every run covers
    np.testing.assert_allclose(low, [5.0, 5.0, 5.0])
    np.testing.assert_allclose(high, [7.0, 12.0, 22.0])
    np.testing.assert_allclose(median, [5.0, 10.0, 20.0])
    x, median, low, high = aggregate([a])
    assert x is a[0] and median is a[1] and low is a[1]


def test_legends_name_agent_and_env_first_not_another_agents_own_keys(tmp_path):
    """A DQN run beside a REINFORCE run: the legend says agent.name (and env.id), not the keys
    only DQN has (agent.apex_*), which follow from the agent."""
    from rollout.config import config_to_dict, load_config
    from rollout.plot import Run

    dqn = config_to_dict(load_config("configs/dqn_cartpole.yaml"))
    reinforce = config_to_dict(load_config("configs/reinforce_cartpole.yaml", ["learner.lr=0.01"]))
    other_env = config_to_dict(
        load_config("configs/reinforce_cartpole.yaml", ["env.id=Acrobot-v1", "learner.lr=0.01"])
    )
    runs = [Run(tmp_path / str(i), c, []) for i, c in enumerate([dqn, reinforce, other_env])]
    labels = [g.label for g in group_runs(runs)]
    assert labels[0].startswith("dqn_cartpole agent.name=dqn env.id=CartPole-v1 learner.")
    assert labels[1].startswith("reinforce_cartpole agent.name=reinforce env.id=CartPole-v1")
    assert labels[2].startswith("reinforce_cartpole agent.name=reinforce env.id=Acrobot-v1")
    assert not any("agent.apex" in label or "agent.hidden" in label for label in labels), labels

    # between runs of one agent, an agent key that differs is named
    wide = config_to_dict(load_config("configs/reinforce_cartpole.yaml", ["agent.hidden=[8]"]))
    labels = [g.label for g in group_runs([runs[1], Run(tmp_path / "w", wide, [])])]
    assert "agent.hidden=[64, 64]" in labels[0] and "agent.hidden=[8]" in labels[1]
    assert "agent.name" not in labels[0]
