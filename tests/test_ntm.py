"""NTM memory operations on hand-computed tensors, explicit state, and the sequence agents' API."""

from __future__ import annotations

import dataclasses
import math

import gymnasium as gym
import numpy as np
import pytest
import torch

import envs
from agents import Learner, lstm, make_agent, ntm
from agents.ntm import content_weights, interpolate, read, sharpen, shift, write
from agents.sequence import sequence_loss
from rollout.config import LearnerConfig


def test_content_weights_hand_computed():
    memory = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]])
    key = torch.tensor([[[1.0, 0.0]]])
    beta = torch.tensor([[[2.0]]])
    cos = torch.tensor([1.0, 0.0, 1 / math.sqrt(2)])
    expected = torch.softmax(2.0 * cos, dim=0)
    torch.testing.assert_close(
        content_weights(key, beta, memory)[0, 0], expected, atol=1e-6, rtol=0
    )


def test_interpolate_shift_sharpen_hand_computed():
    w_c = torch.tensor([[[0.0, 1.0, 0.0, 0.0]]])
    w_prev = torch.tensor([[[1.0, 0.0, 0.0, 0.0]]])
    g = torch.tensor([[[0.25]]])
    torch.testing.assert_close(
        interpolate(w_c, w_prev, g), torch.tensor([[[0.75, 0.25, 0.0, 0.0]]])
    )
    # shift weights over offsets (-1, 0, +1): all mass on +1 moves focus one slot right, circularly
    w = torch.tensor([[[0.0, 0.0, 0.0, 1.0]]])
    torch.testing.assert_close(
        shift(w, torch.tensor([[[0.0, 0.0, 1.0]]])), torch.tensor([[[1.0, 0.0, 0.0, 0.0]]])
    )
    torch.testing.assert_close(
        shift(w, torch.tensor([[[1.0, 0.0, 0.0]]])), torch.tensor([[[0.0, 0.0, 1.0, 0.0]]])
    )
    blurred = shift(torch.tensor([[[0.0, 1.0, 0.0, 0.0]]]), torch.tensor([[[0.2, 0.5, 0.3]]]))
    torch.testing.assert_close(blurred, torch.tensor([[[0.2, 0.5, 0.3, 0.0]]]))
    sharp = sharpen(torch.tensor([[[0.2, 0.5, 0.3, 0.0]]]), torch.tensor([[[2.0]]]))
    expected = torch.tensor([0.04, 0.25, 0.09, 0.0]) / 0.38
    torch.testing.assert_close(sharp[0, 0], expected, atol=1e-6, rtol=0)


def test_sharpen_stays_finite_for_spread_weightings_and_large_gamma():
    """A weighting spread over 128 rows with gamma 20-200 (gamma is unbounded): the direct
    w**gamma / sum form gave inf gradients at 20 and NaN from ~30 in float32."""
    for g in (1.0, 20.0, 30.0, 200.0):
        w = torch.full((1, 1, 128), 1 / 128).requires_grad_(True)
        gamma = torch.tensor([[[g]]], requires_grad=True)
        out = sharpen(w, gamma)
        torch.testing.assert_close(out, torch.full((1, 1, 128), 1 / 128))
        out[..., 0].sum().backward()
        assert torch.isfinite(w.grad).all() and torch.isfinite(gamma.grad).all()
        assert w.grad.abs().max() < 10 * g
    # a focused weighting: the large gamma keeps the focus, no NaN from the tiny rows
    w = torch.full((1, 1, 128), 1e-9)
    w[..., 5] = 1.0
    out = sharpen(w / w.sum(), torch.tensor([[[100.0]]]))
    assert torch.isfinite(out).all() and out[0, 0, 5] > 0.999


def test_read_and_erase_add_write_hand_computed():
    memory = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])
    w = torch.tensor([[[0.5, 0.5]]])
    torch.testing.assert_close(read(memory, w), torch.tensor([[[2.0, 3.0]]]))
    erase = torch.tensor([[[1.0, 0.0]]])
    add = torch.tensor([[[10.0, 0.0]]])
    new = write(memory, torch.tensor([[[1.0, 0.0]]]), erase, add)
    # row 0: fully erased in column 0, then 10 added; row 1 untouched
    torch.testing.assert_close(new, torch.tensor([[[10.0, 2.0], [3.0, 4.0]]]))
    half = write(memory, w, erase, add)
    torch.testing.assert_close(half, torch.tensor([[[0.5 + 5.0, 2.0], [1.5 + 5.0, 4.0]]]))


