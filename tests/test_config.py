"""Configs: every file in configs/ loads; bad input is one clear message and exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from agents.learner import make_optimizer
from rollout.cli import main
from rollout.config import ConfigError, build_config, config_to_dict, dump_config, load_config

CONFIGS = sorted(Path(__file__).resolve().parents[1].joinpath("configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_config_loads_and_round_trips(path):
    cfg = load_config(path)
    again = build_config(config_to_dict(cfg))
    assert again == cfg
    assert dump_config(again) == dump_config(cfg)


def test_overrides_are_typed(tmp_path):
    cfg = load_config(
        "configs/dqn_cartpole.yaml",
        [
            "learner.lr=3e-4",
            "rollout.num_workers=2",
            "agent.hidden=[32, 16]",
            "run.stop_return=null",
        ],
    )
    assert cfg.learner.lr == pytest.approx(3e-4)
    assert cfg.rollout.num_workers == 2
    assert cfg.agent.hidden == [32, 16]
    assert cfg.run.stop_return is None
    # int for a float field is accepted and converted
    assert load_config("configs/dqn_cartpole.yaml", ["learner.lr=1"]).learner.lr == 1.0


def write(tmp_path, text: str) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    return path


def test_unknown_key_names_file_key_suggestion_and_valid_keys(tmp_path):
    path = write(tmp_path, "agent: {name: dqn}\nlearner: {lrr: 0.1}\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    msg = str(err.value)
    assert str(path) in msg and "learner.lrr" in msg and "Did you mean 'lr'" in msg
    assert "Valid keys in 'learner'" in msg and "grad_clip" in msg


def test_unknown_agent_key_lists_agent_fields(tmp_path):
    path = write(tmp_path, "agent: {name: dqn, n_steps: 3}\n")
    with pytest.raises(ConfigError, match=r"agent\.n_steps.*Did you mean 'n_step'"):
        load_config(path)


def test_wrong_type(tmp_path):
    path = write(tmp_path, "agent: {name: dqn}\nrollout: {num_workers: two}\n")
    with pytest.raises(ConfigError, match=r"'rollout.num_workers' must be int, got 'two'"):
        load_config(path)
    path = write(tmp_path, "agent: {name: dqn}\nrollout: {overlap: 1}\n")
    with pytest.raises(ConfigError, match=r"'rollout.overlap' must be bool"):
        load_config(path)


def test_bad_choice_lists_choices(tmp_path):
    path = write(tmp_path, "agent: {name: dqn}\nlearner: {optimizer: adamw}\n")
    with pytest.raises(ConfigError, match=r"one of 'adam', 'rmsprop', 'sgd'.*Did you mean 'adam'"):
        load_config(path)


def test_unknown_agent_and_section(tmp_path):
    with pytest.raises(
        ConfigError,
        match=r"unknown agent 'dqm'.*Did you mean 'dqn'.*Valid agents: dqn, lstm, memn2n, ntm, program_generator, reinforce",
    ):
        load_config(write(tmp_path, "agent: {name: dqm}\n"))
    with pytest.raises(ConfigError, match=r"unknown section 'runn'.*Did you mean 'run'"):
        load_config(write(tmp_path, "agent: {name: dqn}\nrunn: {}\n"))
    with pytest.raises(ConfigError, match=r"'agent.name' is missing"):
        load_config(write(tmp_path, "env: {id: CartPole-v1}\n"))


def test_value_ranges_are_checked(tmp_path):
    with pytest.raises(ConfigError, match=r"n_step must be >= 1"):
        load_config("configs/dqn_cartpole.yaml", ["agent.n_step=0"])
    with pytest.raises(ConfigError, match=r"'learner.lr' must be > 0"):
        load_config("configs/dqn_cartpole.yaml", ["learner.lr=-1"])
    with pytest.raises(ConfigError, match=r"'learner.lr_schedule: cosine' needs 'learner.lr_dec"):
        load_config("configs/ntm_copy.yaml", ["learner.lr_schedule=cosine"])
    with pytest.raises(ConfigError, match=r"'learner.lr_end_ratio' must be in \[0, 1\]"):
        load_config("configs/ntm_copy.yaml", ["learner.lr_end_ratio=2"])
    for beta2 in ("0", "1"):
        with pytest.raises(ConfigError, match=r"'learner.beta2' must be in \(0, 1\)"):
            load_config("configs/ntm_copy.yaml", [f"learner.beta2={beta2}"])


def test_adam_takes_beta2_from_the_config():
    cfg = load_config("configs/ntm_copy.yaml", ["learner.beta2=0.99"]).learner
    weight = torch.nn.Parameter(torch.zeros(3))
    assert make_optimizer([weight], cfg).param_groups[0]["betas"] == (0.9, 0.99)
    default = load_config("configs/ntm_copy.yaml").learner
    assert make_optimizer([weight], default).param_groups[0]["betas"] == (0.9, 0.999)


def test_missing_file_suggests_neighbour():
    with pytest.raises(ConfigError, match=r"does not exist.*Did you mean 'dqn_cartpole.yaml'"):
        load_config("configs/dqn_cartpol.yaml")


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["train", "configs/nope.yaml"], "does not exist"),
        (["train", "configs/dqn_cartpole.yaml", "learner.lrr=1"], "Did you mean 'lr'"),
        (["train", "configs/dqn_cartpole.yaml", "rollout.num_workers=x"], "must be int"),
        (["train", "configs/dqn_cartpole.yaml", "learner.lr"], "bad override 'learner.lr'"),
        (["train", "configs/dqn_cartpole.yaml", "=3"], "bad override"),
        (["train", "configs/dqn_cartpole.yaml", "agent.name=ppo"], "unknown agent 'ppo'"),
        (
            ["train", "configs/dqn_cartpole.yaml", "env.id=CartPol-v1"],
            "Closest known ids: CartPole-v1",
        ),
        (
            ["train", "configs/dqn_cartpole.yaml", "env.id=tests.fakes:NotAnEnv"],
            "not a gymnasium.Env",
        ),
        (
            ["train", "configs/dqn_cartpole.yaml", "env.id=tests.fakes:BitMatch"],
            "needs a Discrete action space",
        ),
        (
            ["train", "configs/dqn_cartpole.yaml", "env.id=tests.fakes:ImageObs"],
            "do not fit the Nature CNN",
        ),
        (["train", "configs/dqn_cartpole.yaml", "learner.device=cuda"], "no CUDA GPU"),
        (["train", "configs/ntm_copy.yaml", "learner.cuda_graphs=on"], "the learner runs on cpu"),
        (
            ["train", "configs/ntm_copy.yaml", "learner.cuda_graphs=on", "learner.optimizer=sgd"],
            "needs 'learner.optimizer: adam'",
        ),
        (["train", "configs/ntm_copy.yaml", "env.kwargs={max_len: 200}"], "needs 200 memory rows"),
        (["train", "configs/ntm_copy.yaml", "env.kwargs={bits: 0}"], "bits=0 is invalid"),
        (
            ["train", "configs/ntm_copy.yaml", "env.id=CartPole-v1", "env.kwargs={}"],
            "'CartPole-v1' has neither a sampler",
        ),
        (
            ["train", "configs/lstm_copy.yaml", "env.id=tests.fakes:BitMatch", "env.kwargs={}"],
            "has neither a sampler",
        ),
        (["train", "learner.lr=1"], "give a config file first"),
        (["train", "--resume", "/nonexistent/run"], "not a memrl run directory"),
    ],
)
def test_cli_bad_input_exits_2_with_one_message(argv, expected, capsys):
    if "cuda" in " ".join(argv):
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has a GPU")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "memrl: error:" in err and expected in " ".join(err.split())
    assert "Traceback" not in err
