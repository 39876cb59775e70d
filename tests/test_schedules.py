"""Learning-rate schedules that follow milestones (piecewise) and evaluations (plateau): their
values, how the learner applies them, their checks, and that a resumed learner continues them."""

from __future__ import annotations

import dataclasses
import io
import types

import pytest
import torch

from agents import AgentError
from agents.learner import Learner, LearnerConfig, PlateauSchedule, scheduled_lr
from rollout.config import ConfigError, load_config


class Line(torch.nn.Module):
    """The smallest agent a Learner drives: a loss on one weight, no hooks."""

    graphable = False

    def __init__(self) -> None:
        super().__init__()
        self.cfg = types.SimpleNamespace(name="line")
        self.w = torch.nn.Parameter(torch.ones(2))

    def loss(self, batch):
        loss = ((self.w * torch.as_tensor(batch["x"])) ** 2).sum()
        return loss, {}

    def on_update(self, updates: int) -> None:
        pass


BATCH = {"x": torch.ones(2).numpy()}


def piecewise(**kwargs) -> LearnerConfig:
    base = dict(lr=1.0, lr_schedule="piecewise", lr_milestones=[3, 5], lr_decay_factor=0.5)
    return LearnerConfig(**{**base, **kwargs})


def test_piecewise_in_updates_drops_once_each_milestone_is_passed():
    cfg = piecewise()
    assert [scheduled_lr(cfg, u) for u in range(7)] == [1, 1, 1, 0.5, 0.5, 0.25, 0.25]
    floored = piecewise(lr_min=0.4)
    assert [scheduled_lr(floored, u) for u in (0, 3, 5, 100)] == [1, 0.5, 0.4, 0.4]


def test_piecewise_in_epochs_follows_set_progress():
    """MemN2N's halving every 15 epochs: the lr of epoch 16 (15 complete) is half."""
    cfg = piecewise(lr_milestones=[15, 30, 45], lr_milestone_unit="epochs", device="cpu")
    assert [scheduled_lr(cfg, 10**6, e) for e in (0, 14, 15, 29, 30, 45, 99)] == [
        1,
        1,
        0.5,
        0.5,
        0.25,
        0.125,
        0.125,
    ]
    learner = Learner(Line(), cfg)
    with pytest.raises(AgentError, match="lr_milestone_unit: epochs' needs the epoch count"):
        learner.update(BATCH)
    learner.set_progress(epochs=15)
    assert learner.update(BATCH)["lr"] == 0.5
    assert learner.optimizer.param_groups[0]["lr"] == 0.5
    for bad in (-1, 1.5, True):
        with pytest.raises(AgentError, match="epochs must be an int >= 0"):
            learner.set_progress(epochs=bad)


def test_learner_applies_the_piecewise_lr_from_its_update_count():
    learner = Learner(Line(), piecewise(device="cpu", optimizer="sgd"))
    lrs = [learner.update(BATCH)["lr"] for _ in range(6)]
    assert lrs == [1, 1, 1, 0.5, 0.5, 0.25]
    # a learner resumed from the state continues the schedule where it was
    resumed = Learner(Line(), piecewise(device="cpu", optimizer="sgd"))
    resumed.load_state_dict(learner.state_dict())
    assert resumed.update(BATCH)["lr"] == learner.update(BATCH)["lr"] == 0.25


def plateau_cfg(**kwargs) -> LearnerConfig:
    base = dict(lr=1.0, lr_schedule="plateau", lr_patience=2, lr_decay_factor=0.5, lr_min=0.2)
    return LearnerConfig(**{**base, **kwargs}, device="cpu")


def test_plateau_drops_after_patience_evaluations_without_a_new_best_and_stops_at_lr_min():
    schedule = PlateauSchedule(plateau_cfg())
    # 1 best, 2 and 3 better, then 3 twice without improving (ties do not improve): a drop
    assert [schedule.step(v) for v in (1, 2, 3, 3, 2.5)] == [1, 1, 1, 1, 0.5]
    assert (schedule.best, schedule.bad, schedule.drops) == (3, 0, 1)
    # a new best resets the count: two more bad ones needed for the next drop
    assert [schedule.step(v) for v in (4, 1, 1)] == [0.5, 0.5, 0.25]
    # 0.125 would be below lr_min 0.2: lr holds at the floor, and no drop is counted past it
    assert [schedule.step(v) for v in (1, 1, 1, 1, 1, 1)] == [0.25, 0.2, 0.2, 0.2, 0.2, 0.2]
    assert schedule.drops == 3


