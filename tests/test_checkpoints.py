"""Checkpoints are atomic, bounded in number, and survive a failed write."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from rollout import checkpoints as ck


def test_save_keep_last_k_and_load(tmp_path):
    for step in (10, 20, 30, 40):
        ck.save_checkpoint(tmp_path, step, {"step": step, "w": torch.ones(2) * step}, keep=2)
    assert [p.name for p in ck.complete_checkpoints(tmp_path)] == ["000000000030", "000000000040"]
    state = ck.load_checkpoint(ck.latest_checkpoint(tmp_path))
    assert state["step"] == 40 and torch.equal(state["w"], torch.full((2,), 40.0))


def test_incomplete_checkpoint_is_ignored(tmp_path):
    ck.save_checkpoint(tmp_path, 10, {"step": 10})
    broken = tmp_path / "000000000020"
    broken.mkdir()
    (broken / "state.pt").write_bytes(b"torn")
    assert ck.latest_checkpoint(tmp_path).name == "000000000010"
    with pytest.raises(ck.CheckpointError, match="incomplete"):
        ck.load_checkpoint(broken)


def test_failed_write_leaves_previous_checkpoint_intact(tmp_path, monkeypatch):
    ck.save_checkpoint(tmp_path, 10, {"step": 10})

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ck.torch, "save", disk_full)
    with pytest.raises(OSError, match="No space left"):
        ck.save_checkpoint(tmp_path, 20, {"step": 20}, keep=1)
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["000000000010"]  # no temp folder left behind
    assert ck.load_checkpoint(ck.latest_checkpoint(tmp_path))["step"] == 10


def test_rng_state_round_trips_through_weights_only_load(tmp_path):
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    ck.save_checkpoint(tmp_path, 1, {"rng": ck.rng_state()})
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    random.seed(2), np.random.seed(2), torch.manual_seed(2)
    ck.set_rng_state(ck.load_checkpoint(ck.latest_checkpoint(tmp_path))["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


def test_resumed_optimiser_keeps_its_own_hyperparameters_and_takes_the_saved_moments():
    """`memrl train --resume RUN learner.lr=...`: the override wins over the checkpoint's lr."""
    from types import SimpleNamespace

    from agents.learner import load_optimizer_state, make_optimizer

    def optimiser(lr: float, beta2: float) -> tuple[torch.nn.Parameter, torch.optim.Optimizer]:
        weight = torch.nn.Parameter(torch.arange(3.0))
        cfg = SimpleNamespace(optimizer="adam", lr=lr, beta2=beta2, eps=1e-8, weight_decay=0.0)
        return weight, make_optimizer([weight], cfg)

    saved_weight, saved = optimiser(1e-3, 0.999)
    (saved_weight**2).sum().backward()
    saved.step()
    resumed_weight, resumed = optimiser(5e-4, 0.99)
    load_optimizer_state(resumed, saved.state_dict())
    group = resumed.param_groups[0]
    assert group["lr"] == 5e-4 and group["betas"] == (0.9, 0.99) and group["fused"]
    moments, saved_moments = resumed.state[resumed_weight], saved.state[saved_weight]
    assert torch.equal(moments["exp_avg"], saved_moments["exp_avg"])
    assert torch.equal(moments["exp_avg_sq"], saved_moments["exp_avg_sq"])
    assert float(moments["step"]) == 1.0
    assert moments["exp_avg"].data_ptr() != saved_moments["exp_avg"].data_ptr()  # a copy


def test_amsgrad_bounds_the_step_after_a_quiet_stretch():
    """learner.amsgrad: after many tiny gradients (a converged model), Adam's squared-gradient
    average has shrunk, so one ordinary gradient moves a weight by more than lr (2.5 lr here);
    AMSGrad divides by the largest average so far and keeps the step below lr (0.32 lr)."""
    from types import SimpleNamespace

    from agents.learner import make_optimizer

    def final_step(amsgrad: bool) -> float:
        weight = torch.nn.Parameter(torch.zeros(1))
        cfg = SimpleNamespace(
            optimizer="adam", lr=1e-3, beta2=0.999, eps=1e-8, weight_decay=0.0, amsgrad=amsgrad
        )
        opt = make_optimizer([weight], cfg)
        for grad in [1.0] * 100 + [1e-4] * 5000:  # learning, then a long converged stretch
            weight.grad = torch.tensor([grad])
            opt.step()
        before = weight.detach().clone()
        weight.grad = torch.tensor([1.0])
        opt.step()
        assert opt.param_groups[0]["amsgrad"] == amsgrad
        return float((weight.detach() - before).abs())

    plain, bounded = final_step(False), final_step(True)
    assert bounded < 5e-4 < 1e-3 < plain and plain > 5 * bounded
