"""benchmarks/ntm_collapse.py: the head statistics it prints are the heads' real parameters."""

from __future__ import annotations

import math

import pytest
import torch

from benchmarks.ntm_collapse import (
    ROOT,
    STATISTICS,
    adam_ratio,
    analyse,
    fixed_batch,
    head_statistics,
    setup,
)


@pytest.mark.parametrize("order", ["read_first", "write_first"])
def test_head_statistics_are_in_their_ranges_and_leave_the_agent_as_it_was(order: str) -> None:
    torch.manual_seed(0)
    overrides = [f"agent.order={order}", "agent.compile=false", "agent.memory_n=16"]
    _, task, agent = setup(ROOT / "configs" / "ntm_copy.yaml", overrides, 0)
    batch = fixed_batch(task, size=4)
    before = agent.score_examples(batch)["bit_errors"]
    stats = head_statistics(agent, batch)
    assert set(stats) == {"read", "write"}
    for head in stats.values():
        assert set(head) == set(STATISTICS)
        assert head["beta"] >= 0 and 0 < head["gate"] < 1 and head["gamma"] >= 1
        assert 1 / 3 - 1e-6 <= head["shift_max"] <= 1  # 3 shifts
        assert 0 <= head["entropy"] <= math.log(16) + 1e-4
    assert "_address" not in vars(agent.core)  # the spy is gone
    assert torch.equal(agent.score_examples(batch)["bit_errors"], before)


def test_adam_ratio_after_one_step_is_one_minus_beta1_over_root_one_minus_beta2() -> None:
    weight = torch.nn.Parameter(torch.ones(3))
    optimizer = torch.optim.Adam([weight], lr=0.1)
    (weight * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    optimizer.step()
    assert adam_ratio(optimizer.state_dict()) == pytest.approx(0.1 / math.sqrt(0.001), abs=1e-3)
    assert adam_ratio(torch.optim.SGD([weight], lr=0.1).state_dict()) is None


def test_analyse_refuses_a_missing_file_and_a_pickle_of_code(tmp_path) -> None:
    config = ROOT / "configs" / "ntm_copy.yaml"
    with pytest.raises(SystemExit, match="no snapshot file"):
        analyse(tmp_path / "missing.pt", config, [])
    bad = tmp_path / "bad.pt"
    torch.save([(1, {"w": torch.zeros(1)}, {"state": {}, "hook": print})], bad)
    with pytest.raises(SystemExit, match="not a snapshot file"):
        analyse(bad, config, [])
