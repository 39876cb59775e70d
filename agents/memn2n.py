"""End-To-End Memory Networks (Sukhbaatar, Szlam, Weston & Fergus 2015, arXiv:1503.08895) for
bAbI question answering, with the paper's bAbI choices: position encoding (PE), temporal
encoding with random noise (RN), adjacent weight tying, linear start (LS) and 3 hops, and the
details of the authors' reference code (facebook/MemNN, MemN2N-babi-matlab), which the paper's
figures come from:

- PE as build_model.m computes it (`pe_formula: reference`): l_kj = 1 + 4 (k - (d+1)/2)
  (j - (J+1)/2) / (d J), with J the padded sentence size plus one (the reference's time word
  is the last word of every memory, and it is weighted by column J too); the paper's formula,
  with J each sentence's own length, is `pe_formula: paper`.
- Empty memory slots (the memory holds `memory_size` sentences, 50) take part in the attention
  softmax with score 0, as the reference's all-nil memories (zero vectors) do
  (`attend_empty`); their output vector is zero.
- Temporal slots are recency (0 = the latest sentence), with random noise inserting up to 10%
  empty memories, and are clipped to the memory size (the reference's `rt(rt > sz) = sz`).
- The gradient of each embedding table (with its time rows, which the reference keeps in the
  same table) is clipped separately at `learner.grad_clip` (`per_table_clip`), by the matrix
  2-norm MATLAB's `norm` computes (`clip_norm: spectral`) or the Frobenius norm.
- The nil (padding) word's row is zero in every table and gets no gradient.

Inputs (a dataset task's batch, batch axis 0): `stories` [B, M, S] word ids, oldest sentence
first with zero rows after the story, `questions` [B, S], `answers` [B] (answer word ids, the
classes of the output layer) and `story_lengths` [B]. Id 0 pads. As an episodic agent, `act`
reads the same story and question from one int array [B, M + 1, S] (story rows, then the
question), the observation of `memrl/BAbI-v0`.

Adjacent tying: hop k reads memory with A^k = C^(k-1), writes with C^k, the question is
embedded with B = A^1 and the answer layer is W = (C^K)^T, so K hops use K + 1 embedding tables
(and K + 1 temporal tables). Sentences are embedded with fused `embedding_bag` calls over the
occupied memory rows only (PE is rank 2 in word position x embedding component, so two weighted
bags give it exactly).

Linear start: the attention softmax is removed for the first `linear_start_epochs`
evaluations (the trainer evaluates once per epoch with `run.eval_every_epochs: 1`); the count
is a buffer, so checkpoints, resumed runs and the best weights keep their phase. The
reference's LS learning rate (0.005 against 0.01) is applied by scaling the clipped gradients
by `linear_start_lr_scale` during LS (`clip_gradients`): with plain SGD that is exactly the
smaller learning rate, clipped as the reference clips.

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
from typing import Any, Literal

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from agents.base import Agent, AgentError, SupervisedSpec

NEG = -1e9  # attention score of padded memories (finite, so an empty story gives no NaN)
PE_FORMULAS = ("reference", "paper")
CLIP_NORMS = ("spectral", "frobenius")


@dataclass
class Config:
    """MemN2N, Sukhbaatar et al. 2015 (section 4, bAbI): embedding 50, 3 hops, PE, temporal
    encoding with 10% random noise, adjacent tying, linear start, batch 32; the reference code's
    PE, attention over empty slots and per-table gradient clipping (see the module docstring)."""

    name: str = "memn2n"
    embedding_size: int = 50
    hops: int = 3
    position_encoding: bool = True
    pe_formula: Literal["reference", "paper"] = "reference"
    temporal_encoding: bool = True
    random_noise: float = 0.1  # up to this fraction of empty memories inserted at training time
    attend_empty: bool = True  # empty memory slots take part in the softmax (score 0)
    linear_start_epochs: int = 20  # evaluations (epochs) without the attention softmax; 0: none
    linear_start_lr_scale: float = 0.5  # gradient scale during LS: lr 0.005 under SGD at 0.01
    per_table_clip: bool = True  # clip each embedding table's gradient at learner.grad_clip
    clip_norm: Literal["spectral", "frobenius"] = "spectral"  # MATLAB's norm(matrix): spectral
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
        if self.pe_formula not in PE_FORMULAS:
            raise ValueError(f"pe_formula must be one of {PE_FORMULAS}, got {self.pe_formula!r}")
        if self.clip_norm not in CLIP_NORMS:
            raise ValueError(f"clip_norm must be one of {CLIP_NORMS}, got {self.clip_norm!r}")


def paper_pe_factors(tokens: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The paper's PE (section 4.1) as rank-2 factors, l[..., j, k] = sum_r alpha[r, k] *
    beta[r, ..., j]: l_kj = (1 - j/J) - (k/d)(1 - 2j/J) for word j = 1..J of a J-word sentence
    `tokens` [..., S] (id 0 pads; 0 there) and embedding component k = 1..d. alpha [2, d],
    beta [2, ..., S]."""
    present = (tokens != 0).to(torch.float32)
    length = present.sum(-1, keepdim=True).clamp(min=1.0)  # J, per sentence
    j = torch.arange(1, tokens.shape[-1] + 1, device=tokens.device, dtype=torch.float32)
    k = torch.arange(1, dim + 1, device=tokens.device, dtype=torch.float32) / dim
    a = j / length  # j/J
    return torch.stack([torch.ones_like(k), k]), torch.stack(
        [(1.0 - a) * present, -(1.0 - 2.0 * a) * present]
    )