def test_plateau_lower_is_better_and_nan_never_improves():
    schedule = PlateauSchedule(plateau_cfg(lr_patience=1))
    assert schedule.step(float("nan"), higher_is_better=False) == 0.5  # no best yet: bad
    assert schedule.step(0.3, higher_is_better=False) == 0.5
    assert schedule.step(0.2, higher_is_better=False) == 0.5  # lower error: improved
    assert schedule.step(float("nan"), higher_is_better=False) == 0.25
    with pytest.raises(AgentError, match="one plateau schedule follows one figure"):
        schedule.step(1.0, higher_is_better=True)


def test_learner_on_evaluation_drives_the_plateau_and_its_state_round_trips():
    learner = Learner(Line(), plateau_cfg(optimizer="sgd"))
    assert learner.update(BATCH)["lr"] == 1.0
    assert [learner.on_evaluation(v) for v in (5.0, 4.0, 4.0)] == [1.0, 1.0, 0.5]
    assert learner.update(BATCH)["lr"] == 0.5
    assert learner.optimizer.param_groups[0]["lr"] == 0.5
    learner.on_evaluation(1.0)  # one bad evaluation counted toward the next drop
    state = learner.state_dict()

    resumed = Learner(Line(), plateau_cfg(optimizer="sgd"))
    resumed.load_state_dict(state)
    assert resumed.plateau.state_dict() == learner.plateau.state_dict()
    assert resumed.plateau.state_dict() == {
        "best": 5.0,
        "higher_is_better": True,
        "bad": 1,
        "drops": 1,
    }
    assert resumed.update(BATCH)["lr"] == 0.5
    assert resumed.on_evaluation(1.0) == learner.on_evaluation(1.0) == 0.25
    # the saved state is plain numbers: it passes torch.load(weights_only=True)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=True)
    assert loaded["schedule"]["plateau"]["best"] == 5.0


def test_a_state_without_schedule_state_loads_and_other_schedules_ignore_evaluations():
    constant = Learner(Line(), LearnerConfig(lr=0.1, device="cpu"))
    constant.update(BATCH)
    old = constant.state_dict()
    del old["schedule"]  # as saved before the schedules had state
    fresh = Learner(Line(), plateau_cfg())
    fresh.load_state_dict(old)
    assert fresh.updates == 1 and fresh.plateau.best is None
    assert constant.on_evaluation(1.0) == constant.on_evaluation(0.0) == 0.1


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["learner.lr_schedule=piecewise"],
            r"'learner.lr_schedule: piecewise' needs 'learner.lr_mi",
        ),
        (
            ["learner.lr_schedule=piecewise", "learner.lr_milestones=[5, 5]"],
            r"'learner.lr_milestones' must be increasing counts >= 1, got \[5, 5\]",
        ),
        (
            ["learner.lr_schedule=piecewise", "learner.lr_milestones=[0, 5]"],
            r"'learner.lr_milestones' must be increasing",
        ),
        (["learner.lr_milestones=[5]"], r"'learner.lr_milestones' is set but 'learner.lr_sch"),
        (["learner.lr_decay_factor=1"], r"'learner.lr_decay_factor' must be in \(0, 1\)"),
        (["learner.lr_decay_factor=0"], r"'learner.lr_decay_factor' must be in \(0, 1\)"),
        (["learner.lr_patience=0"], r"'learner.lr_patience' must be >= 1"),
        (["learner.lr_min=-1"], r"'learner.lr_min' must be in \[0, 'learner.lr'"),
        (["learner.lr=0.01", "learner.lr_min=0.01"], r"'learner.lr_min' must be in \[0, "),
        (
            ["learner.lr_milestone_unit=epoch"],
            r"'learner.lr_milestone_unit' must be one of 'updates', 'epochs'.*Did you mean 'epochs'",
        ),
        (["learner.lr_schedule=step"], r"'learner.lr_schedule' must be one of 'constant', 'cos"),
        (
            ["learner.cuda_graphs=on", "learner.lr_schedule=plateau"],
            r"'learner.cuda_graphs: on' needs .* a constant lr",
        ),
    ],
)
def test_new_schedule_keys_are_checked(overrides, message):
    with pytest.raises(ConfigError, match=r"configs/ntm_copy.yaml: " + message):
        load_config("configs/ntm_copy.yaml", overrides)


def test_valid_schedules_load_and_a_bad_config_built_in_python_is_refused():
    cfg = load_config(
        "configs/ntm_copy.yaml",
        [
            "learner.lr_schedule=piecewise",
            "learner.lr_milestones=[15, 30, 45]",
            "learner.lr_milestone_unit=epochs",
        ],
    ).learner
    assert (cfg.lr_milestones, cfg.lr_milestone_unit, cfg.lr_decay_factor) == (
        [15, 30, 45],
        "epochs",
        0.5,
    )
    plateau = load_config(
        "configs/ntm_copy.yaml", ["learner.lr_schedule=plateau", "learner.lr_min=1e-5"]
    ).learner
    assert (plateau.lr_patience, plateau.lr_min) == (10, 1e-5)
    with pytest.raises(AgentError, match="'learner.lr_decay_factor' must be in"):
        Learner(Line(), dataclasses.replace(plateau, lr_decay_factor=2.0, device="cpu"))


