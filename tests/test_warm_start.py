"""Warm start (`run.init_from`): a finished run's weights, and only its weights, start a run whose
loss differs; where the weights are found; and the errors for sources that cannot be used."""

from __future__ import annotations

import shutil

import gymnasium as gym
import numpy as np
import pytest
import torch

from rollout.checkpoints import latest_checkpoint, load_checkpoint
from rollout.cli import main
from rollout.config import dump_config, load_config
from rollout.run_dir import RunDir
from rollout.trainer import Trainer
from rollout.warm_start import WarmStartError, find_weights, warm_start

TINY = [
    "rollout.num_workers=0",
    "rollout.envs_per_worker=2",
    "rollout.steps_per_sample=200",
    "run.eval_episodes=2",
    "run.stop_return=null",
    "agent.hidden=[16]",
]


def reinforce(tmp_path, *overrides: str):
    return load_config(
        "configs/reinforce_cartpole.yaml", [*TINY, f"run.dir={tmp_path}", *overrides]
    )


@pytest.fixture(scope="module")
def source_run(tmp_path_factory):
    """A finished REINFORCE CartPole run (in-process): numbered checkpoints and a best one."""
    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("source")
    cfg = reinforce(
        tmp,
        "run.total_env_steps=800",
        "run.eval_every_steps=400",
        "run.checkpoint_every_steps=400",
    )
    run = RunDir.create(tmp, "source", dump_config(cfg))
    Trainer(cfg, run).train()
    return run


def new_trainer(tmp_path, init_from, *overrides: str) -> Trainer:
    cfg = reinforce(tmp_path, "run.total_env_steps=400", f"run.init_from={init_from}", *overrides)
    return Trainer(cfg, RunDir.create(tmp_path, "target", dump_config(cfg)))


def episode_batch(steps: int = 6, width: int = 3) -> dict[str, np.ndarray]:
    """A padded batch of episodes as the workers send them ([T, B] time-major)."""
    rng = np.random.default_rng(0)
    mask = np.ones((steps, width), np.float32)
    mask[4:, 1] = 0.0
    return {
        "obs": rng.normal(size=(steps, width, 4)).astype(np.float32),
        "actions": rng.integers(0, 2, (steps, width)),
        "rewards": np.ones((steps, width), np.float32),
        "mask": mask,
    }


def test_a_run_starts_from_the_best_weights_of_a_finished_run_with_another_loss(
    source_run, tmp_path, capsys
):
    best = load_checkpoint(source_run.checkpoints / "best")["best"]["agent"]
    # no learned baseline (no value loss, no value net) and 5x the entropy bonus: another loss
    trainer = new_trainer(
        tmp_path, source_run.path, "agent.baseline=false", "agent.entropy_coef=0.05"
    )
    agent = trainer.agent
    policy = {k: v for k, v in agent.state_dict().items()}
    assert set(policy) == {k for k in best if k.startswith("policy.")}
    for key, value in policy.items():
        assert torch.equal(value, best[key]), key
    # weights only: a fresh optimiser and counters
    assert trainer.learner.updates == 0 and not trainer.learner.optimizer.state
    assert (trainer.env_steps, trainer.episodes, trainer.iterations) == (0, 0, 0)
    assert trainer.best_eval is None
    out = capsys.readouterr()
    summary = out.out + out.err
    assert "warm start: 4 tensors" in summary and "checkpoints/best/state.pt" in summary
    assert "ignored (not in this agent): value.0.weight" in summary

    # the same policy, another loss: the source config's agent with the same weights differs
    source_agent = Trainer(
        load_config(str(source_run.config), [f"run.dir={tmp_path}"]),
        RunDir.create(tmp_path, "probe", dump_config(trainer.cfg)),
    ).agent
    source_agent.load_state_dict(best)
    batch = {k: torch.as_tensor(v) for k, v in episode_batch().items()}
    with torch.no_grad():
        assert torch.equal(agent.policy(batch["obs"]), source_agent.policy(batch["obs"]))
        assert not torch.isclose(agent.loss(batch)[0], source_agent.loss(batch)[0])

    summary = trainer.train()  # and it trains on from there
    assert summary["env_steps"] >= 400 and trainer.learner.updates >= 1
    assert not torch.equal(agent.state_dict()["policy.0.weight"], best["policy.0.weight"])


def test_the_sources_init_from_accepts(source_run, tmp_path):
    newest = latest_checkpoint(source_run.checkpoints)
    assert find_weights(source_run.path) == source_run.checkpoints / "best" / "state.pt"
    assert find_weights(source_run.checkpoints) == source_run.checkpoints / "best" / "state.pt"
    assert find_weights(newest) == newest / "state.pt"
    assert find_weights(newest / "state.pt") == newest / "state.pt"

    # a run without a best checkpoint: its newest complete one
    copy = tmp_path / "copy"
    shutil.copytree(source_run.path, copy)
    shutil.rmtree(copy / "checkpoints" / "best")
    assert find_weights(copy) == copy / "checkpoints" / newest.name / "state.pt"

    trainer = new_trainer(tmp_path, newest / "state.pt")
    saved = load_checkpoint(newest)["learner"]["agent"]
    own = trainer.agent.state_dict()
    assert set(own) == set(saved)  # a numbered checkpoint has every tensor, the value net too
    assert all(torch.equal(own[k], saved[k]) for k in own)
    assert trainer.learner.updates == 0 and not trainer.learner.optimizer.state