def reference_pe_factors(words: int, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The reference code's PE (build_model.m, `config.weight` transposed) as rank-2 factors,
    l[j, k] = sum_r alpha[r, k] * beta[r, j]: l_kj = 1 + 4 (k - (d+1)/2) (j - (J+1)/2) / (d J)
    for position j = 1..J = `words` (the padded sentence size, plus one for the time word with
    temporal encoding) and component k = 1..d. alpha [2, d], beta [2, words]."""
    k = torch.arange(1, dim + 1, dtype=torch.float32)
    j = torch.arange(1, words + 1, dtype=torch.float32)
    alpha = torch.stack([torch.ones(dim), 4.0 * (k - (dim + 1) / 2) / dim])
    beta = torch.stack([torch.ones(words), (j - (words + 1) / 2) / words])
    return alpha, beta


def position_encoding(tokens: torch.Tensor, dim: int) -> torch.Tensor:
    """The paper's weights [..., S, dim] of the words of sentences `tokens` [..., S]."""
    alpha, beta = paper_pe_factors(tokens, dim)
    return torch.einsum("r...s,rd->...sd", beta, alpha)


def reference_position_encoding(words: int, dim: int) -> torch.Tensor:
    """The reference code's weights [words, dim]."""
    alpha, beta = reference_pe_factors(words, dim)
    return beta.T @ alpha


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
        self.sentence_size = int(shape[1])
        extra = cfg.placeholders if cfg.unknown_words else 0
        d = cfg.embedding_size
        tables = torch.randn(cfg.hops + 1, self.vocab + extra, d) * cfg.init_std
        tables[:, 0] = 0.0  # the nil word: zero in every table, and no gradient reaches it
        self.embeddings = nn.Parameter(tables)
        # time slots: one per memory row (noisy recencies beyond it are clipped to the last)
        self.temporal = nn.Parameter(torch.randn(cfg.hops + 1, self.memory_size, d) * cfg.init_std)
        # PE as rank-2 factors: l[j, k] = sum_r alpha[r, k] * beta[r, j] (reference formula)
        words = self.sentence_size + int(cfg.temporal_encoding)
        if cfg.position_encoding and cfg.pe_formula == "reference":
            alpha, beta = reference_pe_factors(words, d)
            time_weight = beta[:, -1] @ alpha if cfg.temporal_encoding else torch.ones(d)
        else:
            alpha, beta, time_weight = torch.ones(1, d), torch.ones(1, words), torch.ones(d)
        self.register_buffer("pe_alpha", alpha.float(), persistent=False)
        self.register_buffer("pe_beta", beta[:, : self.sentence_size].float(), persistent=False)
        self.register_buffer("time_weight", time_weight.float(), persistent=False)
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

    def clip_gradients(self, max_norm: float) -> torch.Tensor:
        """The reference's update (nn/Weight.m): each embedding table's gradient (word and time
        rows of one tied table together) is clipped to `max_norm` on its own; during linear
        start the clipped gradients are then scaled by `linear_start_lr_scale` (the reference's
        LS learning rate). Returns the norm of the whole gradient before clipping."""
        for p in (self.embeddings, self.temporal):
            if p.grad is None:  # e.g. no temporal encoding
                p.grad = torch.zeros_like(p)
        grads = [self.embeddings.grad, self.temporal.grad]
        total = torch.sqrt(sum(g.pow(2).sum() for g in grads))
        if max_norm > 0 and self.cfg.per_table_clip:
            for h in range(self.cfg.hops + 1):
                table = torch.cat([grads[0][h], grads[1][h]])
                if self.cfg.clip_norm == "spectral":  # the largest singular value
                    norm = torch.linalg.eigvalsh(table.T @ table)[-1].clamp(min=0.0).sqrt()
                else:
                    norm = table.norm()
                scale = (max_norm / norm.clamp(min=1e-12)).clamp(max=1.0)
                for g in grads:
                    g[h].mul_(scale)
        elif max_norm > 0:
            scale = (max_norm / total.clamp(min=1e-12)).clamp(max=1.0)
            for g in grads:
                g.mul_(scale)
        if self.linear and self.cfg.linear_start_lr_scale != 1.0:
            for g in grads:
                g.mul_(self.cfg.linear_start_lr_scale)
        return total

    # ------------------------------------------------------------------ the network
    def _sentence_weights(self, tokens: torch.Tensor) -> torch.Tensor:
        """Per-word bag weights [R, N, S] for sentences `tokens` [N, S] (0 on padding); with
        `pe_alpha` [R, d] they give the PE: l[j, k] = sum_r alpha[r, k] * beta[r, n, j]."""
        if self.cfg.position_encoding and self.cfg.pe_formula == "paper":
            return paper_pe_factors(tokens, self.cfg.embedding_size)[1]  # J per sentence
        present = (tokens != 0).to(torch.float32)
        return self.pe_beta[:, None, : tokens.shape[-1]] * present[None]

    def _embed(self, tokens: torch.Tensor, tables: list[int]) -> torch.Tensor:
        """Sentences `tokens` [N, S] embedded with each of `tables` (hop indices): [T, N, d].
        One `embedding_bag` per PE factor over the words present only (padding is skipped, so
        the nil rows get no gradient), all tables at once (ids offset into the stacked
        tables)."""
        n, s = tokens.shape
        v, d = self.embeddings.shape[1], self.embeddings.shape[2]
        t = len(tables)
        beta = self._sentence_weights(tokens)  # [R, N, S]
        if self.cfg.position_encoding and self.cfg.pe_formula == "paper":
            alpha = paper_pe_factors(tokens[:1, :1], self.cfg.embedding_size)[0]
        else:
            alpha = self.pe_alpha
        present = tokens != 0
        counts = present.sum(1)  # words per sentence
        offsets = torch.zeros(t * n, dtype=torch.long, device=tokens.device)
        offsets[1:] = counts.repeat(t).cumsum(0)[:-1]
        words = tokens[present]  # [W], sentence by sentence
        shift = torch.tensor(tables, device=tokens.device)[:, None] * v
        ids = (words[None] + shift).reshape(-1)  # [T * W]
        flat = self.embeddings.reshape(-1, d)
        out = 0.0
        for r in range(beta.shape[0]):
            weights = beta[r][present].repeat(t)
            bag = F.embedding_bag(ids, flat, offsets, mode="sum", per_sample_weights=weights)
            out = out + bag.view(t, n, d) * alpha[r]
        return out

    def _encode(self, tokens: torch.Tensor, hop: int) -> torch.Tensor:
        """Sentences [..., S] -> [..., d] with embedding table `hop` (PE or bag of words)."""
        shape = tokens.shape
        return self._embed(tokens.reshape(-1, shape[-1]), [hop])[0].view(*shape[:-1], -1)

    def _times(self, lengths: torch.Tensor, noise: bool) -> torch.Tensor:
        """Temporal slot [B, M] of each memory row: its recency (the latest sentence 0). With
        `noise`, up to `random_noise` * L empty memories are inserted at random places among a
        story's L sentences, so the recencies skip the empty slots (train.m). Slots are clipped
        to the memory size, as the reference clips its time words."""
        b, m = lengths.shape[0], self.memory_size
        device = lengths.device
        row = torch.arange(m, device=device)[None, :]
        recency = (lengths[:, None] - 1 - row).clamp(min=0)  # [B, M]
        if not noise or self.cfg.random_noise <= 0:
            return recency.clamp(max=m - 1)
        width = m + int(np.ceil(self.cfg.random_noise * m))
        extra = torch.ceil(self.cfg.random_noise * lengths.float())
        empty = (torch.rand(b, device=device) * (extra + 1)).floor().long()  # 0..extra
        keys = torch.rand(b, width, device=device)
        span = torch.arange(width, device=device)[None, :]
        keys = torch.where(span < (lengths + empty)[:, None], keys, 2.0)  # past L + n: never
        kept = keys.argsort(1).argsort(1) < lengths[:, None]  # L random slots among L + n
        ordered = torch.where(kept, span, width).sort(1).values[:, :m]  # kept, ascending
        return ordered.gather(1, recency).clamp(max=m - 1)

    def _attend(self, scores: torch.Tensor, valid: torch.Tensor, empty: torch.Tensor):
        """Attention [B, L] over the occupied rows from `scores` [B, L]: the raw scores during
        linear start, else a softmax that (with `attend_empty`) also counts the `empty` [B]
        unoccupied slots of the memory, whose score is 0 and whose output is zero."""
        if self.linear:
            return scores * valid
        scores = scores.masked_fill(~valid, NEG)
        if not self.cfg.attend_empty:
            return torch.softmax(scores, dim=1) * valid
        top = scores.max(1).values
        top = torch.where(empty > 0, top.clamp(min=0.0), top).detach()
        e = torch.exp(scores - top[:, None]) * valid
        z = e.sum(1) + empty * torch.exp(-top)
        return e / z[:, None]

    def forward(
        self,
        stories: torch.Tensor,
        questions: torch.Tensor,
        lengths: torch.Tensor,
        noise: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(answer logits [B, vocab (+ placeholders)], attention [B, hops, M])."""
        b, m, s = stories.shape
        hops = self.cfg.hops
        used = max(int(lengths.max()), 1) if b else 1  # rows past every story are empty
        rows = stories[:, :used]
        valid = torch.arange(used, device=stories.device)[None, :] < lengths[:, None]
        memories = self._embed(rows.reshape(-1, s), list(range(hops + 1))).view(
            hops + 1, b, used, -1
        )
        if self.cfg.temporal_encoding:
            times = self._times(lengths, noise)[:, :used]
            memories = memories + self.temporal[:, times] * self.time_weight
        u = self._embed(questions, [0])[0]
        empty = (self.memory_size - lengths).clamp(min=0).to(u.dtype)
        attention = []
        for hop in range(hops):
            scores = torch.einsum("bmd,bd->bm", memories[hop], u)
            p = self._attend(scores, valid, empty)
            u = u + torch.einsum("bm,bmd->bd", p, memories[hop + 1])
            attention.append(F.pad(p, (0, m - used)))
        answer = self.embeddings[hops]  # W = (C^K)^T; its nil row stays zero (no gradient)
        answer = torch.cat([answer[:1].detach(), answer[1:]])
        return u @ answer.T, torch.stack(attention, 1)

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
        # the LS learning rate is applied to the clipped gradients (clip_gradients)
        scale = 1.0 if self.cfg.sum_loss else 1.0 / stories.shape[0]
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