def spaces(bits: int = 4):
    return gym.spaces.Box(0.0, 1.0, (bits + 1,), np.float32), gym.spaces.MultiBinary(bits)


def test_state_is_explicit_and_reset_per_env():
    torch.manual_seed(0)
    agent = make_agent(ntm.Config(memory_n=16, memory_m=8, controller_size=16), *spaces())
    x = np.random.default_rng(0).random((3, 5)).astype(np.float32)
    state = agent.initial_state(3)
    _, s1, _ = agent.act(x, state, explore=False)
    logits_a, _ = agent.core.step(torch.as_tensor(x), s1)
    logits_b, _ = agent.core.step(
        torch.as_tensor(x), s1
    )  # same state in -> same output: no hidden state
    torch.testing.assert_close(logits_a, logits_b)
    assert not torch.equal(s1[2], state[2])  # memory was written
    reset = agent.reset_state(s1, np.array([True, False, False]))
    for fresh, old, new in zip(state, s1, reset):
        torch.testing.assert_close(new[0], fresh[0])
        torch.testing.assert_close(new[1:], old[1:])


COLLIER_BEEL = dict(clip=20.0, key_activation="tanh", init_weights="learned", forget_bias=1.0)


def test_collier_beel_options():
    """Head parameters clipped, keys in (-1, 1), learned initial weightings that are softmaxes
    and get a gradient, the LSTM's forget gate biased open."""
    torch.manual_seed(0)
    cfg = ntm.Config(memory_n=16, memory_m=8, controller_size=16, compile=False, **COLLIER_BEEL)
    core = make_agent(cfg, *spaces()).core
    plain = make_agent(ntm.Config(memory_n=16, memory_m=8, controller_size=16), *spaces()).core
    c = cfg.controller_size
    bias = core.controller.bias_ih + core.controller.bias_hh
    assert bias[c : 2 * c].mean() > 0.5 > bias[:c].abs().max()
    h, _, memory, w_read, w_write, _ = core.initial_state(2)
    torch.testing.assert_close(w_read.sum(-1), torch.ones(2, 1))
    assert w_read.min() > 0 and (w_write[:, 0] != plain.initial_state(2)[4][:, 0]).any()
    # the initial weightings are learned: the loss reaches them
    y, _ = core(torch.rand(3, 2, 5))
    y.sum().backward()
    assert core.weight_init.grad is not None and core.weight_init.grad.abs().sum() > 0
    # clipping: head outputs far past the bound address and write as the bound does (the new
    # memory and weightings are equal); unclipped, they differ

    def state_with_head_bias(c: ntm.NTMCore, value: float) -> torch.Tensor:
        with torch.no_grad():
            c.heads.bias.fill_(value)
        _, (_, _, memory, w_read, w_write, _) = c.step(torch.zeros(2, 5), c.initial_state(2))
        return torch.cat([memory.flatten(1), w_read.flatten(1), w_write.flatten(1)], dim=1)

    torch.testing.assert_close(state_with_head_bias(core, 1e4), state_with_head_bias(core, 1e3))
    unclipped = state_with_head_bias(plain, 10.0), state_with_head_bias(plain, 5.0)
    assert all(y.isfinite().all() for y in unclipped) and not torch.allclose(*unclipped)
    with pytest.raises(ValueError, match="clip"):
        ntm.Config(clip=-1.0).validate()


