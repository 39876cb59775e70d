"""A task-agnostic LSTM encoder-decoder with attention: token ids in, token logits out.

As NS-VQA's program generator (Yi et al. 2018, after Johnson et al. 2017): a (bidirectional)
LSTM encodes the source; an LSTM decoder, started from the encoder's final state, reads the
previous target token; each decoder output attends over the encoder outputs (dot product, masked
to the real source tokens), and `tanh(W [output; context])` is projected to the target
vocabulary. The attention is computed on the decoder's outputs and not fed back into its input,
so a teacher-forced pass is one LSTM call over the whole target, and decoding one token at a time
gives exactly the same logits.

Everything is batch-first (`src` [B, S], `tgt_in` [B, T], logits [B, T, V]) and the decoder
state is explicit (`DecoderState`, returned by `step`, never stored on the module; DESIGN.md,
style rule 7). The VQA program generator (agents/program_generator.py) and Learning to Execute
share this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn


@dataclass
class Seq2SeqConfig:
    """Sizes of the model. NS-VQA: 300-d word vectors, 2 layers of 256 units, a bidirectional
    encoder. `start_id`/`end_id` are the target vocabulary's <START>/<END> (memrl's Vocab puts
    <NULL>=0, <START>=1, <END>=2 first)."""

    src_vocab: int
    tgt_vocab: int
    embed_dim: int = 300
    hidden_size: int = 256
    layers: int = 2
    bidirectional: bool = True
    # dropout on the source and target embeddings, between stacked LSTM layers and on the
    # decoder outputs before attention (NS-VQA's input_dropout_p / dropout_p); 0 is none
    dropout: float = 0.0
    start_id: int = 1
    end_id: int = 2

    def validate(self) -> None:
        for key in ("src_vocab", "tgt_vocab", "embed_dim", "hidden_size", "layers"):
            if getattr(self, key) < 1:
                raise ValueError(f"Seq2SeqConfig.{key} must be >= 1, got {getattr(self, key)}")
        if self.bidirectional and self.hidden_size % 2:
            raise ValueError(
                f"Seq2SeqConfig.hidden_size must be even with a bidirectional encoder (each "
                f"direction has half), got {self.hidden_size}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"Seq2SeqConfig.dropout must be in [0, 1), got {self.dropout}")
        for key in ("start_id", "end_id"):
            if not 0 <= getattr(self, key) < self.tgt_vocab:
                raise ValueError(f"Seq2SeqConfig.{key} must index the target vocabulary")


class Encoded(NamedTuple):
    """The source, encoded: outputs [B, S, H] and the mask of real tokens [B, S] (bool)."""

    outputs: torch.Tensor
    mask: torch.Tensor


class DecoderState(NamedTuple):
    """The decoder LSTM's (h, c), each [layers, B, H] (nn.LSTM's layout)."""

    h: torch.Tensor
    c: torch.Tensor


class Decoded(NamedTuple):
    """A decoded batch: tokens [B, T] (<END> included where it was emitted, then `pad`),
    their log-probabilities [B, T] and the mask of emitted tokens [B, T] (float)."""

    tokens: torch.Tensor
    log_probs: torch.Tensor
    mask: torch.Tensor


class Seq2Seq(nn.Module):
    def __init__(self, cfg: Seq2SeqConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        h = cfg.hidden_size
        enc_h = h // 2 if cfg.bidirectional else h
        drop = cfg.dropout if cfg.layers > 1 else 0.0
        self.src_embed = nn.Embedding(cfg.src_vocab, cfg.embed_dim)
        self.tgt_embed = nn.Embedding(cfg.tgt_vocab, cfg.embed_dim)
        self.encoder = nn.LSTM(
            cfg.embed_dim,
            enc_h,
            cfg.layers,
            batch_first=True,
            bidirectional=cfg.bidirectional,
            dropout=drop,
        )
        self.decoder = nn.LSTM(cfg.embed_dim, h, cfg.layers, batch_first=True, dropout=drop)
        self.combine = nn.Linear(2 * h, h)
        self.out = nn.Linear(h, cfg.tgt_vocab)
        self.drop = nn.Dropout(cfg.dropout)  # identity at 0 and in eval mode

    # ------------------------------------------------------------------ encoder
    def encode(self, src: torch.Tensor, src_mask: torch.Tensor) -> tuple[Encoded, DecoderState]:
        """src [B, S] ids, src_mask [B, S] (nonzero on real tokens, which come first) -> the
        encoded source and the decoder's initial state (the encoder's state after each
        sequence's last real token; both directions concatenated)."""
        if src.dim() != 2 or src_mask.shape != src.shape:
            raise ValueError(
                f"Seq2Seq.encode: need src and src_mask [B, S], got {tuple(src.shape)} and "
                f"{tuple(src_mask.shape)}"
            )
        mask = src_mask.bool().clone()
        mask[:, 0] = True  # an empty source still attends to its first position (no NaN)
        lengths = mask.sum(1).clamp_min(1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(
            self.drop(self.src_embed(src.long())), lengths, batch_first=True, enforce_sorted=False
        )
        out, (h, c) = self.encoder(packed)
        outputs, _ = nn.utils.rnn.pad_packed_sequence(
            out, batch_first=True, total_length=src.shape[1]
        )
        if self.cfg.bidirectional:  # [2L, B, H/2] -> [L, B, H]: forward and backward joined
            b = src.shape[0]
            h = (
                h.view(self.cfg.layers, 2, b, -1)
                .permute(0, 2, 1, 3)
                .reshape(self.cfg.layers, b, -1)
            )
            c = (
                c.view(self.cfg.layers, 2, b, -1)
                .permute(0, 2, 1, 3)
                .reshape(self.cfg.layers, b, -1)
            )
        return Encoded(outputs, mask), DecoderState(h.contiguous(), c.contiguous())

    # ------------------------------------------------------------------ decoder
    def _logits(self, dec_out: torch.Tensor, enc: Encoded) -> torch.Tensor:
        """Decoder outputs [B, T, H] -> logits [B, T, V] through masked dot-product attention."""
        scores = torch.bmm(dec_out, enc.outputs.transpose(1, 2))  # [B, T, S]
        scores = scores.masked_fill(~enc.mask.unsqueeze(1), float("-inf"))
        attn = torch.softmax(scores, dim=-1)
        context = torch.bmm(attn, enc.outputs)
        return self.out(torch.tanh(self.combine(torch.cat([dec_out, context], -1))))

    def decode(
        self, tgt_in: torch.Tensor, state: DecoderState, enc: Encoded
    ) -> tuple[torch.Tensor, DecoderState]:
        """Teacher forcing from `state`: tgt_in [B, T] ids -> logits [B, T, V] and the state
        after the last step."""
        dec_out, (h, c) = self.decoder(self.drop(self.tgt_embed(tgt_in.long())), tuple(state))
        return self._logits(self.drop(dec_out), enc), DecoderState(h, c)

    def step(
        self, prev: torch.Tensor, state: DecoderState, enc: Encoded
    ) -> tuple[torch.Tensor, DecoderState]:
        """One token: prev [B] ids -> logits [B, V] and the next state."""
        logits, state = self.decode(prev.reshape(-1, 1), state, enc)
        return logits[:, 0], state

    def forward(
        self, src: torch.Tensor, src_mask: torch.Tensor, tgt_in: torch.Tensor
    ) -> torch.Tensor:
        """Teacher-forced logits [B, T, V] for tgt_in [B, T] (<START> first)."""
        enc, state = self.encode(src, src_mask)
        return self.decode(tgt_in, state, enc)[0]

    def start_tokens(self, batch_size: int, device: torch.device | None = None) -> torch.Tensor:
        return torch.full((batch_size,), self.cfg.start_id, dtype=torch.long, device=device)

    @torch.no_grad()
    def generate(
        self,
        src: torch.Tensor,
        src_mask: torch.Tensor,
        max_len: int,
        sample: bool = False,
        pad: int = 0,
        generator: torch.Generator | None = None,
    ) -> Decoded:
        """Greedy (or sampled) decoding of up to `max_len` tokens, stopping each sequence at its
        <END>; the tokens after it are `pad` with mask 0."""
        enc, state = self.encode(src, src_mask)
        b = src.shape[0]
        prev = self.start_tokens(b, src.device)
        alive = torch.ones(b, dtype=torch.bool, device=src.device)
        tokens, log_probs, masks = [], [], []
        for _ in range(max_len):
            logits, state = self.step(prev, state, enc)
            logp = torch.log_softmax(logits, -1)
            if sample:
                token = torch.multinomial(logp.exp(), 1, generator=generator).squeeze(1)
            else:
                token = logits.argmax(-1)
            tokens.append(torch.where(alive, token, torch.full_like(token, pad)))
            log_probs.append(torch.where(alive, logp.gather(1, token[:, None])[:, 0], 0.0))
            masks.append(alive.float())
            alive = alive & (token != self.cfg.end_id)
            prev = token
            if not alive.any():
                break
        return Decoded(torch.stack(tokens, 1), torch.stack(log_probs, 1), torch.stack(masks, 1))

    @torch.no_grad()
    def beam_search(
        self, src: torch.Tensor, src_mask: torch.Tensor, max_len: int, beam: int, pad: int = 0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The `beam` most probable outputs found by beam search: tokens [B, beam, T] (<END>
        included where emitted, then `pad`) and their total log-probabilities [B, beam], best
        first. No length normalisation; beam 1 is greedy decoding."""
        if beam < 1:
            raise ValueError(f"Seq2Seq.beam_search: beam must be >= 1, got {beam}")
        enc, state = self.encode(src, src_mask)
        b, v = src.shape[0], self.cfg.tgt_vocab

        def flat(t: torch.Tensor, dim: int) -> torch.Tensor:  # each row `beam` times
            return t.repeat_interleave(beam, dim)

        enc = Encoded(flat(enc.outputs, 0), flat(enc.mask, 0))
        state = DecoderState(flat(state.h, 1), flat(state.c, 1))
        scores = torch.full((b, beam), float("-inf"), device=src.device)
        scores[:, 0] = 0.0  # one live hypothesis to start: the copies would repeat it
        done = torch.zeros(b, beam, dtype=torch.bool, device=src.device)
        prev = self.start_tokens(b * beam, src.device)
        tokens = torch.zeros(b, beam, 0, dtype=torch.long, device=src.device)
        ended = torch.full((v,), float("-inf"), device=src.device)
        ended[pad] = 0.0  # a finished hypothesis continues with `pad` at no cost
        rows = torch.arange(b, device=src.device)[:, None]
        for _ in range(max_len):
            logits, state = self.step(prev, state, enc)
            logp = torch.log_softmax(logits, -1).view(b, beam, v)
            logp = torch.where(done[..., None], ended, logp)
            top, index = (scores[..., None] + logp).view(b, -1).topk(beam, -1)
            origin, token = index // v, index % v
            scores = top
            tokens = torch.cat([tokens[rows, origin], token[..., None]], -1)
            done = done[rows, origin] | (token == self.cfg.end_id)
            pick = (rows * beam + origin).reshape(-1)
            state = DecoderState(state.h[:, pick], state.c[:, pick])
            prev = token.reshape(-1)
            if done.all():
                break
        return tokens, scores

    def sequence_log_probs(
        self, src: torch.Tensor, src_mask: torch.Tensor, tokens: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-probabilities [B, T] and entropies [B, T] of given output tokens [B, T] (e.g.
        sampled ones), by teacher forcing <START> + tokens[:, :-1]: REINFORCE's pass with grad."""
        tgt_in = torch.cat(
            [self.start_tokens(tokens.shape[0], tokens.device)[:, None], tokens[:, :-1]], 1
        )
        logp = torch.log_softmax(self(src, src_mask, tgt_in), -1)
        chosen = logp.gather(2, tokens.long().unsqueeze(-1)).squeeze(-1)
        entropy = -(logp.exp() * logp).sum(-1)
        return chosen, entropy
