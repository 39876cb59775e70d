"""The shared seq2seq module (agents/seq2seq.py): shapes, source masking, and that decoding one
token at a time is the teacher-forced pass on its own output."""

from __future__ import annotations

import pytest
import torch

from agents.seq2seq import Seq2Seq, Seq2SeqConfig


def _model(**kw) -> Seq2Seq:
    torch.manual_seed(0)
    cfg = Seq2SeqConfig(src_vocab=11, tgt_vocab=7, embed_dim=8, hidden_size=12, layers=2, **kw)
    return Seq2Seq(cfg).eval()


def _source(b: int = 4, s: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    src = torch.randint(4, 11, (b, s), generator=g)
    lengths = torch.tensor([6, 3, 1, 5][:b])
    mask = torch.arange(s)[None, :] < lengths[:, None]
    return src * mask, mask


@pytest.mark.parametrize("bidirectional", [True, False])
def test_shapes(bidirectional: bool) -> None:
    model = _model(bidirectional=bidirectional)
    src, mask = _source()
    tgt_in = torch.randint(0, 7, (4, 5))
    assert model(src, mask, tgt_in).shape == (4, 5, 7)
    enc, state = model.encode(src, mask)
    assert enc.outputs.shape == (4, 6, 12) and state.h.shape == state.c.shape == (2, 4, 12)
    logits, nxt = model.step(tgt_in[:, 0], state, enc)
    assert logits.shape == (4, 7) and nxt.h.shape == (2, 4, 12)
    out = model.generate(src, mask, max_len=9)
    assert out.tokens.shape == out.log_probs.shape == out.mask.shape
    assert out.tokens.shape[0] == 4 and out.tokens.shape[1] <= 9


def test_padding_does_not_change_the_output() -> None:
    """Whatever sits in the masked source positions, the logits are the same."""
    model = _model()
    src, mask = _source()
    tgt_in = torch.randint(0, 7, (4, 5))
    noisy = torch.where(mask, src, torch.randint(0, 11, src.shape))
    torch.testing.assert_close(model(src, mask, tgt_in), model(noisy, mask, tgt_in))
    # and a longer padded source changes nothing either
    wider = torch.cat([src, torch.zeros(4, 3, dtype=src.dtype)], 1)
    wider_mask = torch.cat([mask, torch.zeros(4, 3, dtype=torch.bool)], 1)
    torch.testing.assert_close(model(src, mask, tgt_in), model(wider, wider_mask, tgt_in))
    # but the real tokens matter
    other = src.clone()
    other[0, 0] = 4 if src[0, 0] != 4 else 5
    assert not torch.allclose(model(src, mask, tgt_in)[0], model(other, mask, tgt_in)[0])


def test_greedy_decoding_equals_teacher_forcing_on_its_own_output() -> None:
    model = _model()
    src, mask = _source()
    out = model.generate(src, mask, max_len=8)
    tgt_in = torch.cat([model.start_tokens(4)[:, None], out.tokens[:, :-1]], 1)
    logits = model(src, mask, tgt_in)
    real = out.mask.bool()
    assert torch.equal(logits.argmax(-1)[real], out.tokens[real])
    logp = torch.log_softmax(logits, -1).gather(2, out.tokens[..., None])[..., 0]
    torch.testing.assert_close(logp[real], out.log_probs[real])
    # and the same through sequence_log_probs (REINFORCE's recomputation, with grad)
    chosen, entropy = model.sequence_log_probs(src, mask, out.tokens)
    torch.testing.assert_close(chosen[real], out.log_probs[real])
    assert (entropy >= 0).all() and chosen.requires_grad


def test_sampling_is_seeded_and_stops_at_end() -> None:
    model = _model()
    src, mask = _source()
    a = model.generate(src, mask, 12, sample=True, generator=torch.Generator().manual_seed(3))
    b = model.generate(src, mask, 12, sample=True, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a.tokens, b.tokens)
    for row, m in zip(a.tokens, a.mask):
        n = int(m.sum())
        ends = (row[:n] == model.cfg.end_id).nonzero()
        # a sequence stops at its first <END> (or runs to the limit without one)
        assert (len(ends) == 1 and ends[0, 0] == n - 1) or (
            len(ends) == 0 and n == a.tokens.shape[1]
        )
        assert (row[n:] == 0).all()


def test_learns_to_copy_in_a_few_steps() -> None:
    """A sanity check that gradients flow through attention: copy 3-token sources."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = Seq2Seq(Seq2SeqConfig(src_vocab=8, tgt_vocab=8, embed_dim=16, hidden_size=32, layers=1))
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    g = torch.Generator().manual_seed(0)
    for _ in range(80):
        src = torch.randint(3, 8, (32, 3), generator=g)
        tgt = torch.cat([src, torch.full((32, 1), 2)], 1)
        tgt_in = torch.cat([torch.full((32, 1), 1), src], 1)
        loss = torch.nn.functional.cross_entropy(
            model(src, torch.ones_like(src), tgt_in).reshape(-1, 8), tgt.reshape(-1)
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
    src = torch.randint(3, 8, (64, 3), generator=g)
    out = model.eval().generate(src, torch.ones_like(src), 5)
    assert (out.tokens[:, :3] == src).all(1).float().mean() > 0.9


def test_bad_config_and_shapes_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="hidden_size must be even"):
        Seq2Seq(Seq2SeqConfig(src_vocab=3, tgt_vocab=3, hidden_size=5))
    with pytest.raises(ValueError, match="end_id"):
        Seq2Seq(Seq2SeqConfig(src_vocab=3, tgt_vocab=2))
    with pytest.raises(ValueError, match=r"src and src_mask \[B, S\]"):
        _model().encode(torch.zeros(3, dtype=torch.long), torch.ones(3))


def test_dropout_acts_in_training_only_and_zero_is_the_old_model() -> None:
    """`dropout` (embeddings, decoder outputs) changes the training pass only: in eval mode
    the model equals the same weights without dropout, and dropout 0 is deterministic in
    training mode (the default other users of the module keep)."""
    src, mask = _source()
    tgt_in = torch.randint(0, 7, (4, 5), generator=torch.Generator().manual_seed(2))
    plain, dropped = _model(), _model(dropout=0.5)
    dropped.load_state_dict(plain.state_dict())
    torch.testing.assert_close(dropped(src, mask, tgt_in), plain(src, mask, tgt_in))
    plain.train()
    torch.testing.assert_close(plain(src, mask, tgt_in), plain.eval()(src, mask, tgt_in))
    dropped.train()
    torch.manual_seed(3)
    first = dropped(src, mask, tgt_in)
    assert not torch.allclose(first, plain(src, mask, tgt_in))
    assert not torch.allclose(first, dropped(src, mask, tgt_in))  # a fresh mask each pass
    # one layer: no LSTM inter-layer dropout, but the embeddings and outputs still drop
    one = Seq2Seq(
        Seq2SeqConfig(src_vocab=11, tgt_vocab=7, embed_dim=8, hidden_size=12, layers=1, dropout=0.5)
    ).train()
    assert not torch.allclose(one(src, mask, tgt_in), one.eval()(src, mask, tgt_in))
    with pytest.raises(ValueError, match="dropout must be in"):
        Seq2SeqConfig(src_vocab=3, tgt_vocab=3, dropout=1.0).validate()


def _scored(model: Seq2Seq, src, mask, tokens: torch.Tensor) -> torch.Tensor:
    """Total log-probability of each output [B, T] up to and with its <END> (teacher forcing)."""
    chosen, _ = model.sequence_log_probs(src, mask, tokens)
    ended = (tokens == model.cfg.end_id).long().cumsum(1)
    live = (ended == 0) | ((ended == 1) & (tokens == model.cfg.end_id))
    return (chosen * live).sum(1)


def test_beam_search_scores_are_the_outputs_log_probs_and_beam_1_is_greedy() -> None:
    torch.manual_seed(0)
    cfg = Seq2SeqConfig(src_vocab=11, tgt_vocab=5, embed_dim=8, hidden_size=12, layers=2)
    model = Seq2Seq(cfg).eval()  # a small target vocabulary: <END> comes within the length
    src, mask = _source()
    greedy = model.generate(src, mask, max_len=6)
    one, one_scores = model.beam_search(src, mask, 6, beam=1)
    n = greedy.tokens.shape[1]
    assert torch.equal(one[:, 0, :n], greedy.tokens)
    torch.testing.assert_close(one_scores[:, 0], greedy.log_probs.sum(1))
    tokens, scores = model.beam_search(src, mask, 6, beam=4)
    assert tokens.shape[:2] == (4, 4) and (scores[:, :-1] >= scores[:, 1:]).all()
    assert (scores[:, 0] >= one_scores[:, 0] - 1e-5).all()  # never worse than greedy
    for k in range(4):
        torch.testing.assert_close(_scored(model, src, mask, tokens[:, k]), scores[:, k])
    for row in range(4):  # distinct hypotheses
        assert len({tuple(t.tolist()) for t in tokens[row]}) == 4
    with pytest.raises(ValueError, match="beam must be"):
        model.beam_search(src, mask, 6, beam=0)