def test_key_strength_bound_hand_computed_and_off_by_default():
    """`key_strength_max` bounds beta smoothly: bound * tanh(softplus / bound), near softplus
    well below the bound, below it everywhere, with a gradient; 0 (the default) is softplus."""
    from agents.ntm import key_strength

    x = torch.tensor([-3.0, 0.0, 1.0, 20.0, 60.0], requires_grad=True)
    soft = torch.nn.functional.softplus(x)
    torch.testing.assert_close(key_strength(x), soft)
    bounded = key_strength(x, 10.0)
    expected = 10.0 * torch.tanh(soft / 10.0)
    torch.testing.assert_close(bounded, expected)
    assert (bounded < 10.0).all() and (bounded <= soft).all()
    assert abs(bounded[2].item() - soft[2].item()) / soft[2].item() < 0.01  # 1.31 -> 1.31
    assert 9.6 < bounded[3].item() < 9.7  # softplus 20 -> 10 tanh 2
    bounded.sum().backward()
    assert (x.grad > 0).all()
    # in the model: the same weights, huge key-strength pre-activations: content addressing at
    # beta <= 2 stays spread where unbounded it is one-hot
    torch.manual_seed(0)
    cfg = dict(memory_n=16, memory_m=8, controller_size=16, compile=False, memory_init="learned")
    plain = make_agent(ntm.Config(**cfg), *spaces()).core
    capped = make_agent(ntm.Config(**cfg, key_strength_max=2.0), *spaces()).core
    capped.load_state_dict(plain.state_dict())
    m = cfg["memory_m"]
    p = torch.zeros(1, 1, plain.address_size)
    p[..., :m] = torch.randn(m)
    p[..., m] = 50.0  # beta's pre-activation
    p[..., m + 1] = 50.0  # gate 1: content addressing only
    p[..., m + 2 + capped.shifts // 2] = 50.0  # no shift
    memory = capped.memory0.unsqueeze(0)
    w_prev = torch.full((1, 1, 16), 1 / 16)
    sharp, spread = plain._address(p, w_prev, memory), capped._address(p, w_prev, memory)
    assert sharp.max() > 0.99 and spread.max() < 0.5
    with pytest.raises(ValueError, match="key_strength_max"):
        ntm.Config(key_strength_max=-1.0).validate()


def test_learned_controller_init_is_the_first_state_and_is_trained():
    torch.manual_seed(0)
    cfg = ntm.Config(
        memory_n=16, memory_m=8, controller_size=16, controller_init="learned", compile=False
    )
    core = make_agent(cfg, *spaces()).core
    h, c, *_ = core.initial_state(3)
    torch.testing.assert_close(h, core.h0.expand(3, -1))
    torch.testing.assert_close(c, core.c0.expand(3, -1))
    assert h.abs().sum() > 0
    y, _ = core(torch.rand(4, 3, 5))
    y.sum().backward()
    assert core.h0.grad.abs().sum() > 0 and core.c0.grad.abs().sum() > 0
    zeros = make_agent(ntm.Config(memory_n=16, memory_m=8, controller_size=16), *spaces()).core
    assert not hasattr(zeros, "h0") and zeros.initial_state(3)[0].abs().sum() == 0
    with pytest.raises(ValueError, match="controller_init: learned is the LSTM controller"):
        ntm.Config(controller="feedforward", controller_init="learned").validate()


def test_learned_memory_init_lets_content_addressing_pick_a_row_before_any_write():
    """memory_init: learned starts every sequence from one trained N x M matrix whose rows
    differ, so a key picks a row by content at the first step; on the constant memory every row
    is alike and the content weighting is uniform whatever the key."""
    torch.manual_seed(0)
    cfg = ntm.Config(
        memory_n=16, memory_m=8, controller_size=16, memory_init="learned", compile=False
    )
    core = make_agent(cfg, *spaces()).core
    memory = core.initial_state(3)[2]
    assert memory.shape == (3, 16, 8)
    torch.testing.assert_close(memory, core.memory0.expand(3, -1, -1))
    key = core.memory0[5].detach().view(1, 1, 8)
    picked = content_weights(key, torch.tensor([[[50.0]]]), memory[:1])[0, 0]
    assert int(picked.argmax()) == 5 and picked[5] > 0.5
    y, _ = core(torch.rand(4, 3, 5))
    y.sum().backward()
    assert core.memory0.grad.abs().sum() > 0  # trained
    constant = make_agent(ntm.Config(memory_n=16, memory_m=8, controller_size=16), *spaces())
    flat = constant.core.initial_state(1)[2]
    torch.testing.assert_close(flat, torch.full((1, 16, 8), 1e-6))
    assert not hasattr(constant.core, "memory0")
    uniform = content_weights(key, torch.tensor([[[50.0]]]), flat)[0, 0]
    torch.testing.assert_close(uniform, torch.full((16,), 1 / 16))
    with pytest.raises(ValueError, match="memory_init must be 'constant' or 'learned'"):
        ntm.Config(memory_init="random").validate()


def test_heads_and_controller_layers_shape_the_state():
    """read_heads/write_heads give one weighting per head; controller_layers stacks LSTM layers
    whose (h, c) sit side by side in the state, the heads reading the top one."""
    cfg = ntm.Config(
        memory_n=16,
        memory_m=8,
        controller_size=16,
        controller_layers=2,
        read_heads=3,
        write_heads=2,
        compile=False,
    )
    core = make_agent(cfg, *spaces()).core
    h, c, memory, w_read, w_write, reads = core.initial_state(4)
    assert h.shape == c.shape == (4, 32) and memory.shape == (4, 16, 8)
    assert w_read.shape == (4, 3, 16) and w_write.shape == (4, 2, 16) and reads.shape == (4, 3, 8)
    y, (h, c, memory, w_read, w_write, reads) = core.step(
        torch.rand(4, 5), (h, c, memory, w_read, w_write, reads)
    )
    assert y.shape == (4, 4) and h.shape == (4, 32)
    torch.testing.assert_close(w_read.sum(-1), torch.ones(4, 3))
    torch.testing.assert_close(w_write.sum(-1), torch.ones(4, 2))
    assert len(core.upper) == 1 and core.heads.in_features == 16
    # head parameters: (3 + 2) x (key 8 + beta, gate, gamma + 3 shifts) + 2 x (erase + add)
    assert core.heads.out_features == 5 * (8 + 3 + 3) + 2 * 16
    with pytest.raises(ValueError, match="controller_layers > 1 stacks LSTM layers"):
        ntm.Config(controller="feedforward", controller_layers=2).validate()
    with pytest.raises(ValueError, match="controller_layers must be >= 1"):
        ntm.Config(controller_layers=0).validate()


def fixed_copy_batch() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """8 copy sequences of 3 4-bit vectors: inputs [7, 8, 5], targets [7, 8, 4], mask [7, 8]."""
    seq = np.random.default_rng(0).integers(0, 2, (3, 8, 4)).astype(np.float32)
    inputs = np.zeros((7, 8, 5), np.float32)
    inputs[:3, :, :4] = seq
    inputs[3, :, 4] = 1.0
    targets = np.zeros((7, 8, 4), np.float32)
    targets[4:] = seq
    mask = np.zeros((7, 8), np.float32)
    mask[4:] = 1.0
    return inputs, targets, mask


def loss_and_grads(core: ntm.NTMCore, inputs: np.ndarray) -> tuple[torch.Tensor, list]:
    core.zero_grad()
    logits, _ = core(torch.as_tensor(inputs))
    loss = (logits.sigmoid() * torch.linspace(-1, 1, logits.shape[-1])).sum()
    loss.backward()
    return logits.detach(), [p.grad.clone() for p in core.parameters()]


def compiled_and_eager_cores() -> tuple[ntm.NTMCore, ntm.NTMCore]:
    """Two NTM cores with the same weights: `compile` on, and off."""
    cfg = ntm.Config(memory_n=16, memory_m=8, controller_size=16)
    torch.manual_seed(0)
    compiled = make_agent(cfg, *spaces()).core
    eager = make_agent(dataclasses.replace(cfg, compile=False), *spaces()).core
    eager.load_state_dict(compiled.state_dict())
    return compiled, eager


def test_compiled_training_step_matches_eager():
    """Training runs the step through torch.compile; outputs and every gradient equal eager's."""
    compiled, eager = compiled_and_eager_cores()
    inputs, _, _ = fixed_copy_batch()
    (y_c, g_c), (y_e, g_e) = loss_and_grads(compiled, inputs), loss_and_grads(eager, inputs)
    torch.testing.assert_close(y_c, y_e, atol=1e-5, rtol=1e-4)
    for a, b in zip(g_c, g_e):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    assert not ntm._compiler_failed


def test_failed_compiler_warns_and_trains_eager(monkeypatch, caplog):
    def broken_compiler():
        def step(*_):
            raise torch._dynamo.exc.BackendCompilerFailed(
                "inductor", RuntimeError("No working C++ compiler found"), None
            )

        return step

    monkeypatch.setattr(ntm, "_compiled_step", broken_compiler)
    monkeypatch.setattr(ntm, "_compiler_failed", False)  # restored afterwards: other tests compile
    core, eager = compiled_and_eager_cores()
    inputs, _, _ = fixed_copy_batch()
    with caplog.at_level("WARNING", logger="agents.ntm"):
        y, grads = loss_and_grads(core, inputs)
    assert "No working C++ compiler found" in caplog.text and "agent.compile=false" in caplog.text
    assert ntm._compiler_failed  # for good: later calls do not try again
    y_e, grads_e = loss_and_grads(eager, inputs)
    torch.testing.assert_close(y, y_e)
    for a, b in zip(grads, grads_e):
        torch.testing.assert_close(a, b)


def test_failed_backward_compile_falls_back_before_the_learner_sees_it(monkeypatch, caplog):
    """Inductor compiles the backward graph lazily, at loss.backward(), by default: a failure
    there would escape the fallback. The compiled forward lowers it eagerly instead."""
    import torch._inductor.compile_fx as compile_fx

    real = compile_fx._compile_fx_inner

    def forward_only(gm, inputs, **kwargs):
        if kwargs.get("is_backward"):
            raise RuntimeError("backward lowering failed")
        return real(gm, inputs, **kwargs)

    monkeypatch.setattr(compile_fx, "_compile_fx_inner", forward_only)
    # a cached forward+backward pair would skip the compiler; the forward's own cache still hits
    monkeypatch.setattr(torch._functorch.config, "enable_autograd_cache", False)
    monkeypatch.setattr(ntm, "_compiler_failed", False)
    torch._dynamo.reset()
    ntm._compiled_step.cache_clear()
    try:
        core, eager = compiled_and_eager_cores()
        inputs, _, _ = fixed_copy_batch()
        with caplog.at_level("WARNING", logger="agents.ntm"):
            y, grads = loss_and_grads(core, inputs)
    finally:
        torch._dynamo.reset()
        ntm._compiled_step.cache_clear()
    assert "backward lowering failed" in caplog.text and ntm._compiler_failed
    y_e, grads_e = loss_and_grads(eager, inputs)
    torch.testing.assert_close(y, y_e)
    for a, b in zip(grads, grads_e):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize(
    "module, cfg",
    [
        (ntm, ntm.Config(memory_n=16, memory_m=8, controller_size=16)),  # compiled
        (
            ntm,
            ntm.Config(memory_n=16, memory_m=8, controller_size=16, compile=False, **COLLIER_BEEL),
        ),
        (  # the paper's priority-sort shapes, small: several heads, a 2-layer LSTM controller
            ntm,
            ntm.Config(
                memory_n=16,
                memory_m=8,
                controller_size=16,
                controller_layers=2,
                read_heads=3,
                write_heads=2,
                compile=False,
            ),
        ),
        (  # feed-forward controller with several heads (the paper's sort: 8 of each)
            ntm,
            ntm.Config(
                memory_n=16,
                memory_m=8,
                controller_size=32,
                controller="feedforward",
                read_heads=2,
                write_heads=2,
                compile=False,
            ),
        ),
        (lstm, lstm.Config(hidden_size=16, layers=2)),
    ],
)
def test_sequence_agents_fit_a_fixed_batch(module, cfg):
    """Both agents drive the loss on one fixed copy batch down (the gradient reaches every part)."""
    torch.manual_seed(0)
    agent = make_agent(cfg, *spaces())
    inputs, targets, mask = fixed_copy_batch()
    batch = {"inputs": inputs, "targets": targets, "mask": mask}
    learner = Learner(agent, LearnerConfig(lr=1e-2, device="cpu", grad_clip=10.0))
    first = learner.update(batch)
    for _ in range(400):  # the NTM's loss is not monotone here: a spike near update 200 on one CPU
        last = learner.update(batch)
    assert last["cost_bits"] < 0.1 * first["cost_bits"]
    assert all(p.grad is not None for p in agent.parameters() if p.requires_grad)
    # the step-by-step path (acting) gives the same outputs as the whole-sequence path (training)
    with torch.no_grad():
        whole, _ = agent.core(torch.as_tensor(inputs))
        state, steps = agent.initial_state(8), []
        for x in torch.as_tensor(inputs):
            y, state = agent.core.step(x, state)
            steps.append(y)
    torch.testing.assert_close(torch.stack(steps), whole, atol=1e-5, rtol=1e-5)


def test_sequence_loss_figures():
    logits = torch.tensor([[[10.0, -10.0]], [[10.0, 10.0]]])  # T=2, B=1, K=2
    targets = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]])
    mask = torch.tensor([[0.0], [1.0]])  # only step 1 is scored
    _, m = sequence_loss(logits, targets, mask)
    assert float(m["bit_errors"]) == 1.0
    assert float(m["cost_bits"]) == pytest.approx(
        (10.0 + math.log1p(math.exp(-10))) / math.log(2), rel=1e-4
    )


