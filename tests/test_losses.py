"""REINFORCE and DQN losses on hand-made batches; the learner's guard and clipping."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from agents import Learner, NonFiniteLossError, dqn, make_agent, reinforce
from agents.reinforce import discounted_returns, reinforce_loss
from rollout.config import LearnerConfig


def test_discounted_returns_hand_computed_with_padding():
    rewards = torch.tensor([[1.0, 1.0], [2.0, 5.0], [3.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0], [1.0, 1.0], [1.0, 0.0]])
    got = discounted_returns(rewards, mask, gamma=0.5)
    expected = torch.tensor([[1 + 0.5 * 2 + 0.25 * 3, 1 + 0.5 * 5], [2 + 0.5 * 3, 5.0], [3.0, 0.0]])
    torch.testing.assert_close(got, expected)


def test_reinforce_loss_values_and_gradients():
    log_probs = torch.tensor([[-1.0, -2.0]], requires_grad=True)
    returns = torch.tensor([[3.0, 1.0]])
    baseline = torch.tensor([[1.0, 2.0]], requires_grad=True)
    mask = torch.ones(1, 2)
    entropy = torch.tensor([[0.5, 1.5]])
    loss, m = reinforce_loss(
        log_probs, returns, mask, baseline, entropy, value_coef=0.5, entropy_coef=0.1
    )
    # advantages (2, -1): policy = -mean(-1*2, -2*-1) = 0; value = mean(4, 1) = 2.5; entropy 1.0
    assert m["policy_loss"] == pytest.approx(0.0)
    assert m["value_loss"] == pytest.approx(2.5)
    assert float(loss) == pytest.approx(0.5 * 2.5 - 0.1 * 1.0)
    loss.backward()
    # d/dlogp = -A/2: raise the log-prob of the better-than-baseline action
    torch.testing.assert_close(log_probs.grad, torch.tensor([[-1.0, 0.5]]))
    # the baseline learns only from its regression: d/db = value_coef * (b - G)
    torch.testing.assert_close(baseline.grad, torch.tensor([[-1.0, 0.5]]))


def test_reinforce_loss_ignores_padding():
    lp = torch.tensor([[-1.0], [-50.0]])
    full, _ = reinforce_loss(lp, torch.tensor([[1.0], [99.0]]), torch.tensor([[1.0], [0.0]]))
    assert float(full) == pytest.approx(1.0)


def test_policy_head_multibinary_learns_bits():
    torch.manual_seed(0)
    space_o = gym.spaces.Box(0, 1, (4,), np.float32)
    agent = make_agent(
        reinforce.Config(hidden=[32], entropy_coef=0.0), space_o, gym.spaces.MultiBinary(4)
    )
    learner = Learner(agent, LearnerConfig(lr=0.01, device="cpu"))
    rng = np.random.default_rng(0)
    for _ in range(150):
        obs = rng.integers(0, 2, (64, 4)).astype(np.float32)
        actions, _, _ = agent.act(obs, None, explore=True)
        rewards = (actions == obs).mean(1).astype(np.float32)
        batch = {
            "obs": obs[None],
            "actions": actions[None],
            "rewards": rewards[None],
            "mask": np.ones((1, 64), np.float32),
        }
        learner.update(batch)
    obs = rng.integers(0, 2, (256, 4)).astype(np.float32)
    greedy, _, _ = agent.act(obs, None, explore=False)
    assert (greedy == obs).mean() > 0.95


def test_td_loss_double_and_plain_hand_computed():
    q_online = torch.tensor([[1.0, 2.0]], requires_grad=True)
    q_next_online = torch.tensor([[5.0, 0.0]])  # online picks action 0
    q_next_target = torch.tensor([[3.0, 10.0]])
    actions, returns, discounts = torch.tensor([1]), torch.tensor([1.0]), torch.tensor([0.5])
    _, m = dqn.td_loss(
        q_online, q_next_online, q_next_target, actions, returns, discounts, huber=False
    )
    assert m["td_abs"] == pytest.approx(
        abs(2.0 - (1.0 + 0.5 * 3.0))
    )  # double: target net at argmax online
    _, m = dqn.td_loss(q_online, None, q_next_target, actions, returns, discounts, huber=False)
    assert m["td_abs"] == pytest.approx(abs(2.0 - (1.0 + 0.5 * 10.0)))  # plain: max of target net


def test_dqn_target_sync_and_epsilon_schedule():
    space_o, space_a = gym.spaces.Box(-1, 1, (3,), np.float32), gym.spaces.Discrete(2)
    agent = make_agent(
        dqn.Config(hidden=[8], target_update_every=2, epsilon_decay_steps=100), space_o, space_a
    )
    with torch.no_grad():
        for p in agent.online.parameters():
            p.add_(1.0)
    agent.on_update(1)
    assert not torch.equal(agent.online.advantage.weight, agent.target.advantage.weight)
    agent.on_update(2)
    assert torch.equal(agent.online.advantage.weight, agent.target.advantage.weight)
    agent.on_env_steps(50)
    assert float(agent.epsilon) == pytest.approx(1.0 + 0.5 * (0.05 - 1.0))
    agent.on_env_steps(10_000)
    assert float(agent.epsilon) == pytest.approx(0.05)
    assert not any(k.startswith("target.") for k in agent.acting_state_dict())
    assert "epsilon" in agent.acting_state_dict()


def test_learner_nan_guard_keeps_weights_and_clips():
    space_o, space_a = gym.spaces.Box(-1, 1, (3,), np.float32), gym.spaces.Discrete(2)
    agent = make_agent(reinforce.Config(hidden=[8]), space_o, space_a)
    learner = Learner(agent, LearnerConfig(lr=0.1, grad_clip=0.5, device="cpu"))
    batch = {
        "obs": np.ones((2, 1, 3), np.float32),
        "actions": np.zeros((2, 1), np.int64),
        "rewards": np.array([[1.0], [np.nan]], np.float32),
        "mask": np.ones((2, 1), np.float32),
    }
    before = {k: v.clone() for k, v in agent.state_dict().items()}
    with pytest.raises(NonFiniteLossError, match="no update was applied"):
        learner.update(batch)
    for k, v in agent.state_dict().items():
        assert torch.equal(v, before[k])
    assert learner.updates == 0
    batch["rewards"] = np.array([[100.0], [100.0]], np.float32)
    metrics = learner.update(batch)
    assert learner.updates == 1 and metrics["grad_norm"] > 0.5  # reported before clipping
    state = learner.state_dict()
    other = Learner(
        make_agent(reinforce.Config(hidden=[8]), space_o, space_a),
        LearnerConfig(lr=0.1, device="cpu"),
    )
    other.load_state_dict(state)
    assert other.updates == 1
    for k, v in other.agent.state_dict().items():
        assert torch.equal(v, agent.state_dict()[k])


def test_lr_schedules_hand_computed_and_applied_from_the_update_count():
    from agents.learner import scheduled_lr

    cfg = LearnerConfig(lr=1.0, lr_schedule="cosine", lr_decay_updates=4, lr_end_ratio=0.2)
    cosine = [scheduled_lr(cfg, u) for u in range(6)]
    # 0.2 + 0.8 * (1 + cos(pi u / 4)) / 2, held at 0.2 after 4 updates
    assert cosine == pytest.approx([1.0, 0.88284271, 0.6, 0.31715729, 0.2, 0.2])
    cfg.lr_schedule = "linear"
    assert [scheduled_lr(cfg, u) for u in range(6)] == pytest.approx([1, 0.8, 0.6, 0.4, 0.2, 0.2])
    assert scheduled_lr(LearnerConfig(lr=0.3), 10**6) == 0.3

    space_o, space_a = gym.spaces.Box(-1, 1, (3,), np.float32), gym.spaces.Discrete(2)
    cfg = LearnerConfig(lr=0.1, lr_schedule="linear", lr_decay_updates=4, lr_end_ratio=0.0)
    batch = {
        "obs": np.ones((2, 1, 3), np.float32),
        "actions": np.zeros((2, 1), np.int64),
        "rewards": np.ones((2, 1), np.float32),
        "mask": np.ones((2, 1), np.float32),
    }
    learner = Learner(make_agent(reinforce.Config(hidden=[8]), space_o, space_a), cfg)
    assert [learner.update(batch)["lr"] for _ in range(2)] == pytest.approx([0.1, 0.075])
    resumed = Learner(make_agent(reinforce.Config(hidden=[8]), space_o, space_a), cfg)
    resumed.load_state_dict(learner.state_dict())  # the schedule continues from the update count
    assert resumed.update(batch)["lr"] == pytest.approx(0.05)
    assert resumed.optimizer.param_groups[0]["lr"] == pytest.approx(0.05)


def test_centered_rmsprop_matches_the_formula_and_survives_repeated_gradients():
    from agents.learner import CenteredRMSprop

    p = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    opt = CenteredRMSprop([p], lr=0.1, alpha=0.9, eps=0.01)
    g = torch.tensor([0.5, -1.0])
    p.grad = g.clone()
    opt.step()
    sq, mean = 0.1 * g**2, 0.1 * g
    expected = torch.tensor([1.0, -2.0]) - 0.1 * g / torch.sqrt(sq - mean**2 + 0.01)
    torch.testing.assert_close(p.detach(), expected)
    for _ in range(2000):  # the same gradient again and again: the variance rounds to ~0
        p.grad = g.clone()
        opt.step()
    assert torch.isfinite(p).all()