def test_learner_config_lives_beside_the_learner():
    from rollout import config

    assert config.LearnerConfig is LearnerConfig
    assert config.SECTIONS["learner"] is LearnerConfig


def test_cuda_graphs_fall_back_for_every_schedule_but_constant():
    """A captured update replays the lr it was captured with, so a scheduled lr needs ordinary
    updates: 'auto' falls back, 'on' is refused (the config check above says so at load time)."""
    from agents.learner import use_cuda_graphs

    graphable = Line()
    graphable.graphable = True
    cuda = torch.device("cuda")  # only compared, never used: no GPU needed
    assert use_cuda_graphs(LearnerConfig(), cuda, graphable)
    for cfg in (piecewise(), plateau_cfg()):
        assert not use_cuda_graphs(dataclasses.replace(cfg, cuda_graphs="auto"), cuda, graphable)
        with pytest.raises(AgentError, match="constant lr"):
            use_cuda_graphs(dataclasses.replace(cfg, cuda_graphs="on"), cuda, graphable)


def test_the_trainer_drives_the_plateau_schedule_with_its_evaluations(tmp_path):
    """End to end: each evaluation's score reaches Learner.on_evaluation, and the lr the learner
    ends with is the one the logged scores give."""
    from rollout.config import dump_config
    from rollout.run_dir import RunDir, read_metrics
    from rollout.trainer import Trainer

    torch.set_num_threads(1)
    cfg = load_config(
        "configs/reinforce_cartpole.yaml",
        [
            "rollout.num_workers=0",
            "rollout.envs_per_worker=2",
            "rollout.steps_per_sample=100",
            "agent.hidden=[8]",
            "learner.lr_schedule=plateau",
            "learner.lr_patience=1",
            "learner.lr_min=0.0005",
            "run.total_env_steps=1000",
            "run.eval_every_steps=100",
            "run.eval_episodes=2",
            "run.stop_return=null",
            f"run.dir={tmp_path}",
        ],
    )
    run = RunDir.create(tmp_path, "plateau", dump_config(cfg))
    trainer = Trainer(cfg, run)
    trainer.train()
    scores = [
        row["eval_return_mean"] for row in read_metrics(run.metrics) if "eval_return_mean" in row
    ]
    assert len(scores) >= 5
    replayed = PlateauSchedule(cfg.learner)
    for score in scores:
        replayed.step(score)
    assert replayed.drops >= 1  # some evaluation did not improve on the best before it
    assert trainer.learner.plateau.state_dict() == replayed.state_dict()
    assert trainer.learner.lr == replayed.lr < cfg.learner.lr


def test_solved_drops_at_every_evaluation_at_the_score_and_needs_its_score() -> None:
    cfg = plateau_cfg(lr_schedule="solved", lr_solved_score=-0.1, lr_min=0.1)
    schedule = PlateauSchedule(cfg)
    # still learning (below the score, however long): lr holds; at or above it: one drop each
    figures = (-30.0, -5.0, -5.0, -5.0, -0.1, -2.0, 0.0, float("nan"), 0.0, 0.0)
    assert [schedule.step(v) for v in figures] == [1, 1, 1, 1, 0.5, 0.5, 0.25, 0.25, 0.125, 0.1]
    assert schedule.drops == 4  # 0.125 -> 0.1 is the last: no drop counted past lr_min
    lower = PlateauSchedule(cfg.__class__(**{**vars(cfg), "lr_solved_score": 0.05}))
    assert [lower.step(v, higher_is_better=False) for v in (0.2, 0.05, 0.01)] == [1, 0.5, 0.25]
    with pytest.raises(AgentError, match="lr_solved_score"):
        Learner(Line(), LearnerConfig(lr_schedule="solved", device="cpu"))
    with pytest.raises(AgentError, match="the schedule is 'constant'"):
        Learner(Line(), LearnerConfig(lr_solved_score=0.0, device="cpu"))
    learner = Learner(
        Line(), plateau_cfg(optimizer="sgd", **{"lr_schedule": "solved", "lr_solved_score": 1.0})
    )
    assert [learner.on_evaluation(v) for v in (0.0, 1.0)] == [1.0, 0.5]
    assert learner.update(BATCH)["lr"] == 0.5