def test_sequence_agents_refuse_wrong_spaces():
    from agents import AgentError

    with pytest.raises(AgentError, match="MultiBinary or a Discrete"):
        make_agent(ntm.Config(), gym.spaces.Box(0, 1, (3,)), gym.spaces.Box(0, 1, (2,)))
    with pytest.raises(AgentError, match="1-D Box"):
        make_agent(ntm.Config(), gym.spaces.Discrete(3), gym.spaces.Discrete(2))


def test_trace_window_handles_heads_that_wrap_around_memory():
    from rollout.sequence_report import _visited_window

    visited = np.zeros(10, bool)
    visited[[8, 9, 0, 1]] = True  # a head moving backwards from row 1 wraps to row 9
    assert _visited_window(visited) == (8, 4)
    visited = np.zeros(10, bool)
    visited[2:5] = True
    assert _visited_window(visited) == (2, 3)
    assert _visited_window(np.zeros(4, bool)) == (0, 4)


def test_repeat_copy_report_scores_by_repeat_count_and_draws_every_head(tmp_path):
    """The end-of-run report of a repeat-copy NTM: rows by repeat count and length (a variant
    that needs more memory rows than the model has is skipped, not crashed), and pictures with
    a weighting panel per head."""
    from rollout.sequence_report import write_report

    kwargs = {"bits": 4, "min_len": 1, "max_len": 3, "min_repeats": 1, "max_repeats": 3}
    env = envs.make("memrl/RepeatCopy-v0", **kwargs).unwrapped
    cfg = ntm.Config(
        memory_n=16, memory_m=8, controller_size=16, read_heads=2, write_heads=2, compile=False
    )
    torch.manual_seed(0)
    agent = make_agent(cfg, env.observation_space, env.action_space)
    report = write_report(agent, "memrl/RepeatCopy-v0", kwargs, tmp_path, sequences=4)
    rows = {row["variant"]: row for row in report["rows"]}
    assert {"length 10 x 5 repeats", "length 10 x 20 repeats"} <= set(rows)
    assert rows["length 10 x 20 repeats"]["bit_errors_per_seq"] > 0  # untrained
    assert "memory rows" in rows["length 20 x 10 repeats"]["skipped"]
    pictures = sorted(p.name for p in tmp_path.glob("trace_*.png"))
    assert len(pictures) == 3 and (tmp_path / "generalisation.json").is_file()