def test_new_weights_stay_fresh_and_shapes_must_match(source_run, tmp_path, capsys):
    no_baseline = tmp_path / "no_baseline"
    cfg = reinforce(no_baseline, "agent.baseline=false", "run.total_env_steps=200")
    run = RunDir.create(no_baseline, "nobase", dump_config(cfg))
    trainer = Trainer(cfg, run)
    trainer.save()
    with_value = new_trainer(tmp_path, run.path).agent  # has a value net the source lacks
    assert "kept fresh (not in the checkpoint): value.0.weight" in capsys.readouterr().err
    fresh = Trainer(reinforce(tmp_path, "run.total_env_steps=400"), run).agent
    assert torch.equal(
        with_value.state_dict()["value.0.weight"], fresh.state_dict()["value.0.weight"]
    )

    with pytest.raises(WarmStartError) as error:
        new_trainer(tmp_path, source_run.path, "agent.hidden=[8]")
    message = str(error.value)
    assert "'policy.0.weight': checkpoint [16, 4], agent [8, 4]" in message
    assert "architecture" in message


def test_unusable_sources_are_clear_errors(source_run, tmp_path):
    cases = {
        tmp_path / "missing": "does not exist",
        tmp_path: "neither a state.pt nor a run's config.yaml",
    }
    empty_run = RunDir.create(tmp_path, "empty", dump_config(reinforce(tmp_path)))
    cases[empty_run.path] = "has no complete checkpoint"
    torn = tmp_path / "torn"
    shutil.copytree(latest_checkpoint(source_run.checkpoints), torn)
    (torn / "COMPLETE").unlink()
    cases[torn] = "incomplete checkpoint"
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    cases[garbage] = "cannot read .*garbage.pt.* as a memrl checkpoint"
    other = tmp_path / "other.pt"
    torch.save({"model": {"w": torch.zeros(2)}}, other)
    cases[other] = "holds no agent weights .*this one has: model"
    unrelated = tmp_path / "unrelated.pt"
    torch.save({"learner": {"agent": {"w": torch.zeros(2)}}}, unrelated)
    cases[unrelated] = "no weight in .* matches this run's agent by name"
    agent = new_trainer(tmp_path, source_run.path).agent
    for source, message in cases.items():
        with pytest.raises(WarmStartError, match=message):
            warm_start(agent, source)


def test_resume_ignores_init_from(source_run, tmp_path):
    """--resume continues its own run: its weights come from its checkpoint, and init_from is not
    even looked at (here it names a folder that no longer exists)."""
    gone = tmp_path / "gone"
    shutil.copytree(source_run.path, gone)
    trainer = new_trainer(tmp_path, gone)
    trainer.learner.update(episode_batch())
    trainer.save()
    shutil.rmtree(gone)
    resumed = Trainer(trainer.cfg, trainer.run_dir, resume=True)
    own = trainer.agent.state_dict()
    assert all(torch.equal(v, own[k]) for k, v in resumed.agent.state_dict().items())
    assert resumed.learner.updates == 1


def test_memrl_train_init_from_end_to_end(source_run, tmp_path, capsys):
    """Through the command line: a warm-started run trains; an unfit source is refused (exit 2)
    before a run folder is made."""
    args = ["train", "configs/reinforce_cartpole.yaml", *TINY, f"run.dir={tmp_path}"]
    args += ["run.total_env_steps=200", "run.eval_every_steps=0"]
    assert main([*args, f"run.init_from={source_run.path}", "agent.entropy_coef=0.0"]) == 0
    assert "warm start: 8 tensors" in capsys.readouterr().err
    (made,) = tmp_path.iterdir()
    assert main([*args, f"run.init_from={source_run.path}", "agent.hidden=[8]"]) == 2
    err = capsys.readouterr().err
    assert "'policy.0.weight': checkpoint [16, 4], agent [8, 4]" in err
    assert "Traceback" not in err and list(tmp_path.iterdir()) == [made]


def test_a_dqn_from_a_best_checkpoint_keeps_its_fresh_target_net(tmp_path):
    """A best checkpoint holds the acting weights only (no target net): warm start says so."""
    from agents import make_agent
    from rollout.periodic_evaluation import save_best_checkpoint

    cfg = load_config("configs/dqn_cartpole.yaml").agent
    spaces = gym.make("CartPole-v1")
    torch.manual_seed(1)
    source = make_agent(cfg, spaces.observation_space, spaces.action_space)
    save_best_checkpoint(tmp_path, source.acting_state_dict(), 9.0, 100)
    torch.manual_seed(2)
    agent = make_agent(cfg, spaces.observation_space, spaces.action_space)
    target_before = {k: v.clone() for k, v in agent.target.state_dict().items()}
    summary = warm_start(agent, tmp_path / "best")
    assert "kept fresh (not in the checkpoint): target." in summary
    assert "best evaluation: return 9 at env step 100" in summary
    for key, value in source.online.state_dict().items():
        assert torch.equal(agent.online.state_dict()[key], value)
    for key, value in agent.target.state_dict().items():
        assert torch.equal(value, target_before[key])
