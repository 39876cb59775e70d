"""The CLEVR program generator: question tokens -> program tokens with the shared seq2seq
(agents/seq2seq.py), trained by maximum likelihood on K ground-truth programs, then by REINFORCE
on answer correctness (Johnson et al. 2017, "Inferring and Executing Programs for Visual
Reasoning"; Yi et al. 2018, NS-VQA).

`objective` picks the data: `mle` learns from the task's dataset splits (teacher forcing,
`sequence_cross_entropy_loss`; `score_examples` scores exact program match), `reinforce` from
whole episodes the rollout workers play, where the env executes each emitted program and rewards
a right answer. Its loss is the shared `reinforce_loss` (per-sequence reduction, the
moving-average baseline with IEP's decay 0.9, an optional entropy bonus), on log-probabilities
recomputed by teacher-forcing the sampled tokens. The REINFORCE run starts from the MLE run's
weights (`run.init_from`): the parameter names are the same under both objectives.

Acting state (explicit, batch first): the encoded question, the decoder's (h, c), the previous
token and the step; a row at step 0 encodes its new question first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import gymnasium as gym
import numpy as np
import torch

from agents.base import Agent, AgentError, EpisodeSpec, SupervisedSpec
from agents.losses import (
    MovingAverageBaseline,
    discounted_returns,
    reinforce_loss,
    sequence_cross_entropy_loss,
)
from agents.seq2seq import DecoderState, Encoded, Seq2Seq, Seq2SeqConfig

OBJECTIVES = ("mle", "reinforce")
UNK_ID = 3  # memrl's Vocab: <NULL>=0, <START>=1, <END>=2, <UNK>=3, then the words


@dataclass
class Config:
    """The program generator of Johnson et al. 2017 with NS-VQA's attention decoder.

    NS-VQA's sizes: 300-d embeddings, 2-layer LSTMs of 256 units, a bidirectional encoder;
    REINFORCE with a moving-average reward baseline of decay 0.9 (IEP). Token ids follow memrl's
    Vocab: <NULL>=0 pads, then <START>=1, <END>=2.
    """

    name: str = "program_generator"
    objective: Literal["mle", "reinforce"] = "mle"
    embed_dim: int = 300
    hidden_size: int = 256
    layers: int = 2
    bidirectional: bool = True
    dropout: float = 0.0  # the seq2seq's (embeddings, between layers, decoder outputs)
    # mle: each question word (not <START>/<END>/<NULL>) is replaced by <UNK> with this
    # probability in training batches (word dropout, Iyyer et al. 2015); 0 is none
    word_dropout: float = 0.0
    batch_size: int = 64  # mle: examples per update (reinforce: rollout.steps_per_sample)
    baseline_decay: float = 0.9
    entropy_coef: float = 0.0
    start_id: int = 1
    end_id: int = 2

    def validate(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ValueError(
                f"objective must be one of {', '.join(OBJECTIVES)}, got {self.objective!r}"
            )
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if not 0.0 <= self.baseline_decay < 1.0:
            raise ValueError(f"baseline_decay must be in [0, 1), got {self.baseline_decay}")
        if not 0.0 <= self.word_dropout < 1.0:
            raise ValueError(f"word_dropout must be in [0, 1), got {self.word_dropout}")
        if self.entropy_coef < 0:
            raise ValueError(f"entropy_coef must be >= 0, got {self.entropy_coef}")


# (encoder outputs [B, S, H], source mask [B, S], h [B, L, H], c [B, L, H], previous token [B],
#  tokens emitted so far [B])
State = tuple[torch.Tensor, ...]


class ProgramGenerator(Agent):
    learner_only = ("baseline.",)
    # mle: whole programs right in the batch; reinforce: the baseline the rewards are centred on
    progress_metrics = ("sequence_accuracy", "baseline")

    def __init__(self, cfg: Config, observation_space: gym.Space, action_space: gym.Space):
        super().__init__(cfg, observation_space, action_space)
        cfg.validate()
        if not (
            isinstance(observation_space, gym.spaces.Box)
            and len(observation_space.shape) == 1
            and np.issubdtype(observation_space.dtype, np.integer)
        ):
            raise AgentError(
                f"{cfg.name} reads token ids: it needs a 1-D integer Box observation, got "
                f"{observation_space}; use memrl/ClevrVQA-v0."
            )
        if not isinstance(action_space, gym.spaces.Discrete):
            raise AgentError(f"{cfg.name} emits tokens: it needs a Discrete action space")
        self.model = Seq2Seq(
            Seq2SeqConfig(
                src_vocab=int(np.max(observation_space.high)) + 1,
                tgt_vocab=int(action_space.n),
                embed_dim=cfg.embed_dim,
                hidden_size=cfg.hidden_size,
                layers=cfg.layers,
                bidirectional=cfg.bidirectional,
                dropout=cfg.dropout,
                start_id=cfg.start_id,
                end_id=cfg.end_id,
            )
        )
        self.source_len = int(observation_space.shape[0])
        self.baseline = MovingAverageBaseline(cfg.baseline_decay)

    def data_spec(self) -> SupervisedSpec | EpisodeSpec:
        if self.cfg.objective == "mle":
            return SupervisedSpec(batch_size=self.cfg.batch_size)
        return EpisodeSpec()

    def check_task(self, task: Any, env_id: str) -> None:
        if self.cfg.objective == "mle" and not hasattr(task, "dataset"):
            raise AgentError(
                f"agent '{self.cfg.name}' with objective 'mle' learns from ground-truth "
                f"programs, but env '{env_id}' has no dataset(split); use memrl/ClevrVQA-v0, or "
                "objective 'reinforce' to learn from the reward."
            )

    # ------------------------------------------------------------------ acting
    def initial_state(self, batch_size: int) -> State:
        m = self.model.cfg
        p = self.model.out.weight
        zeros = torch.zeros(batch_size, m.layers, m.hidden_size, device=p.device)
        return (
            torch.zeros(batch_size, self.source_len, m.hidden_size, device=p.device),
            torch.zeros(batch_size, self.source_len, dtype=torch.bool, device=p.device),
            zeros,
            zeros.clone(),
            self.model.start_tokens(batch_size, p.device),
            torch.zeros(batch_size, dtype=torch.long, device=p.device),
        )

    def reset_state(self, state: State, done: np.ndarray) -> State:
        """An ended episode's row starts again at step 0: `act` encodes its next question."""
        if not done.any():
            return state
        steps = state[5].clone()
        steps[torch.as_tensor(done, device=steps.device)] = 0
        return (*state[:5], steps)

    @torch.no_grad()
    def act(self, obs: np.ndarray, state: State, explore: bool) -> tuple[np.ndarray, State, dict]:
        enc_out, enc_mask, h, c, prev, steps = (s.clone() for s in state)
        src = torch.as_tensor(obs, dtype=torch.long, device=enc_out.device)
        new = steps == 0
        if new.any():
            enc, start = self.model.encode(src[new], src[new] != 0)
            enc_out[new], enc_mask[new] = enc.outputs, enc.mask
            h[new], c[new] = start.h.transpose(0, 1), start.c.transpose(0, 1)
            prev[new] = self.cfg.start_id
        dec = DecoderState(h.transpose(0, 1).contiguous(), c.transpose(0, 1).contiguous())
        logits, dec = self.model.step(prev, dec, Encoded(enc_out, enc_mask))
        logp = torch.log_softmax(logits, -1)
        token = torch.multinomial(logp.exp(), 1).squeeze(1) if explore else logits.argmax(-1)
        chosen = logp.gather(1, token[:, None]).squeeze(1)
        state = (enc_out, enc_mask, dec.h.transpose(0, 1), dec.c.transpose(0, 1), token, steps + 1)
        return token.cpu().numpy().astype(np.int64), state, {"log_prob": chosen.cpu().numpy()}

    # ------------------------------------------------------------------ learning
    def loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if self.cfg.objective == "mle":
            return self.mle_loss(batch)
        return self.reinforce_loss(batch)

    def mle_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict]:
        """Teacher forcing on the dataset's programs (batch-major; the loss is time-major)."""
        program = batch["program"].long()
        question = batch["question"].long()
        if self.training and self.cfg.word_dropout > 0:
            words = question > UNK_ID
            drop = torch.rand(question.shape, device=question.device) < self.cfg.word_dropout
            question = torch.where(words & drop, torch.full_like(question, UNK_ID), question)
        logits = self.model(question, batch["question_mask"], program[:, :-1])
        return sequence_cross_entropy_loss(
            logits.transpose(0, 1), program[:, 1:].T, batch["program_mask"].T
        )

    def reinforce_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict]:
        """Episodes, time-major [T, B]: each column one question (obs[0]) and its sampled tokens;
        the reward at the last step. Log-probabilities are recomputed with grad by teacher
        forcing the sampled tokens."""
        mask = batch["mask"].float()
        src = batch["obs"][0].long()
        tokens = batch["actions"].long().T  # [B, T]
        log_probs, entropy = self.model.sequence_log_probs(src, src != 0, tokens)
        log_probs, entropy = log_probs.T, entropy.T
        returns = discounted_returns(batch["rewards"].float(), mask, 1.0)
        loss, metrics = reinforce_loss(
            log_probs,
            returns,
            mask,
            self.baseline,
            entropy,
            reduction="sequence",
            entropy_coef=self.cfg.entropy_coef,
        )
        if "log_prob" in batch:  # how far the acting weights lag the learner's
            gap = (log_probs.detach() - batch["log_prob"].float()).abs()
            metrics["log_prob_gap"] = (gap * mask).sum() / mask.sum().clamp_min(1.0)
        return loss, metrics

    @torch.no_grad()
    def decode(self, question: torch.Tensor, max_len: int) -> torch.Tensor:
        """Greedy programs [B, max_len] (<END> included, <NULL> after) for questions [B, S]."""
        out = self.model.generate(question.long(), question != 0, max_len)
        tokens = torch.zeros(question.shape[0], max_len, dtype=torch.long, device=question.device)
        tokens[:, : out.tokens.shape[1]] = out.tokens
        return tokens

    @torch.no_grad()
    def decode_beam(self, question: torch.Tensor, max_len: int, beam: int) -> torch.Tensor:
        """The `beam` most probable programs [B, beam, max_len] by beam search, best first."""
        out, _ = self.model.beam_search(question.long(), question != 0, max_len, beam)
        tokens = torch.zeros(
            question.shape[0], beam, max_len, dtype=torch.long, device=question.device
        )
        tokens[..., : out.shape[2]] = out
        return tokens

    @torch.no_grad()
    def score_examples(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """`correct`: the greedy program equals the ground truth token for token, up to <END>."""
        target = batch["program"][:, 1:].long()
        pred = self.decode(batch["question"], target.shape[1])
        wrong = (pred != target) & ((target != 0) | (pred != 0))
        errors = wrong.float().sum(1)
        return {"correct": (errors == 0).float(), "token_errors": errors}
