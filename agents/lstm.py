"""The LSTM baseline of Graves, Wayne & Danihelka 2014: a stacked LSTM (3 x 256) with a linear
read-out, trained on the same sequences as the NTM."""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import torch
from torch import nn

from agents.sequence import RecurrentCore, SequenceAgent, State


@dataclass
class Config:
    """LSTM baseline, Graves et al. 2014 (section 4): 3 layers of 256 units."""

    name: str = "lstm"
    hidden_size: int = 256
    layers: int = 3
    batch_size: int = 16  # sequences per training batch
    # dropout on the non-recurrent connections (between layers and before the output), as
    # Zaremba & Sutskever train their LSTMs; 0 = none. Training only: acting is deterministic.
    dropout: float = 0.0

    def validate(self) -> None:
        if self.hidden_size < 1 or self.layers < 1 or self.batch_size < 1:
            raise ValueError("hidden_size, layers and batch_size must be >= 1")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


class LSTMCore(RecurrentCore):
    def __init__(self, cfg: Config, input_size: int, output_size: int):
        super().__init__()
        self.cfg = cfg
        dropout = cfg.dropout if cfg.layers > 1 else 0.0
        self.lstm = nn.LSTM(input_size, cfg.hidden_size, num_layers=cfg.layers, dropout=dropout)
        self.dropout = nn.Dropout(cfg.dropout)
        self.output = nn.Linear(cfg.hidden_size, output_size)

    def initial_state(self, batch_size: int) -> State:
        device = self.output.weight.device
        zeros = torch.zeros(batch_size, self.cfg.layers, self.cfg.hidden_size, device=device)
        return zeros, zeros

    def forward(
        self, inputs: torch.Tensor, state: State | None = None
    ) -> tuple[torch.Tensor, State]:
        # the whole sequence in one fused nn.LSTM call; state is stored batch first
        state = self.initial_state(inputs.shape[1]) if state is None else state
        h, c = (s.transpose(0, 1).contiguous() for s in state)
        out, (h, c) = self.lstm(inputs, (h, c))
        return self.output(self.dropout(out)), (h.transpose(0, 1), c.transpose(0, 1))

    def step(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        logits, state = self.forward(x.unsqueeze(0), state)
        return logits[0], state


class LSTMAgent(SequenceAgent):
    def __init__(self, cfg: Config, observation_space: gym.Space, action_space: gym.Space):
        super().__init__(cfg, observation_space, action_space)
        self.core = LSTMCore(cfg, self.input_size, self.output_size)
