"""The shared losses (agents.losses) on hand-made batches: REINFORCE (reductions, baselines,
unbiasedness against the exact gradient), TD, sequence BCE and cross-entropy; the learner's guard
and clipping."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch

from agents import Learner, NonFiniteLossError, dqn, losses, make_agent, reinforce, sequence
from agents.losses import (
    MovingAverageBaseline,
    discounted_returns,
    reinforce_loss,
    sequence_cross_entropy_loss,
    td_loss,
)
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
    assert loss.item() == pytest.approx(0.5 * 2.5 - 0.1 * 1.0)
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


def test_value_clipping_clamps_each_component_and_reports_the_norm_before():
    """grad_clip_mode 'value' (the NTM paper's clipping): with plain SGD an update moves each
    weight by lr * clamp(gradient, -c, c); 'norm' would scale the whole gradient instead."""
    space_o, space_a = gym.spaces.Box(-1, 1, (3,), np.float32), gym.spaces.Discrete(2)
    batch = {
        "obs": np.full((2, 1, 3), 3.0, np.float32),
        "actions": np.zeros((2, 1), np.int64),
        "rewards": np.array([[100.0], [50.0]], np.float32),
        "mask": np.ones((2, 1), np.float32),
    }

    def step(mode: str, clip: float) -> tuple[dict, dict, dict]:
        torch.manual_seed(0)
        agent = make_agent(reinforce.Config(hidden=[8]), space_o, space_a)
        cfg = LearnerConfig(
            optimizer="sgd", lr=0.1, grad_clip=clip, grad_clip_mode=mode, device="cpu"
        )
        before = {k: v.clone() for k, v in agent.state_dict().items()}
        metrics = Learner(agent, cfg).update(batch)
        return before, agent.state_dict(), metrics

    before, _, free = step("norm", 0.0)  # no clipping: the raw gradient is (before - after) / lr
    _, raw_after, _ = step("norm", 0.0)
    raw = {k: (before[k] - raw_after[k]) / 0.1 for k in before}
    clip = 0.5 * max(float(g.abs().max()) for g in raw.values())
    assert clip > 0 and any(float(g.abs().min()) < clip for g in raw.values())
    _, after, metrics = step("value", clip)
    for k in before:
        expected = before[k] - 0.1 * raw[k].clamp(-clip, clip)
        torch.testing.assert_close(after[k], expected, rtol=1e-5, atol=1e-6)
    norm = math.sqrt(sum(float((g**2).sum()) for g in raw.values()))
    assert metrics["grad_norm"] == pytest.approx(norm, rel=1e-4)
    assert "grad_norm" not in free  # without clipping the norm is not computed

    from rollout.config import ConfigError, build_config

    with pytest.raises(ConfigError, match="grad_clip_mode"):
        build_config({"agent": {"name": "reinforce"}, "learner": {"grad_clip_mode": "both"}})


def test_adaptive_clipping_limits_a_spike_to_a_multiple_of_the_running_norm():
    """grad_clip_mode 'adaptive': after a usual update, a batch with a 100x gradient moves the
    weights (plain SGD) by lr x ratio x the running norm, not by lr x grad_clip; the running
    average follows the clipped norms and survives a checkpoint."""
    space_o, space_a = gym.spaces.Box(-1, 1, (3,), np.float32), gym.spaces.Discrete(2)

    def batch(reward: float) -> dict[str, np.ndarray]:
        return {
            "obs": np.full((2, 1, 3), 3.0, np.float32),
            "actions": np.zeros((2, 1), np.int64),
            "rewards": np.array([[reward], [reward / 2]], np.float32),
            "mask": np.ones((2, 1), np.float32),
        }

    torch.manual_seed(0)
    agent = make_agent(reinforce.Config(hidden=[8]), space_o, space_a)
    cfg = LearnerConfig(
        optimizer="sgd", lr=0.1, grad_clip=1000.0, grad_clip_mode="adaptive", device="cpu"
    )
    learner = Learner(agent, cfg)
    first = learner.update(batch(1.0))
    usual = first["grad_norm"]
    assert first["grad_norm_limit"] == 1000.0 and learner.norm_average == pytest.approx(usual)

    before = torch.nn.utils.parameters_to_vector(agent.parameters()).detach().clone()
    spike = learner.update(batch(100.0))
    moved = torch.nn.utils.parameters_to_vector(agent.parameters()).detach() - before
    assert spike["grad_norm"] > 10 * usual  # the raw norm is reported
    assert spike["grad_norm_limit"] == pytest.approx(3.0 * usual)
    assert float(moved.norm()) == pytest.approx(0.1 * 3.0 * usual, rel=1e-4)
    assert learner.norm_average == pytest.approx(0.99 * usual + 0.01 * 3.0 * usual)

    other = Learner(make_agent(reinforce.Config(hidden=[8]), space_o, space_a), cfg)
    other.load_state_dict(learner.state_dict())
    assert other.norm_average == learner.norm_average
    old = learner.state_dict()
    del old["grad_norm_average"]  # a checkpoint from before the mode: the next update sets it
    other.load_state_dict(old)
    assert other.norm_average is None

    from rollout.config import ConfigError, build_config

    for key, value in (("grad_clip_ratio", 1.0), ("grad_clip_decay", 1.0)):
        with pytest.raises(ConfigError, match=f"learner.{key}"):
            build_config({"agent": {"name": "reinforce"}, "learner": {key: value}})


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


# --- the shared losses module -------------------------------------------------------------------


def test_the_old_import_paths_still_give_the_shared_losses():
    assert reinforce.reinforce_loss is losses.reinforce_loss
    assert reinforce.discounted_returns is losses.discounted_returns
    assert dqn.td_loss is td_loss
    assert sequence.sequence_loss is losses.sequence_bce_loss


def _episode_grads(log_probs, returns, mask, reduction):
    lp = log_probs.clone().requires_grad_(True)
    loss, _ = reinforce_loss(lp, returns, mask, reduction=reduction)
    loss.backward()
    return lp.grad


def test_sequence_reduction_step_does_not_depend_on_episode_lengths():
    # two episodes of 2 steps; then the second one goes on for 4 more zero-advantage steps, the
    # first is padded to the new length, and an empty (all padding) column is added
    lp = torch.tensor([[-0.5, -1.0], [-0.7, -0.2]])
    returns = torch.tensor([[2.0, -1.0], [1.0, 3.0]])
    short = {"seq": _episode_grads(lp, returns, torch.ones(2, 2), "sequence")}
    short["tok"] = _episode_grads(lp, returns, torch.ones(2, 2), "token")
    long_lp = torch.full((6, 3), -0.3)
    long_lp[:2, :2] = lp
    long_returns = torch.zeros(6, 3)
    long_returns[:2, :2] = returns
    long_mask = torch.zeros(6, 3)
    long_mask[:2, 0] = 1.0
    long_mask[:, 1] = 1.0
    seq = _episode_grads(long_lp, long_returns, long_mask, "sequence")
    tok = _episode_grads(long_lp, long_returns, long_mask, "token")
    # per sequence: d loss / d log pi = -A / (number of episodes), however long they are
    torch.testing.assert_close(short["seq"], -returns / 2)
    torch.testing.assert_close(seq[:2, :2], short["seq"])
    assert torch.all(seq[:, 2] == 0) and torch.all(seq[2:, 0] == 0)  # padding has no gradient
    # per token the same episodes take a smaller step once one of them is longer (1/4 -> 1/8)
    torch.testing.assert_close(short["tok"], -returns / 4)
    torch.testing.assert_close(tok[:2, :2], -returns / 8)


def test_sequence_reduction_hand_computed_with_learned_baseline_and_entropy():
    lp = torch.tensor([[-1.0, -2.0], [-3.0, 0.0]], requires_grad=True)
    returns = torch.tensor([[3.0, 1.0], [2.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    baseline = torch.tensor([[1.0, 2.0], [1.0, 9.0]], requires_grad=True)
    entropy = torch.tensor([[0.5, 1.5], [1.0, 7.0]])
    loss, m = reinforce_loss(
        lp, returns, mask, baseline, entropy, reduction="sequence", entropy_coef=0.1
    )
    # A = (2, -1; 1, pad): policy = -(-1*2 + -2*-1 + -3*1) / 2 = 1.5
    # value = ((1-3)^2 + (2-1)^2 + (1-2)^2) / 2 = 3; entropy term (0.5 + 1.5 + 1) / 2 = 1.5
    assert float(m["policy_loss"]) == pytest.approx(1.5)
    assert float(m["value_loss"]) == pytest.approx(3.0)
    assert float(m["entropy"]) == pytest.approx(1.0)  # the mean per real step
    assert loss.item() == pytest.approx(1.5 + 0.5 * 3.0 - 0.1 * 1.5)
    assert float(m["episode_return_mean"]) == pytest.approx(2.0)  # (G_0 = 3, 1) / 2
    loss.backward()
    torch.testing.assert_close(lp.grad, torch.tensor([[-1.0, 0.5], [-0.5, 0.0]]))
    torch.testing.assert_close(baseline.grad, torch.tensor([[-1.0, 0.5], [-0.5, 0.0]]))


def test_moving_average_baseline_has_no_value_loss_and_moves_toward_the_returns():
    lp = torch.tensor([[-1.0, -2.0], [-0.5, 0.0]], requires_grad=True)
    rewards = torch.tensor([[1.0, 4.0], [2.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    returns = discounted_returns(rewards, mask, gamma=1.0)  # G = (3, 4; 2, 0)
    ma = MovingAverageBaseline(decay=0.9, initial=1.0)
    loss, m = reinforce_loss(lp, returns, mask, ma, reduction="sequence")
    assert "value_loss" not in m
    expected = -(-1.0 * (3 - 1) + -2.0 * (4 - 1) + -0.5 * (2 - 1)) / 2
    assert loss.item() == pytest.approx(expected)
    assert float(m["policy_loss"]) == pytest.approx(expected)
    assert float(m["baseline"]) == pytest.approx(1.0)  # the value the batch was centred with
    # the mean episode return is (3 + 4) / 2 = 3.5: b <- 0.9 * 1 + 0.1 * 3.5
    assert float(m["episode_return_mean"]) == pytest.approx(3.5)
    assert float(ma.value) == pytest.approx(0.9 + 0.35)
    assert list(ma.parameters()) == []  # nothing about it is learned by gradient
    loss.backward()
    torch.testing.assert_close(lp.grad, -(returns - 1.0) * mask / 2)
    for k in range(2, 40):  # geometric approach to a constant return
        reinforce_loss(lp.detach(), returns, mask, ma)
        assert float(ma.value) == pytest.approx(3.5 + (1.0 - 3.5) * 0.9**k)
    reinforce_loss(lp.detach(), torch.full_like(returns, float("nan")), mask, ma)
    assert float(ma.value) == pytest.approx(3.5 + (1.0 - 3.5) * 0.9**39)  # NaN left it alone
    with pytest.raises(ValueError, match=r"decay must be in \[0, 1\)"):
        MovingAverageBaseline(decay=1.0)


def test_reinforce_metrics_are_detached_0d_tensors_and_never_read_on_the_host():
    lp = torch.randn(4, 3, requires_grad=True)
    returns, mask = torch.randn(4, 3), torch.ones(4, 3)
    baselines = [None, torch.randn(4, 3, requires_grad=True), MovingAverageBaseline()]
    for baseline in baselines:
        for reduction in ("sequence", "token"):
            _, m = reinforce_loss(
                lp, returns, mask, baseline, torch.rand(4, 3), reduction=reduction
            )
            assert {"policy_loss", "entropy", "episode_return_mean"} <= set(m)
            for key, value in m.items():
                assert torch.is_tensor(value) and value.dim() == 0, key
                assert not value.requires_grad, key
    # on the meta device no value exists on the host: any float()/item()/`if tensor` would raise,
    # so the loss is capturable in a CUDA graph
    meta = MovingAverageBaseline().to("meta")
    loss, m = reinforce_loss(
        torch.empty(5, 2, device="meta"),
        torch.empty(5, 2, device="meta"),
        torch.empty(5, 2, device="meta"),
        meta,
        torch.empty(5, 2, device="meta"),
        normalize_advantages=True,
    )
    assert loss.device.type == "meta" and all(v.device.type == "meta" for v in m.values())
    q = torch.randn(3, 2, requires_grad=True)
    _, m = td_loss(
        q, None, torch.randn(3, 2), torch.tensor([0, 1, 1]), torch.ones(3), torch.ones(3)
    )
    assert all(torch.is_tensor(v) and v.dim() == 0 for v in m.values())


def test_reinforce_loss_refuses_bad_arguments():
    x = torch.zeros(3, 2)
    with pytest.raises(ValueError, match="reduction must be one of sequence, token"):
        reinforce_loss(x, x, x, reduction="episode")
    with pytest.raises(ValueError, match=r"mask has shape \(3,\), log_probs \(3, 2\)"):
        reinforce_loss(x, x, torch.ones(3))
    with pytest.raises(ValueError, match="learned baseline must be shaped like log_probs"):
        reinforce_loss(x, x, x, torch.zeros(3, 1))
    with pytest.raises(TypeError, match="got float"):
        reinforce_loss(x, x, x, 0.5)


# Unbiasedness: a softmax policy over 4 actions; the average of N sampled REINFORCE gradients
# against the exact gradient of the expected reward, within 4 standard errors of the sample mean.
LOGITS = torch.tensor([0.3, -0.2, 0.5, 0.0], dtype=torch.float64)
R1 = torch.tensor([1.0, 0.0, 3.0, -1.0], dtype=torch.float64)
R2 = torch.tensor([0.5, 2.0, -1.0, 0.0], dtype=torch.float64)
SAMPLES = 20_000


def _bandit_batch(two_steps: bool):
    """Time-major episodes: one step (reward R1[a]) or, when `two_steps`, a second step
    (reward R2[a]) that half of the episodes take (a coin independent of the policy)."""
    gen = torch.Generator().manual_seed(0)
    probs = torch.softmax(LOGITS, 0)
    steps = 2 if two_steps else 1
    actions = torch.multinomial(probs, steps * SAMPLES, replacement=True, generator=gen)
    actions = actions.reshape(steps, SAMPLES)
    mask = torch.ones(steps, SAMPLES, dtype=torch.float64)
    rewards = R1[actions]
    if two_steps:
        mask[1] = (torch.rand(SAMPLES, generator=gen) < 0.5).double()
        rewards[1] = R2[actions[1]]
    rewards = rewards * mask
    exact = probs * (R1 - probs @ R1)
    if two_steps:
        exact = exact + 0.5 * probs * (R2 - probs @ R2)
    return actions, rewards, mask, exact


def _estimate(actions, rewards, mask, baseline, **kwargs):
    """(mean of the sampled gradients of the expected return, their standard error)."""
    logits = LOGITS.clone().requires_grad_(True)
    log_probs = torch.log_softmax(logits, 0)[actions]
    returns = discounted_returns(rewards, mask, gamma=1.0)
    b = 0.0
    if isinstance(baseline, float):  # a constant tensor, as a learned baseline is passed
        b, baseline = baseline, torch.full_like(returns, baseline)
    elif baseline is not None:
        b = float(baseline.value)  # before the loss updates it
    loss, _ = reinforce_loss(log_probs, returns, mask, baseline, **kwargs)
    (grad,) = torch.autograd.grad(-loss, logits)
    # one episode's gradient: sum_t (onehot(a_t) - pi) * (G_t - b), for the standard error
    probs = torch.softmax(LOGITS, 0)
    score = torch.nn.functional.one_hot(actions, 4).double() - probs
    per_episode = (score * ((returns - b) * mask).unsqueeze(-1)).sum(0)
    return grad, per_episode.std(0) / SAMPLES**0.5


@pytest.mark.parametrize("two_steps", [False, True])
def test_reinforce_gradient_is_unbiased_on_a_categorical_problem(two_steps):
    actions, rewards, mask, exact = _bandit_batch(two_steps)
    for baseline in (None, 2.0, MovingAverageBaseline(0.9, initial=2.0)):
        grad, stderr = _estimate(actions, rewards, mask, baseline, reduction="sequence")
        tolerance = 4 * stderr
        assert torch.all((grad - exact).abs() < tolerance), (baseline, grad, exact, tolerance)
        assert float(tolerance.max()) < 0.15 * float(exact.abs().max())  # a tight test
    # estimators that are biased fail the same tolerance: standardised advantages rescale the
    # gradient, and the per-token mean shrinks it by the mean episode length (about 1.5)
    grad, stderr = _estimate(actions, rewards, mask, None, normalize_advantages=True)
    assert torch.any((grad - exact).abs() > 4 * stderr)
    if two_steps:
        grad, stderr = _estimate(actions, rewards, mask, None, reduction="token")
        assert torch.any((grad - exact).abs() > 4 * stderr)
        tokens_per_episode = float(mask.sum()) / SAMPLES  # about 1.5
        torch.testing.assert_close(
            grad * tokens_per_episode, _estimate(actions, rewards, mask, None)[0]
        )


def test_sequence_cross_entropy_hand_computed():
    logits = torch.tensor(
        [
            [[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]],
            [[0.0, 0.0, 3.0], [5.0, 5.0, 5.0]],
        ],
        requires_grad=True,
    )
    targets = torch.tensor([[0, 2], [2, -1]])  # -1: padding, masked out
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    loss, m = sequence_cross_entropy_loss(logits, targets, mask)

    def nll(row, target):
        return math.log(sum(math.exp(v) for v in row)) - row[target]

    costs = [nll([2, 0, 0], 0), nll([0, 1, 0], 2), nll([0, 0, 3], 2)]
    assert loss.item() == pytest.approx(sum(costs) / 3)
    assert float(m["cost_bits"]) == pytest.approx(sum(costs) / 2 / math.log(2))
    # sequence 0 is right at both steps; sequence 1 picks 1 where the target is 2
    assert float(m["token_errors"]) == pytest.approx(0.5)
    assert float(m["sequence_accuracy"]) == pytest.approx(0.5)
    assert all(torch.is_tensor(v) and v.dim() == 0 and not v.requires_grad for v in m.values())
    loss.backward()
    assert torch.all(logits.grad[1, 1] == 0)  # the padded step has no gradient
    with pytest.raises(ValueError, match=r"need logits \[T, B, C\], targets and mask \[T, B\]"):
        sequence_cross_entropy_loss(logits, targets[0], mask)


def test_reinforce_config_baseline_modes_and_old_booleans():
    assert reinforce.Config().baseline == "learned" and reinforce.Config().reduction == "token"
    assert reinforce.Config(baseline=True).baseline == "learned"
    assert reinforce.Config(baseline=False).baseline == "none"
    with pytest.raises(ValueError, match="baseline must be one of learned, moving_average, none"):
        reinforce.Config(baseline="mean").validate()
    with pytest.raises(ValueError, match=r"baseline_decay must be in \[0, 1\)"):
        reinforce.Config(baseline_decay=1.5).validate()
    space_o, space_a = gym.spaces.Box(-1, 1, (3,), np.float32), gym.spaces.Discrete(2)
    none = make_agent(reinforce.Config(hidden=[8], baseline="none"), space_o, space_a)
    assert none.value is None and none.moving_baseline is None


def test_reinforce_agent_with_moving_average_baseline_trains_without_a_value_head():
    space_o, space_a = gym.spaces.Box(-1, 1, (3,), np.float32), gym.spaces.Discrete(2)
    cfg = reinforce.Config(hidden=[8], baseline="moving_average", reduction="sequence")
    agent = make_agent(cfg, space_o, space_a)
    assert agent.value is None and "moving_baseline.value" in agent.state_dict()
    assert "moving_baseline.value" not in agent.acting_state_dict()  # the workers act without it
    learner = Learner(agent, LearnerConfig(lr=0.01, device="cpu"))
    batch = {
        "obs": np.ones((3, 2, 3), np.float32),
        "actions": np.zeros((3, 2), np.int64),
        "rewards": np.array([[1.0, 1.0], [1.0, 1.0], [1.0, 0.0]], np.float32),
        "mask": np.array([[1, 1], [1, 1], [1, 0]], np.float32),
    }
    metrics = learner.update(batch)
    assert "value_loss" not in metrics and metrics["baseline"] == 0.0
    assert metrics["episode_return_mean"] == pytest.approx((2.9701 + 1.99) / 2)  # gamma 0.99
    assert float(agent.moving_baseline.value) == pytest.approx(0.1 * (2.9701 + 1.99) / 2)
    fresh = make_agent(cfg, space_o, space_a)
    fresh.load_acting_state_dict(agent.acting_state_dict())  # a worker's copy loads


@pytest.mark.parametrize("env_id", ["memrl/PrioritySort-v0", "memrl/LearnToExecute-v0"])
def test_score_examples_cost_per_sequence_sums_to_the_losses_cost(env_id):
    """A sequence agent's per-sequence `cost_bits` (what `run.eval_metric: cost` selects on):
    their mean is the loss's batch figure, for bit outputs (BCE) and symbol outputs (CE, with
    padding targets off the mask ignored), and each is the hand sum of that sequence's steps."""
    import envs
    from agents.lstm import Config as LSTMConfig

    env = envs.make(env_id)
    torch.manual_seed(0)
    agent = make_agent(LSTMConfig(hidden_size=8, layers=1), env.observation_space, env.action_space)
    inputs, targets, mask = env.unwrapped.sample_batch(5, np.random.default_rng(1))
    batch = {
        k: torch.as_tensor(v)
        for k, v in zip(("inputs", "targets", "mask"), (inputs, targets, mask))
    }
    per_sequence = agent.score_examples(batch)
    with torch.no_grad():
        logits, _ = agent.core(batch["inputs"])
        _, figures = agent.targets_loss(logits, batch)
    assert per_sequence["cost_bits"].shape == (5,)
    assert float(per_sequence["cost_bits"].mean()) == pytest.approx(float(figures["cost_bits"]))
    b = 2  # one sequence by hand
    steps = np.flatnonzero(mask[:, b])
    if agent.symbols:
        logp = torch.log_softmax(logits[steps, b], -1)
        nats = -logp[torch.arange(len(steps)), batch["targets"][steps, b].long()].sum()
    else:
        p = torch.sigmoid(logits[steps, b])
        y = batch["targets"][steps, b].float()
        nats = -(y * torch.log(p) + (1 - y) * torch.log(1 - p)).sum()
    assert float(per_sequence["cost_bits"][b]) == pytest.approx(float(nats) / math.log(2), rel=1e-4)
