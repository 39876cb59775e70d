"""The command line's parser: overrides (`key=value`) stand anywhere, also after an option, for
every subcommand that takes them (issue 26: the README's cluster line failed with
"unrecognized arguments"). Parser results only: nothing trains, no cluster is needed."""

from __future__ import annotations

import pytest

from rollout.cli import parse_args

CFG = "configs/dqn_cartpole.yaml"


@pytest.mark.parametrize(
    ("argv", "args", "address"),
    [
        # the README's cluster line: overrides after --address
        (
            ["train", CFG, "--address", "HEAD:6379", "rollout.num_workers=16"],
            [CFG, "rollout.num_workers=16"],
            "HEAD:6379",
        ),
        # overrides before, between and after flags keep their command-line order
        (
            ["train", "--address", "auto", CFG, "a.b=1", "--trust", "a.b=2", "c.d=3"],
            [CFG, "a.b=1", "a.b=2", "c.d=3"],
            "auto",
        ),
        (
            ["train", CFG, "a.b=1", "--address", "ray://h:10001", "a.b=2"],
            [CFG, "a.b=1", "a.b=2"],
            "ray://h:10001",
        ),
        (["train", CFG, "learner.lr=3e-4"], [CFG, "learner.lr=3e-4"], None),
    ],
)
def test_train_overrides_parse_in_any_position(argv, args, address):
    parsed = parse_args(argv)
    assert parsed.command == "train"
    assert parsed.args == args and parsed.address == address


def test_resume_overrides_after_flags():
    parsed = parse_args(
        ["train", "--resume", "runs/x", "run.total_env_steps=9", "--address", "auto", "run.seed=1"]
    )
    assert parsed.resume == "runs/x" and parsed.address == "auto"
    assert parsed.args == ["run.total_env_steps=9", "run.seed=1"]


def test_submit_overrides_parse_in_any_position():
    parsed = parse_args(
        ["submit", CFG, "--address", "http://h:8265", "a.b=1", "--gpus", "1", "c.d=2", "--no-wait"]
    )
    assert parsed.args == [CFG, "a.b=1", "c.d=2"]
    assert parsed.address == "http://h:8265" and parsed.gpus == 1.0 and parsed.no_wait


@pytest.mark.parametrize(
    "argv",
    [
        ["train", CFG, "--address", "auto", "--fast"],  # an unknown flag is still refused
        ["train", CFG, "--fast", "a.b=1"],
        ["evaluate", "runs/x", "a.b=1"],  # evaluate takes no overrides
        ["plot", "runs/x", "--metric", "loss", "extra=1"],
    ],
)
def test_unknown_words_are_still_refused(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        parse_args(argv)
    assert exc.value.code == 2
    assert "unrecognized arguments" in capsys.readouterr().err
