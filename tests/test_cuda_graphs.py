"""learner.cuda_graphs: the update a CUDA graph replays, run here without a graph on the CPU,
equals the learner's ordinary update, and keeps the non-finite guard exact. The capture itself
is tested on a GPU (tests/test_gpu.py)."""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pytest
import torch

from agents import AgentError, Learner, NonFiniteLossError, make_agent, ntm, reinforce
from agents.cuda_graphs import GraphedUpdate
from rollout.config import ConfigError, LearnerConfig, load_config

BITS = 4
SPACES = (gym.spaces.Box(0, 1, (BITS + 1,), np.float32), gym.spaces.MultiBinary(BITS))
TINY_NTM = ntm.Config(memory_n=16, memory_m=8, controller_size=16, compile=False)


def copy_batch(length: int, batch: int = 8, seed: int = 0) -> dict[str, np.ndarray]:
    """Copy sequences of `length` BITS-bit vectors: [2L+1, B, .] inputs/targets, [2L+1, B] mask."""
    seq = np.random.default_rng(seed).integers(0, 2, (length, batch, BITS)).astype(np.float32)
    steps = 2 * length + 1
    inputs = np.zeros((steps, batch, BITS + 1), np.float32)
    inputs[:length, :, :BITS] = seq
    inputs[length, :, BITS] = 1.0
    targets = np.zeros((steps, batch, BITS), np.float32)
    targets[length + 1 :] = seq
    mask = np.zeros((steps, batch), np.float32)
    mask[length + 1 :] = 1.0
    return {"inputs": inputs, "targets": targets, "mask": mask}


# two shapes, alternating: each shape's first batch is an ordinary update, the rest replay
BATCHES = [copy_batch(length, seed=i) for i, length in enumerate([3, 5, 3, 5, 3, 5, 3])]


def twin_learners(device: str, cfg=TINY_NTM, capture: bool = False) -> tuple[Learner, Learner]:
    """Learners over agents with the same weights; the second updates through GraphedUpdate."""
    torch.manual_seed(0)
    plain = Learner(make_agent(cfg, *SPACES), LearnerConfig(device=device, cuda_graphs="off"))
    agent = make_agent(cfg, *SPACES)
    agent.load_state_dict(plain.agent.state_dict())
    if capture:
        graphed = Learner(agent, LearnerConfig(device=device, cuda_graphs="on"))
    else:
        graphed = Learner(agent, LearnerConfig(device=device, cuda_graphs="off"))
        graphed.graphed = GraphedUpdate(agent, graphed.optimizer, 10.0, capture=False)
        graphed.optimizer.zero_grad(set_to_none=False)
    return plain, graphed


def assert_same_learners(a: Learner, b: Learner, atol: float = 0.0, rtol: float = 0.0) -> None:
    for name, value in a.agent.state_dict().items():
        torch.testing.assert_close(
            b.agent.state_dict()[name].cpu(), value.cpu(), atol=atol, rtol=rtol, msg=name
        )
    for p, q in zip(a.optimizer.param_groups[0]["params"], b.optimizer.param_groups[0]["params"]):
        for key, value in a.optimizer.state[p].items():
            torch.testing.assert_close(
                b.optimizer.state[q][key].cpu().float(),
                value.cpu().float(),
                atol=atol,
                rtol=rtol,
                msg=key,
            )


def test_graphed_update_equals_the_ordinary_update_on_the_cpu():
    plain, graphed = twin_learners("cpu")
    for batch in BATCHES:
        m_plain, m_graphed = plain.update(batch), graphed.update(batch)
        assert m_graphed.keys() == m_plain.keys()
        for key, value in m_plain.items():
            assert m_graphed[key] == pytest.approx(value, rel=1e-6, abs=1e-7), key
    assert len(graphed.graphed.graphs) == 2 and graphed.updates == len(BATCHES)
    assert_same_learners(plain, graphed, atol=1e-6, rtol=1e-5)


def assert_guard_keeps_everything(graphed: Learner) -> None:
    """A NaN batch of a shape that has a graph: NonFiniteLossError, and the weights, the
    optimiser's state and the update count are what they were, bit for bit."""
    bad = copy_batch(3)
    bad["targets"][-1, 0, 0] = np.nan
    assert graphed.graphed.ready(graphed.to_tensors(bad))
    before = {k: v.clone() for k, v in graphed.agent.state_dict().items()}
    state = {
        (i, k): v.clone()
        for i, p in enumerate(graphed.optimizer.param_groups[0]["params"])
        for k, v in graphed.optimizer.state[p].items()
    }
    updates = graphed.updates
    with pytest.raises(NonFiniteLossError, match="the loss is nan .* no update was applied"):
        graphed.update(bad)
    assert graphed.updates == updates
    for k, v in graphed.agent.state_dict().items():
        assert torch.equal(v, before[k]), k
    for i, p in enumerate(graphed.optimizer.param_groups[0]["params"]):
        for k, v in graphed.optimizer.state[p].items():
            assert torch.equal(v, state[i, k]), k
    graphed.update(BATCHES[0])  # and it goes on