def test_dynamic_ngrams_report_follows_the_papers_validation_protocol(tmp_path):
    """The n-grams report scores the paper's 1000 validation sequences (a fixed seed: the same
    sequences every run), with the Bayes-optimal cost on those sequences, the model's gap to it
    and the estimators of shorter order."""
    from rollout.sequence_report import format_table, write_report

    kwargs = {"n": 3, "length": 24}
    env = envs.make("memrl/DynamicNGrams-v0", **kwargs).unwrapped
    cfg = ntm.Config(memory_n=8, memory_m=4, controller_size=8, compile=False)
    torch.manual_seed(0)
    agent = make_agent(cfg, env.observation_space, env.action_space)
    first = write_report(agent, "memrl/DynamicNGrams-v0", kwargs, tmp_path / "a", sequences=4)
    again = write_report(agent, "memrl/DynamicNGrams-v0", kwargs, tmp_path / "b", sequences=4)
    assert first["sequences_per_row"] == 1000 and first["weights"] == "best"
    row = first["rows"][0]
    assert row == again["rows"][0]  # the same validation set
    assert row["gap_bits_per_seq"] == pytest.approx(
        row["cost_bits_per_seq"] - row["bayes_optimal_cost_bits_per_seq"]
    )
    assert row["gap_bits_per_seq"] > 0  # an untrained model is worse than optimal
    by_order = row["bayes_cost_by_context_bits"]
    assert list(by_order) == ["0", "1"]
    assert by_order["0"] > by_order["1"] > row["bayes_optimal_cost_bits_per_seq"]
    assert "gap" in format_table(first)
