"""benchmarks/ntm_sort_heads.py: the priority-sort head figures on hand-made traces."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import envs
from agents import make_agent, ntm
from benchmarks.ntm_sort_heads import analyse, rank_correlation, unwrap_rows


class SortingByPriority:
    """A trace of the paper's Figure 17 algorithm, made by hand: input i is written to the row
    given by its priority's rank (highest -> row 0), output step j reads row j, and the outputs
    are the targets (so no wrong bit)."""

    def __init__(self, task: envs.algorithmic.PrioritySort, rows: int = 32, first: int = 0) -> None:
        self.task, self.rows, self.first = task, rows, first  # rank 0 goes to row `first`

    def trace(self, inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        n, k, bits = self.task.num_inputs, self.task.num_outputs, self.task.bits
        steps, batch = inputs.shape[:2]
        priority = inputs[:n, :, bits].numpy()
        rank = np.argsort(np.argsort(-priority, axis=0), axis=0)  # 0 = highest
        writes = torch.zeros(steps, batch, 1, self.rows)
        reads = torch.zeros(steps, batch, 1, self.rows)
        for b in range(batch):
            for i in range(n):
                writes[i, b, 0, (self.first + rank[i, b]) % self.rows] = 1.0
            for j in range(k):
                reads[n + 1 + j, b, 0, (self.first + j) % self.rows] = 1.0
        order = np.argsort(-priority, axis=0, kind="stable")[:k]
        logits = torch.full((steps, batch, bits), -5.0)
        data = inputs[:n, :, :bits].numpy()
        for b in range(batch):
            for j in range(k):
                logits[n + 1 + j, b] = torch.as_tensor(data[order[j, b], b] * 10.0 - 5.0)
        return {"logits": logits, "read_weights": reads, "write_weights": writes}


def test_rank_correlation():
    x = np.array([0.1, 0.5, -0.3, 0.9])
    assert rank_correlation(x, 2 * x + 1) == 1.0
    assert rank_correlation(x, -x) == -1.0
    assert rank_correlation(x, np.array([0, 0, 0, 1])) == rank_correlation(x, x > 0.7)
    assert rank_correlation(x, np.zeros(4)) == 0.0


@pytest.mark.parametrize("first", [0, 25])  # 25: rows 25..31 then 0..12, across the wrap
def test_analyse_recognises_writes_by_priority_and_reads_in_order(first):
    task = envs.make("memrl/PrioritySort-v0").unwrapped
    result = analyse(SortingByPriority(task, first=first), task, sequences=16)
    (head,) = result["write_heads"]
    assert head["row_numbered_0"] == first
    assert head["rank_corr_address_priority"] == -1.0  # higher priority -> lower row
    assert head["rank_corr_output_vectors"] == -1.0
    assert head["mean_peak_weight"] == 1.0 and head["distinct_rows_per_sequence"] == 20
    assert result["read_heads"][0]["reads_target_row"] == 1.0
    assert result["any_read_head_on_target_row"] == 1.0
    assert result["wrong_bits_per_seq"] == 0.0
    assert result["wrong_bits_by_output_position"] == [0.0] * 16


def test_unwrap_rows_starts_after_the_widest_unused_run():
    rows, start = unwrap_rows(np.array([126, 127, 0, 1, 3]), 128)
    assert start == 126 and rows.tolist() == [0, 1, 2, 3, 5]
    rows, start = unwrap_rows(np.array([10, 12, 11]), 128)
    assert start == 10 and rows.tolist() == [0, 2, 1]


def test_analyse_runs_on_an_ntm_with_several_heads():
    torch.manual_seed(0)
    task = envs.make("memrl/PrioritySort-v0", num_inputs=6, num_outputs=4).unwrapped
    cfg = ntm.Config(memory_n=16, memory_m=8, controller_size=16, read_heads=2, write_heads=3)
    agent = make_agent(
        ntm.Config(**{**cfg.__dict__, "compile": False}), task.observation_space, task.action_space
    )
    result = analyse(agent, task, sequences=8)
    assert len(result["write_heads"]) == 3 and len(result["read_heads"]) == 2
    assert len(result["wrong_bits_by_output_position"]) == 4
    total = sum(result["wrong_bits_by_output_position"])
    assert abs(total - result["wrong_bits_per_seq"]) < 0.05
    assert 0 <= result["any_read_head_on_target_row"] <= 1
    assert result["_arrays"]["address"].shape == (6, 8, 3)
