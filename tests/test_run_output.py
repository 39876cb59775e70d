"""What a run prints and logs: progress with percent and ETA (piped lines and the terminal bar),
one summary line on stdout, metrics.jsonl without a made-up last row, and TensorBoard tags
grouped under train/, eval/, learner/, time/ with the resolved config as hyperparameters."""

from __future__ import annotations

import contextlib
import io

import pytest
from rich.console import Console

from rollout.cli import main
from rollout.progress import ProgressReport, eta_seconds, format_duration
from rollout.run_dir import read_metrics, tensorboard_tag

TINY = [
    "train",
    "configs/reinforce_cartpole.yaml",
    "agent.hidden=[8]",
    "rollout.num_workers=0",
    "rollout.envs_per_worker=2",
    "rollout.steps_per_sample=100",
    "run.total_env_steps=600",
    "run.eval_every_steps=300",
    "run.eval_episodes=2",
    "run.stop_return=null",
    "run.log_every_s=0",
]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    out, err = io.StringIO(), io.StringIO()  # module-scoped: capsys is per test
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        assert main([*TINY, f"run.dir={root}"]) == 0
    (run,) = root.iterdir()
    return run, out.getvalue(), err.getvalue()


def test_piped_progress_lines_have_total_percent_and_eta(tiny_run):
    _, _, err = tiny_run
    lines = [line for line in err.splitlines() if line.startswith("env steps ")]
    assert lines, err
    assert all("/600 (" in line and "%)" in line for line in lines)
    assert any(" ETA " in line for line in lines)


def test_one_summary_line_on_stdout(tiny_run):
    run, out, _ = tiny_run
    (line,) = out.splitlines()
    assert line.startswith("done: total_env_steps reached;") and str(run) in line
    assert "evaluation return" in line and "(best " in line


def test_no_made_up_last_metrics_row(tiny_run):
    run, _, _ = tiny_run
    rows = read_metrics(run / "metrics.jsonl")
    steps = [r["env_steps"] for r in rows]
    assert steps == sorted(steps)
    # a step is logged twice only for two evaluations of different weights: one of earlier
    # weights that came back in the last iteration, then the final one (each evaluation gets
    # its row; none is made up or dropped)
    for before, after in zip(rows, rows[1:]):
        if before["env_steps"] == after["env_steps"]:
            assert "eval_env_steps" in before and "eval_env_steps" in after
            assert before["eval_env_steps"] < after["eval_env_steps"] <= after["env_steps"]
    assert all(r["steps_per_s"] > 0 for r in rows)
    assert "eval_score" in rows[-1] and rows[-1]["eval_env_steps"] == rows[-1]["env_steps"]


def test_tensorboard_tags_are_grouped_and_the_config_is_hyperparameters(tiny_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

    run, _, _ = tiny_run
    acc = EventAccumulator(str(run / "tb"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    expected = {
        "train/return_mean",
        "train/episodes",
        "eval/eval_score",
        "eval/eval_return_mean",
        "learner/loss",
        "learner/updates",
        "time/steps_per_s",
        "time/t_update_s",
    }
    assert expected <= tags, sorted(tags)
    assert all(t.split("/")[0] in ("train", "eval", "learner", "time") for t in tags)
    assert [e.value for e in acc.Scalars("time/steps_per_s")][-1] > 0

    content = acc.PluginTagToContent("hparams")
    start = HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    hp = start.session_start_info.hparams
    assert hp["learner.lr"].number_value == pytest.approx(0.003)
    assert hp["agent.name"].string_value == "reinforce"
    assert hp["agent.hidden"].string_value == "[8]"
    assert hp["rollout.overlap"].number_value == 1  # torch writes bools as numbers
    experiment = HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    assert "eval/eval_score" in {m.name.tag for m in experiment.metric_infos}


def test_tag_groups():
    assert tensorboard_tag("loss", learner_keys={"loss"}) == "learner/loss"
    assert tensorboard_tag("accuracy", eval_keys={"accuracy"}) == "eval/accuracy"
    assert tensorboard_tag("t_wait_s") == "time/t_wait_s"
    assert tensorboard_tag("return_mean") == "train/return_mean"


def test_eta_and_durations():
    assert eta_seconds(250, 1000, 0, 10.0) == pytest.approx(30.0)
    assert eta_seconds(600, 1000, 500, 10.0) == pytest.approx(40.0)  # rate since this start
    assert eta_seconds(0, 1000, 0, 10.0) is None and eta_seconds(5, 0, 0, 1.0) is None
    assert [format_duration(s) for s in (42, 185, 3725)] == ["42s", "3m05s", "1h02m"]
    report = ProgressReport(1000, 0, Console(file=io.StringIO()), 0.0)
    line = report.line(250, "return 9", report.started_at + 10.0)
    assert line == "env steps 250/1,000 (25%) ETA 30s  return 9"
    assert (
        ProgressReport(0, 0, Console(file=io.StringIO()), 0.0).line(5, "", 1.0) == "env steps 5  "
    )


def test_terminal_bar_shows_percent_and_eta():
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=160)
    report = ProgressReport(1000, 0, console, 0.0)
    report.update(500, {"return": 3.0})
    report.close()
    text = buffer.getvalue()
    assert "500/1000" in text and "50%" in text and "ETA" in text


def test_a_stopped_job_names_its_real_run_folder(tmp_path, monkeypatch, capsys):
    """In a Ray job (`memrl submit`) the working folder is Ray's temporary copy: a relative
    run.dir goes under the driver's home instead, and `ray job stop` (SIGTERM, handled like
    Ctrl-C) prints that folder's absolute path for --resume."""
    import sys
    from pathlib import Path

    from rollout.ray_runtime import JOB_CONFIG_ENV, PLUGIN_PATH_ENV
    from rollout.trainer import Trainer

    config = str(Path(TINY[1]).resolve())
    home, copy = tmp_path / "home", tmp_path / "ray_tmp" / "_ray_pkg_0123"
    copy.mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv(JOB_CONFIG_ENV, "{}")
    monkeypatch.setenv(PLUGIN_PATH_ENV, "")
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.chdir(copy)

    def stop(self):  # the job is stopped during its first iteration
        raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "_evaluate_if_due", stop)
    assert main([TINY[0], config, *TINY[2:]]) == 130
    err = " ".join(capsys.readouterr().err.split())
    (run,) = (home / "runs").iterdir()
    assert not (copy / "runs").exists()
    assert f"run.dir 'runs' is taken from the driver's home folder: {home / 'runs'}" in err
    assert f"Continue with: memrl train --resume {run} (on the cluster, as a job:" in err
    assert (run / "checkpoints").is_dir()
