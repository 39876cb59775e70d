"""benchmarks/ntm_collapse.py: the head statistics it prints are the heads' real parameters."""

from __future__ import annotations

import json
import math

import pytest
import torch

import envs
from benchmarks.ntm_collapse import (
    ROOT,
    STATISTICS,
    adam_ratio,
    analyse,
    analyse_run,
    describe,
    fixed_batch,
    head_statistics,
    setup,
)
from rollout.checkpoints import save_checkpoint


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
        assert -1 <= head["shift_mean"] <= 1
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


def test_shift_mean_is_the_heads_expected_shift() -> None:
    torch.manual_seed(0)
    _, task, agent = setup(ROOT / "configs" / "ntm_copy.yaml", ["agent.compile=false"], 0)
    batch = fixed_batch(task, size=2)
    m, shifts = agent.core.cfg.memory_m, agent.core.shifts
    with torch.no_grad():  # every head's shift logits: -5 (back), 0 (stay), +5 (forward)
        agent.core.heads.weight[:] = 0.0
        agent.core.heads.bias[:] = 0.0
        for head in range(2):
            start = head * agent.core.address_size + m + 2
            agent.core.heads.bias[start : start + shifts] = torch.tensor([-5.0, 0.0, 5.0])
    stats = head_statistics(agent, batch)
    expected = (math.exp(5) - math.exp(-5)) / (math.exp(5) + 1 + math.exp(-5))
    for head in stats.values():
        assert head["shift_mean"] == pytest.approx(expected, abs=1e-3)


def test_analyse_run_reads_a_run_folder_with_env_overrides(tmp_path) -> None:
    torch.manual_seed(0)
    overrides = ["agent.compile=false", "agent.memory_n=16"]
    cfg, task, agent = setup(ROOT / "configs" / "ntm_copy.yaml", overrides, 0)
    run = tmp_path / "run"
    run.mkdir()
    text = (ROOT / "configs" / "ntm_copy.yaml").read_text()
    text = text.replace("memory_n: 128", "memory_n: 16") + "\n"
    (run / "config.yaml").write_text(text)
    state = {"learner": {"agent": agent.state_dict()}, "counters": {"env_steps": 10}}
    save_checkpoint(run / "checkpoints", 10, state)
    line = analyse_run(run, "latest", ["max_len=3"])
    short = envs.make(cfg.env.id, **{**cfg.env.kwargs, "max_len": 3}).unwrapped
    assert line.startswith(f"{run} at env step 10, env {{'max_len': 3}}: ")
    assert line.endswith(describe(agent, fixed_batch(short)))
    with pytest.raises(SystemExit, match="KEY=VALUE"):
        analyse_run(run, "latest", ["max_len"])
    with pytest.raises(SystemExit, match="unexpected keyword argument 'colour'"):
        analyse_run(run, "latest", ["colour=1"])
    with pytest.raises(SystemExit, match="does not exist"):
        analyse_run(tmp_path / "missing", "latest", [])


def test_collapse_summary_and_store_keep_one_protocol_per_label(tmp_path, monkeypatch):
    from benchmarks import ntm_collapse

    scores = [
        {"update": u, "bit_errors": b}
        for u, b in ((25, 30.0), (50, 0.05), (75, 1.2), (100, 39.0), (125, 0.0))
    ]
    assert ntm_collapse.collapse_summary(scores) == {
        "first_reached_update": 50,
        "scores_after": 3,
        "worst_after": 39.0,
        "above_1_after": 2,
        "above_10_after": 1,
        "last": 0.0,
    }
    never = ntm_collapse.collapse_summary(scores[:1])
    assert never["first_reached_update"] is None and never["worst_after"] is None

    monkeypatch.setattr(ntm_collapse, "RESULTS", tmp_path / "ntm_collapse.json")
    meta = {"config": "configs/ntm_copy.yaml", "overrides": [], "every": 25, "date": "d"}
    ntm_collapse.store("plain", 3, scores, meta)
    ntm_collapse.store("plain", 4, scores[:2], {**meta, "date": "another day"})
    stored = json.loads((tmp_path / "ntm_collapse.json").read_text())["plain"]
    assert sorted(stored["runs"]) == ["3", "4"] and stored["runs"]["3"]["scores"][1] == [50, 0.05]
    with pytest.raises(SystemExit, match="stored with overrides=\\[\\], not \\['a=1'\\]"):
        ntm_collapse.store("plain", 5, scores, {**meta, "overrides": ["a=1"]})
