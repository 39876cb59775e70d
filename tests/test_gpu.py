"""The learner on a CUDA GPU computes what it computes on the CPU, and what it saves loads on a
machine without one; its updates captured as CUDA graphs equal ordinary updates. Skipped where torch sees no GPU (CI); run on a GPU machine with
`pytest tests/test_gpu.py tests/test_train_smoke.py` (the smoke tests put the learner on the GPU
there, since learner.device defaults to auto)."""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pytest
import torch

from agents import Learner, dqn, lstm, make_agent, ntm, reinforce
from rollout.checkpoints import load_checkpoint, save_checkpoint
from rollout.config import LearnerConfig
from tests.test_cuda_graphs import BATCHES as GRAPH_BATCHES
from tests.test_cuda_graphs import (
    assert_guard_keeps_everything,
    assert_same_learners,
    copy_batch,
    twin_learners,
)

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

BITS = 4


@pytest.fixture(autouse=True)
def float32_math():
    """Full float32 on the GPU (cuDNN may otherwise use TF32 in the LSTM), so that it can be
    compared with the CPU."""
    before = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before


def rl_batch() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "obs": rng.normal(size=(5, 4, 3)).astype(np.float32),
        "actions": rng.integers(0, 2, (5, 4)),
        "rewards": rng.normal(size=(5, 4)).astype(np.float32),
        "mask": np.ones((5, 4), np.float32),
    }


def dqn_batch(obs_shape: tuple[int, ...], dtype: type = np.float32) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    if dtype == np.uint8:
        obs = rng.integers(0, 256, (2, 32, *obs_shape)).astype(np.uint8)
    else:
        obs = rng.normal(size=(2, 32, *obs_shape)).astype(np.float32)
    return {
        "obs": obs[0],
        "next_obs": obs[1],
        "actions": rng.integers(0, 2, 32),
        "returns": rng.normal(size=32).astype(np.float32),
        "discounts": np.full(32, 0.97, np.float32),
    }


SEQUENCE_SPACES = (gym.spaces.Box(0, 1, (BITS + 1,), np.float32), gym.spaces.MultiBinary(BITS))
RL_SPACES = (gym.spaces.Box(-5, 5, (3,), np.float32), gym.spaces.Discrete(2))
TINY_NTM = ntm.Config(memory_n=16, memory_m=8, controller_size=16)
CASES = {
    "ntm (compiled)": (TINY_NTM, SEQUENCE_SPACES, lambda: copy_batch(3)),
    "ntm (eager)": (
        dataclasses.replace(TINY_NTM, compile=False),
        SEQUENCE_SPACES,
        lambda: copy_batch(3),
    ),
    "lstm": (lstm.Config(hidden_size=16, layers=2), SEQUENCE_SPACES, lambda: copy_batch(3)),
    "reinforce": (reinforce.Config(hidden=[16]), RL_SPACES, rl_batch),
    "dqn": (dqn.Config(hidden=[16]), RL_SPACES, lambda: dqn_batch((3,))),
}


def learner_pair(cfg, spaces, **learner_kwargs) -> tuple[Learner, Learner]:
    """Two learners over agents with the same initial weights: one on the CPU in float32, one on
    the GPU with the default mixed-precision setting."""
    torch.manual_seed(0)
    cpu_agent = make_agent(cfg, *spaces)
    gpu_agent = make_agent(cfg, *spaces)
    gpu_agent.load_state_dict(cpu_agent.state_dict())
    cpu_cfg = LearnerConfig(device="cpu", mixed_precision="off", **learner_kwargs)
    return Learner(cpu_agent, cpu_cfg), Learner(
        gpu_agent, LearnerConfig(device="cuda", **learner_kwargs)
    )


@pytest.mark.parametrize("case", list(CASES))
def test_gpu_learner_updates_match_the_cpu(case):
    """Three updates on the GPU land on the CPU's weights (same batch, same initial weights).
    Plain SGD, so a weight differs by lr x the gradients' rounding (Adam would turn a near-zero
    gradient of either sign into a full step)."""
    cfg, spaces, make_batch = CASES[case]
    cpu, gpu = learner_pair(cfg, spaces, optimizer="sgd", lr=0.1)
    assert all(p.is_cuda for p in gpu.agent.parameters())
    batch = make_batch()
    for _ in range(3):
        m_cpu, m_gpu = cpu.update(batch), gpu.update(batch)
        assert m_gpu["loss"] == pytest.approx(m_cpu["loss"], rel=1e-3, abs=1e-5)
    for name, value in gpu.agent.state_dict().items():
        torch.testing.assert_close(
            value.cpu(), cpu.agent.state_dict()[name], atol=1e-4, rtol=1e-3, msg=name
        )


