"""End-To-End Memory Networks (Sukhbaatar, Szlam, Weston & Fergus 2015, arXiv:1503.08895) for
bAbI question answering, with the paper's bAbI choices: position encoding (PE), temporal
encoding with random noise (RN), adjacent weight tying, linear start (LS) and 3 hops.

Inputs (a dataset task's batch, batch axis 0): `stories` [B, M, S] word ids, oldest sentence
first with zero rows after the story, `questions` [B, S], `answers` [B] (answer word ids, the
classes of the output layer) and `story_lengths` [B]. Id 0 pads. As an episodic agent, `act`
reads the same story and question from one int array [B, M + 1, S] (story rows, then the
question), the observation of `memrl/BAbI-v0`.

Adjacent tying: hop k reads memory with A^k = C^(k-1), writes with C^k, the question is
embedded with B = A^1 and the answer layer is W = (C^K)^T, so K hops use K + 1 embedding tables
(and K + 1 temporal tables). Temporal encoding indexes memories by recency (0 = the latest
sentence), so a fact's time code does not depend on how long the story is.

Linear start: the attention softmax is removed for the first `linear_start_epochs`
evaluations (the trainer evaluates once per epoch with `run.eval_every_epochs: 1`); the count
is a buffer, so checkpoints, resumed runs and the best weights keep their phase. The paper's
LS learning rate (0.005 against 0.01) is obtained by scaling the loss by `linear_start_lr_scale`
during LS: with plain SGD that is exactly a smaller learning rate (the gradient clipping sees
the scaled gradient).

New words at question time (`unknown_words: true`, after Weston et al. 2014's unseen-word
experiments): words the model never saw in a training batch are replaced, story by story, by
placeholder ids <new 0>, <new 1>, ... in order of first appearance, with their own learned
embeddings and output rows; an answered placeholder is mapped back to the story's word. The
placeholders are learned by simulating new words during training: in each training example,
each word type is treated as new with probability `unknown_word_rate` and given a random
placeholder (so every placeholder is trained, not only the first few). Which words were seen is
a buffer filled by `loss`, so it travels with the weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from agents.base import Agent, AgentError, SupervisedSpec

NEG = -1e9  # attention score of padded memories (finite, so an empty story gives no NaN)


@dataclass
class Config:
    """MemN2N, Sukhbaatar et al. 2015 (section 4, bAbI): embedding 50, 3 hops, PE, temporal
    encoding with 10% random noise, adjacent tying, linear start, batch 32."""

    name: str = "memn2n"
    embedding_size: int = 50
    hops: int = 3
    position_encoding: bool = True
    temporal_encoding: bool = True
    random_noise: float = 0.1  # up to this fraction of empty memories inserted at training time
    linear_start_epochs: int = 20  # evaluations (epochs) without the attention softmax; 0: none
    linear_start_lr_scale: float = 0.5  # loss scale during LS: lr 0.005 under SGD at lr 0.01
    init_std: float = 0.1
    batch_size: int = 32
    # the reference code sums the loss over the batch (its lr 0.01 and gradient clip 40 are
    # for the summed loss); false: the batch mean
    sum_loss: bool = True
    unknown_words: bool = False
    unknown_word_rate: float = 0.2  # training: chance a word type is treated as new
    placeholders: int = 20  # distinct new words per story that get a placeholder

    def validate(self) -> None:
        if self.embedding_size < 1 or self.hops < 1 or self.batch_size < 1:
            raise ValueError("embedding_size, hops and batch_size must be >= 1")
        if not 0.0 <= self.random_noise <= 1.0 or not 0.0 <= self.unknown_word_rate <= 1.0:
            raise ValueError("random_noise and unknown_word_rate must be in [0, 1]")
        if self.linear_start_epochs < 0 or self.linear_start_lr_scale <= 0:
            raise ValueError("linear_start_epochs must be >= 0, linear_start_lr_scale > 0")
        if self.placeholders < 1:
            raise ValueError("placeholders must be >= 1")


def position_encoding(tokens: torch.Tensor, dim: int) -> torch.Tensor:
    """Weights [..., S, dim] of the words of sentences `tokens` [..., S] (id 0 pads):
    l_kj = (1 - j/J) - (k/d)(1 - 2j/J) for word j = 1..J of a J-word sentence and embedding
    component k = 1..d (the paper's eq. in section 4.1); 0 on padding."""
    present = (tokens != 0).to(torch.float32)
    length = present.sum(-1, keepdim=True).clamp(min=1.0)  # J, per sentence
    j = torch.arange(1, tokens.shape[-1] + 1, device=tokens.device, dtype=torch.float32)
    k = torch.arange(1, dim + 1, device=tokens.device, dtype=torch.float32) / dim
    a = (j / length)[..., None]  # j/J [..., S, 1]
    return ((1.0 - a) - k * (1.0 - 2.0 * a)) * present[..., None]


class MemN2NAgent(Agent):
    """MemN2N over a fixed vocabulary (the action space): see the module docstring."""

    def __init__(self, cfg: Config, observation_space: gym.Space, action_space: gym.Space):
        super().__init__(cfg, observation_space, action_space)
        cfg.validate()
        if not isinstance(action_space, gym.spaces.Discrete):
            raise AgentError(
                f"memn2n answers with a word id: it needs a Discrete action space, "
                f"got {action_space}"
            )
        shape = getattr(observation_space, "shape", None)
        if not isinstance(observation_space, gym.spaces.Box) or shape is None or len(shape) != 2:
            raise AgentError(
                "memn2n reads a story and a question as word ids: it needs a 2-D int Box "
                f"observation [memory_size + 1, sentence_size] (memrl/BAbI-v0), got "
                f"{observation_space}"
            )
        self.vocab = int(action_space.n)
        self.memory_size = int(shape[0]) - 1
        extra = cfg.placeholders if cfg.unknown_words else 0
        d = cfg.embedding_size
        # time slots: the memory plus room for the empty memories of random noise
        slots = self.memory_size + int(np.ceil(cfg.random_noise * self.memory_size))
        self.embeddings = nn.Parameter(
            torch.randn(cfg.hops + 1, self.vocab + extra, d) * cfg.init_std
        )
        self.temporal = nn.Parameter(torch.randn(cfg.hops + 1, slots, d) * cfg.init_std)
        self.register_buffer("evaluations", torch.zeros((), dtype=torch.long))
        self.register_buffer("seen", torch.zeros(self.vocab, dtype=torch.bool))

    def data_spec(self) -> SupervisedSpec:
        return SupervisedSpec(batch_size=self.cfg.batch_size)

    def check_task(self, task: Any, env_id: str) -> None:
        if not hasattr(task, "dataset"):
            raise AgentError(
                f"memn2n trains on a dataset task's questions, but env '{env_id}' has no "
                "dataset(split); use memrl/BAbI-v0"
            )

    # ------------------------------------------------------------------ linear start
    @property
    def linear(self) -> bool:
        """True while linear start removes the attention softmax."""
        return int(self.evaluations) < self.cfg.linear_start_epochs

    def on_evaluation(self, result: dict[str, float]) -> None:
        self.evaluations += 1  # one evaluation per epoch with run.eval_every_epochs: 1

    # ------------------------------------------------------------------ the network
    def _encode(self, tokens: torch.Tensor, hop: int) -> torch.Tensor:
        """Sentences [..., S] -> [..., d] with embedding table `hop` (PE or bag of words)."""
        words = F.embedding(tokens, self.embeddings[hop])
        if self.cfg.position_encoding:
            weights = position_encoding(tokens, self.cfg.embedding_size)
        else:
            weights = (tokens != 0).to(words.dtype)[..., None]
        return (words * weights).sum(-2)

    def _times(self, lengths: torch.Tensor, noise: bool) -> torch.Tensor:
        """Temporal slot [B, M] of each memory row: its recency (the latest sentence 0). With
        `noise`, up to `random_noise` * L empty memories are inserted at random places among a
        story's L sentences, so the recencies skip the empty slots."""
        b, m = lengths.shape[0], self.memory_size
        device, slots = lengths.device, self.temporal.shape[1]
        row = torch.arange(m, device=device)[None, :]
        recency = (lengths[:, None] - 1 - row).clamp(min=0)  # [B, M]
        if not noise or self.cfg.random_noise <= 0:
            return recency.clamp(max=slots - 1)
        extra = torch.ceil(self.cfg.random_noise * lengths.float())
        empty = (torch.rand(b, device=device) * (extra + 1)).floor().long()  # 0..extra
        keys = torch.rand(b, slots, device=device)
        span = torch.arange(slots, device=device)[None, :]
        keys = torch.where(span < (lengths + empty)[:, None], keys, 2.0)  # slots past L + n: never
        kept = keys.argsort(1).argsort(1) < lengths[:, None]  # L random slots among L + n
        ordered = torch.where(kept, span, slots).sort(1).values[:, :m]  # kept slots, ascending
        return ordered.gather(1, recency).clamp(max=slots - 1)

    def forward(
        self,
        stories: torch.Tensor,
        questions: torch.Tensor,
        lengths: torch.Tensor,
        noise: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(answer logits [B, vocab (+ placeholders)], attention [B, hops, M])."""
        valid = torch.arange(stories.shape[1], device=stories.device)[None, :] < lengths[:, None]
        times = self._times(lengths, noise)
        memories = [self._encode(stories, h) for h in range(self.cfg.hops + 1)]
        if self.cfg.temporal_encoding:
            memories = [mem + self.temporal[h][times] for h, mem in enumerate(memories)]
        u = self._encode(questions, 0)
        attention = []
        for hop in range(self.cfg.hops):
            scores = torch.einsum("bmd,bd->bm", memories[hop], u)
            if self.linear:
                p = scores * valid
            else:
                p = torch.softmax(scores.masked_fill(~valid, NEG), dim=1) * valid
            u = u + torch.einsum("bm,bmd->bd", p, memories[hop + 1])
            attention.append(p)
        return u @ self.embeddings[self.cfg.hops].T, torch.stack(attention, 1)

    # ------------------------------------------------------------------ new words
    def _placeholders(
        self,
        stories: torch.Tensor,
        questions: torch.Tensor,
        answers: torch.Tensor,
        new: torch.Tensor,
        shuffle: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Replace the word types marked `new` [B, vocab] by per-story placeholder ids (vocab +
        order of first appearance; with `shuffle`, a random placeholder per new word, so that
        training reaches every placeholder and not only the first few). Returns the stories,
        questions and answers so mapped and `words` [B, placeholders]: the word id each
        placeholder stands for (or the unknown id 1)."""
        b, v, p = stories.shape[0], self.vocab, self.cfg.placeholders
        tokens = torch.cat([stories.flatten(1), questions], 1)
        n = tokens.shape[1]
        position = torch.arange(n, device=tokens.device).expand(b, n)
        marked = new.gather(1, tokens) & (tokens != 0)
        first = torch.full((b, v), n, device=tokens.device, dtype=torch.long).scatter_reduce(
            1, tokens, torch.where(marked, position, n), "amin"
        )
        rank = first.argsort(1).argsort(1)  # new types first, in order of first appearance
        placed = (first < n) & (rank < p)
        if shuffle:  # placeholder order -> a random permutation of the placeholders, per story
            order = torch.rand(b, p, device=tokens.device).argsort(1)
            rank = torch.where(placed, order.gather(1, rank.clamp(max=p - 1)), rank)
        ids = torch.arange(v, device=tokens.device).expand(b, v)
        mapping = torch.where(placed, v + rank, ids)
        words = torch.ones(b, p + 1, dtype=torch.long, device=tokens.device)
        words.scatter_(1, torch.where(placed, rank, p), ids)
        mapped = mapping.gather(1, tokens)
        return (
            mapped[:, : stories[0].numel()].view_as(stories),
            mapped[:, stories[0].numel() :],
            mapping.gather(1, answers[:, None]).squeeze(1),
            words[:, :p],
        )

    def _inputs(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        return tuple(batch[k].long() for k in ("stories", "questions", "answers", "story_lengths"))

    def predict(
        self, stories: torch.Tensor, questions: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Greedy answer word ids [B] and the attention [B, hops, M], placeholders mapped back
        to the words they stand for."""
        if not self.cfg.unknown_words:
            logits, attention = self(stories, questions, lengths)
            return logits.argmax(-1), attention
        unseen = (~self.seen)[None, :].expand(stories.shape[0], -1)
        dummy = torch.zeros(stories.shape[0], dtype=torch.long, device=stories.device)
        stories, questions, _, words = self._placeholders(stories, questions, dummy, unseen)
        logits, attention = self(stories, questions, lengths)
        answer = logits.argmax(-1)
        slot = (answer - self.vocab).clamp(0, self.cfg.placeholders - 1)
        back = words.gather(1, slot[:, None]).squeeze(1)
        return torch.where(answer >= self.vocab, back, answer), attention

    # ------------------------------------------------------------------ the agent interface
    def loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Cross-entropy of the answer word (summed over the batch as the reference code does,
        see `sum_loss`), with random noise and simulated new words."""
        stories, questions, answers, lengths = self._inputs(batch)
        if self.cfg.unknown_words:
            for ids in (stories, questions, answers):
                self.seen[ids.flatten()] = True
            new = torch.rand(stories.shape[0], self.vocab, device=stories.device)
            stories, questions, answers, _ = self._placeholders(
                stories, questions, answers, new < self.cfg.unknown_word_rate, shuffle=True
            )
        logits, _ = self(stories, questions, lengths, noise=True)
        total = F.cross_entropy(logits, answers, reduction="sum")
        scale = self.cfg.linear_start_lr_scale if self.linear else 1.0
        if not self.cfg.sum_loss:
            scale = scale / stories.shape[0]
        metrics = {
            "cross_entropy": total.detach() / stories.shape[0],
            "train_accuracy": (logits.detach().argmax(-1) == answers).float().mean(),
            "linear_start": torch.tensor(float(self.linear)),
        }
        return total * scale, metrics

    @torch.no_grad()
    def score_examples(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        stories, questions, answers, lengths = self._inputs(batch)
        answer, _ = self.predict(stories, questions, lengths)
        return {"correct": (answer == answers).float()}

    @torch.no_grad()
    def attention(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Attention over the memory rows [B, hops, M] (the paper's Table 2 figures)."""
        stories, questions, _, lengths = self._inputs(batch)
        return self.predict(stories, questions, lengths)[1]

    @torch.no_grad()
    def explain(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Per-memory-row figures for evaluation reports: the attention of each hop, [B, M]."""
        attention = self.attention(batch)
        return {f"hop {h + 1}": attention[:, h] for h in range(self.cfg.hops)}

    @torch.no_grad()
    def act(self, obs: np.ndarray, state: Any, explore: bool) -> tuple[np.ndarray, Any, dict]:
        """Greedy answers to a batch of observations [B, M + 1, S] (story rows, question)."""
        obs_t = torch.as_tensor(np.asarray(obs), dtype=torch.long, device=self.embeddings.device)
        stories, questions = obs_t[:, :-1], obs_t[:, -1]
        lengths = (stories != 0).any(-1).sum(-1)
        answer, _ = self.predict(stories, questions, lengths)
        return answer.cpu().numpy().astype(np.int64), state, {}