def test_graphed_update_guard_puts_everything_back_on_the_cpu():
    _, graphed = twin_learners("cpu")
    for batch in BATCHES[:3]:
        graphed.update(batch)
    assert_guard_keeps_everything(graphed)


def test_cuda_graphs_settings_are_checked():
    space_o, space_a = gym.spaces.Box(-1, 1, (3,), np.float32), gym.spaces.Discrete(2)
    with pytest.raises(AgentError, match="runs on cpu"):
        Learner(make_agent(TINY_NTM, *SPACES), LearnerConfig(device="cpu", cuda_graphs="on"))
    agent = make_agent(reinforce.Config(hidden=[8]), space_o, space_a)
    with pytest.raises(AgentError, match="agent 'reinforce' has no graph-safe loss"):
        Learner(agent, LearnerConfig(device="cpu", cuda_graphs="on"))
    # auto falls back quietly: on the CPU there is nothing to capture
    learner = Learner(make_agent(TINY_NTM, *SPACES), LearnerConfig(device="cpu"))
    assert learner.graphed is None
    # YAML reads a bare `on` as true; it means 'on' here, as for learner.mixed_precision
    assert (
        load_config("configs/dqn_pong.yaml", ["learner.mixed_precision=on"]).learner.mixed_precision
        == "on"
    )
    assert (
        load_config("configs/ntm_copy.yaml", ["learner.cuda_graphs=off"]).learner.cuda_graphs
        == "off"
    )
    with pytest.raises(ConfigError, match="needs 'learner.optimizer: adam'"):
        load_config("configs/ntm_copy.yaml", ["learner.cuda_graphs=on", "learner.optimizer=sgd"])
    with pytest.raises(ConfigError, match="constant lr"):
        load_config(
            "configs/ntm_copy.yaml",
            [
                "learner.cuda_graphs=on",
                "learner.lr_schedule=cosine",
                "learner.lr_decay_updates=10",
            ],
        )


def test_graph_safe_flag_is_set_by_sequence_agents_only():
    assert make_agent(TINY_NTM, *SPACES).graphable
    assert make_agent(dataclasses.replace(TINY_NTM, compile=True), *SPACES).graphable
    space_o, space_a = gym.spaces.Box(-1, 1, (3,), np.float32), gym.spaces.Discrete(2)
    assert not make_agent(reinforce.Config(hidden=[8]), space_o, space_a).graphable


def test_checkpoints_move_between_optimizer_implementations():
    """A GPU learner with CUDA graphs runs a capturable Adam, a CPU learner a fused one: each loads
    the other's state and keeps its own implementation (torch would take the saved one, and a
    capturable Adam refuses CPU tensors: training could not go on on a CPU machine)."""
    torch.manual_seed(0)
    source = Learner(make_agent(TINY_NTM, *SPACES), LearnerConfig(device="cpu"))
    source.update(BATCHES[0])
    state = source.state_dict()
    for group in state["optimizer"]["param_groups"]:  # as a graphed GPU learner saves it
        group.update(fused=None, foreach=True, capturable=True)
    target = Learner(make_agent(TINY_NTM, *SPACES), LearnerConfig(device="cpu"))
    target.load_state_dict(state)
    group = target.optimizer.param_groups[0]
    assert group["fused"] and not group["capturable"] and group["lr"] == source.cfg.lr
    target.update(BATCHES[1])
    source.update(BATCHES[1])
    assert_same_learners(source, target)


def test_a_failed_capture_warns_and_goes_on_with_ordinary_updates(monkeypatch, caplog):
    """A capture that raises (an op that waits on the device, say) leaves the learner on
    ordinary updates, which then match a learner that never tried, with one warning."""

    class FailingCapture:
        def __init__(self, *args, **kwargs):
            pass

        def __enter__(self):
            raise RuntimeError("operation not permitted when stream is capturing")

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(torch.cuda, "graph_pool_handle", lambda: None)
    monkeypatch.setattr(torch.cuda, "CUDAGraph", lambda: None)
    monkeypatch.setattr(torch.cuda, "graph", FailingCapture)
    plain, graphed = twin_learners("cpu")
    graphed.graphed = GraphedUpdate(graphed.agent, graphed.optimizer, 10.0, capture=True)
    with caplog.at_level("WARNING", logger="agents.cuda_graphs"):
        for batch in BATCHES:
            m_plain, m_graphed = plain.update(batch), graphed.update(batch)
            assert m_graphed == pytest.approx(m_plain, rel=1e-6, abs=1e-7)
    assert graphed.graphed.failed and not graphed.graphed.graphs
    assert caplog.text.count("could not capture") == 1
    assert "operation not permitted" in caplog.text and "cuda_graphs=off" in caplog.text
    assert_same_learners(plain, graphed, atol=1e-6, rtol=1e-5)