def test_gpu_checkpoint_loads_on_a_cpu_machine(tmp_path):
    """A checkpoint written by a GPU learner loads with map_location cpu into a CPU learner,
    whose outputs then equal the GPU agent's moved to the CPU exactly."""
    cfg, spaces, make_batch = CASES["ntm (compiled)"]
    _, gpu = learner_pair(cfg, spaces)
    batch = make_batch()
    gpu.update(batch)
    path = save_checkpoint(tmp_path, 1, {"learner": gpu.state_dict()})
    state = load_checkpoint(path)
    assert all(not t.is_cuda for t in state["learner"]["agent"].values())
    restored = Learner(make_agent(cfg, *spaces), LearnerConfig(device="cpu"))
    restored.load_state_dict(state["learner"])
    assert restored.updates == 1
    inputs = torch.as_tensor(batch["inputs"])
    with torch.no_grad():
        want, _ = gpu.agent.cpu().core(inputs)
        got, _ = restored.agent.core(inputs)
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    restored.update(batch)  # the optimiser state came along too


def test_nature_cnn_trains_in_bf16_on_the_gpu():
    """learner.mixed_precision auto is bf16 on CUDA: the Nature CNN's Q-values stay within bf16
    rounding of the float32 CPU learner's, and its update is finite."""
    space = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    cpu, gpu = learner_pair(dqn.Config(hidden=[]), (space, gym.spaces.Discrete(6)))
    assert gpu.mixed_precision
    batch = dqn_batch((4, 84, 84), np.uint8)
    obs = torch.as_tensor(batch["obs"])
    with torch.no_grad():
        q_gpu = gpu.agent.q_values(obs.cuda()).float().cpu()
        q_cpu = cpu.agent.q_values(obs)
    scale = q_cpu.abs().max()
    assert (q_gpu - q_cpu).abs().max() <= 0.05 * scale
    metrics = gpu.update(batch)
    assert np.isfinite(metrics["loss"]) and np.isfinite(metrics["grad_norm"])


GRAPH_CASES = {
    "ntm (compiled)": dataclasses.replace(TINY_NTM, compile=True),
    "ntm (eager)": dataclasses.replace(TINY_NTM, compile=False),
    "lstm": lstm.Config(hidden_size=16, layers=2),
}


@pytest.mark.parametrize("case", list(GRAPH_CASES))
def test_cuda_graph_updates_match_ordinary_updates(case):
    """learner.cuda_graphs: two batch shapes alternating, so each is captured after its first
    (ordinary) update and replayed after that; the weights and Adam's state end where ordinary
    updates take them."""
    plain, graphed = twin_learners("cuda", GRAPH_CASES[case], capture=True)
    for batch in GRAPH_BATCHES:
        m_plain, m_graphed = plain.update(batch), graphed.update(batch)
        assert m_graphed.keys() == m_plain.keys()
        assert m_graphed["loss"] == pytest.approx(m_plain["loss"], rel=1e-4, abs=1e-6)
    assert not graphed.graphed.failed
    assert len(graphed.graphed.graphs) == 2
    assert all(graph is not None for graph, _, _ in graphed.graphed.graphs.values())
    assert_same_learners(plain, graphed, atol=1e-5, rtol=1e-4)


def test_cuda_graph_guard_puts_everything_back():
    _, graphed = twin_learners("cuda", GRAPH_CASES["ntm (compiled)"], capture=True)
    for batch in GRAPH_BATCHES[:3]:
        graphed.update(batch)
    assert_guard_keeps_everything(graphed)


def test_cuda_graphs_are_recaptured_after_a_checkpoint_reload():
    """load_state_dict replaces Adam's state tensors: the graphs that wrote the old ones go."""
    plain, graphed = twin_learners("cuda", GRAPH_CASES["ntm (compiled)"], capture=True)
    for batch in GRAPH_BATCHES[:4]:
        plain.update(batch)
        graphed.update(batch)
    graphed.load_state_dict(plain.state_dict())
    assert not graphed.graphed.graphs
    for batch in GRAPH_BATCHES:
        plain.update(batch)
        graphed.update(batch)
    assert len(graphed.graphed.graphs) == 2
    assert_same_learners(plain, graphed, atol=1e-5, rtol=1e-4)
