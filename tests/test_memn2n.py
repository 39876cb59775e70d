"""MemN2N: position encoding against the paper's and the reference code's formulas by hand, the
fused network against a plain transcription of the reference (empty slots in the softmax, time
words), temporal encoding with random noise, per-table gradient clipping, linear start switching, the placeholders for new words, acting in the episodic env, a
smoke training run with a checkpoint round trip, and (slow) learning bAbI task 1."""

from __future__ import annotations

import json
import os

import gymnasium as gym
import numpy as np
import pytest
import torch

import envs
from agents import AgentError, make_agent
from agents.learner import Learner, LearnerConfig
from agents.memn2n import Config, MemN2NAgent, position_encoding, reference_position_encoding
from envs.babi.env import default_babi_root
from rollout.checkpoints import latest_checkpoint, load_checkpoint
from rollout.config import dump_config, load_config
from rollout.run_dir import RunDir, read_metrics
from rollout.trainer import Trainer

VOCAB, MEMORY, WORDS = 12, 5, 4


def _agent(**kwargs) -> MemN2NAgent:
    torch.manual_seed(0)
    obs = gym.spaces.Box(0, VOCAB - 1, (MEMORY + 1, WORDS), np.int32)
    return MemN2NAgent(Config(**kwargs), obs, gym.spaces.Discrete(VOCAB))


def _batch(n: int = 3) -> dict[str, torch.Tensor]:
    rng = np.random.default_rng(0)
    lengths = np.array([1, 3, 5])[:n]
    stories = rng.integers(2, VOCAB, (n, MEMORY, WORDS))
    stories[np.arange(MEMORY)[None, :] >= lengths[:, None]] = 0
    stories[:, :, 3] = 0  # three-word sentences
    return {
        "stories": torch.as_tensor(stories),
        "questions": torch.as_tensor(rng.integers(2, VOCAB, (n, WORDS))),
        "answers": torch.as_tensor(rng.integers(2, VOCAB, n)),
        "story_lengths": torch.as_tensor(lengths),
    }


def test_position_encoding_matches_the_paper_formula_by_hand():
    # l_kj = (1 - j/J) - (k/d)(1 - 2j/J); a 3-word sentence padded to 4, d = 4
    weights = position_encoding(torch.tensor([[5, 6, 7, 0]]), 4)[0]
    assert weights.shape == (4, 4)
    # j = 1, k = 1: (1 - 1/3) - (1/4)(1 - 2/3) = 2/3 - 1/12 = 7/12
    assert weights[0, 0].item() == pytest.approx(7 / 12)
    # j = 2, k = 2: (1 - 2/3) - (2/4)(1 - 4/3) = 1/3 + 1/6 = 1/2
    assert weights[1, 1].item() == pytest.approx(1 / 2)
    # j = 3 = J, k = 4 = d: 0 - 1 * (1 - 2) = 1
    assert weights[2, 3].item() == pytest.approx(1.0)
    # j = 1, k = 3: 2/3 - (3/4)(1/3) = 5/12
    assert weights[0, 2].item() == pytest.approx(5 / 12)
    assert torch.all(weights[3] == 0)  # padding carries no weight
    # J is the sentence's own length: a 2-word sentence, j = 2, k = 1: 0 - (1/4)(1 - 2) = 1/4
    assert position_encoding(torch.tensor([[5, 6, 0, 0]]), 4)[0, 1, 0].item() == pytest.approx(0.25)


def test_reference_position_encoding_by_hand():
    # build_model.m: l_kj = 1 + 4 (k - (d+1)/2) (j - (J+1)/2) / (d J); J = 4, d = 4
    table = reference_position_encoding(4, 4)
    assert table.shape == (4, 4)  # [j, k]
    assert table[0, 0].item() == pytest.approx(1 + 4 * (-1.5) * (-1.5) / 16)  # 25/16
    assert table[3, 0].item() == pytest.approx(1 - 9 / 16)  # j = J, k = 1
    assert table[1, 2].item() == pytest.approx(1 + 4 * 0.5 * (-0.5) / 16)  # j = 2, k = 3: 15/16
    assert table[3, 3].item() == pytest.approx(25 / 16)
    # symmetric about the middle word and the middle component, mean 1
    torch.testing.assert_close(table, table.flip(0).flip(1))
    assert table.mean().item() == pytest.approx(1.0)


def test_sentences_are_encoded_with_the_reference_weights_and_the_padded_length():
    # WORDS = 4 per sentence plus the time word: J = 5 for every sentence, however short
    agent = _agent(embedding_size=6)
    table = reference_position_encoding(WORDS + 1, 6)
    sentence = torch.tensor([[3, 4, 7, 0]])
    by_hand = sum(table[j] * agent.embeddings[2, w] for j, w in enumerate([3, 4, 7]))
    torch.testing.assert_close(agent._encode(sentence, 2)[0], by_hand)
    torch.testing.assert_close(agent.time_weight, table[WORDS])  # the time word: column J
    # without temporal encoding J is the sentence size itself
    plain = _agent(embedding_size=6, temporal_encoding=False)
    table = reference_position_encoding(WORDS, 6)
    by_hand = sum(table[j] * plain.embeddings[0, w] for j, w in enumerate([3, 4, 7]))
    torch.testing.assert_close(plain._encode(sentence, 0)[0], by_hand)
    # the paper's formula, J the sentence's own length
    paper = _agent(embedding_size=6, pe_formula="paper")
    weights = position_encoding(sentence, 6)[0]
    by_hand = sum(weights[j] * paper.embeddings[1, w] for j, w in enumerate([3, 4, 7]))
    torch.testing.assert_close(paper._encode(sentence, 1)[0], by_hand)


def _reference_forward(agent: MemN2NAgent, batch: dict, linear: bool) -> torch.Tensor:
    """A plain transcription of the reference model (MemoryL.m, build_model.m): every one of
    the M memory slots is a sum of PE-weighted word vectors plus its time word, empty slots are
    all nil (a zero vector), the attention softmax runs over all M slots."""
    d, hops = agent.cfg.embedding_size, agent.cfg.hops
    table = reference_position_encoding(WORDS + 1, d)  # [J, d], J = words + time word
    emb, tem = agent.embeddings.detach(), agent.temporal.detach()
    logits = []
    for b in range(batch["answers"].shape[0]):
        n = int(batch["story_lengths"][b])
        story, question = batch["stories"][b], batch["questions"][b]

        def sentence(words, h):
            return sum(table[j] * emb[h, w] for j, w in enumerate(words.tolist()) if w != 0)

        mem = torch.zeros(hops + 1, MEMORY, d)
        for h in range(hops + 1):
            for i in range(n):
                mem[h, i] = sentence(story[i], h) + table[WORDS] * tem[h, n - 1 - i]
        u = sentence(question, 0)
        for h in range(hops):
            scores = mem[h] @ u
            p = scores if linear else torch.softmax(scores, 0)  # all M slots, empty ones too
            u = u + p @ mem[h + 1]
        logits.append(emb[hops] @ u)
    return torch.stack(logits)


def test_the_fused_network_matches_a_plain_transcription_of_the_reference():
    agent = _agent(linear_start_epochs=1)
    batch = _batch()
    with torch.no_grad():
        linear, _ = agent(batch["stories"], batch["questions"], batch["story_lengths"])
        torch.testing.assert_close(linear, _reference_forward(agent, batch, linear=True))
        agent.on_evaluation({})
        logits, attention = agent(batch["stories"], batch["questions"], batch["story_lengths"])
    torch.testing.assert_close(logits, _reference_forward(agent, batch, linear=False))
    # the empty slots take their share: a 1-sentence story's attention sums to less than 1
    assert attention[0, 0].sum().item() < 1.0
    assert torch.all(attention[0, :, 1:] == 0)
    alone = _agent(linear_start_epochs=0, attend_empty=False)
    with torch.no_grad():
        _, attention = alone(batch["stories"], batch["questions"], batch["story_lengths"])
    torch.testing.assert_close(attention.sum(-1), torch.ones(3, 3))


def test_nil_rows_stay_zero_through_training():
    agent = _agent(linear_start_epochs=0)
    learner = Learner(agent, LearnerConfig(optimizer="sgd", lr=0.01, grad_clip=40.0))
    batch = {k: v.numpy() for k, v in _batch().items()}
    for _ in range(3):
        figures = learner.update(batch)
    assert figures["grad_norm"] > 0
    assert torch.all(agent.embeddings[:, 0] == 0)
    assert agent.embeddings[:, 2:].abs().sum() > 0
    for mode in ("value", "adaptive"):
        with pytest.raises(AgentError, match=f"clips its own gradients.*grad_clip_mode: {mode}"):
            Learner(agent, LearnerConfig(grad_clip=40.0, grad_clip_mode=mode))


def test_each_table_is_clipped_on_its_own_then_scaled_during_linear_start():
    agent = _agent(linear_start_epochs=1, linear_start_lr_scale=0.5)
    agent.embeddings.grad = torch.zeros_like(agent.embeddings)
    agent.temporal.grad = torch.zeros_like(agent.temporal)
    agent.embeddings.grad[0, 2, :] = 30.0  # table 0: rank 1, norm 30 * sqrt(d) (both norms)
    agent.temporal.grad[0, 1, :] = 40.0  # its time rows count with it
    agent.embeddings.grad[1, 3, 0] = 3.0  # table 1: norm 3, below the limit
    d = agent.cfg.embedding_size
    table0 = np.hypot(30.0, 40.0) * np.sqrt(d)  # spectral = Frobenius for this rank-1 matrix
    total = agent.clip_gradients(40.0)
    assert total.item() == pytest.approx(np.sqrt(table0**2 + 9.0), rel=1e-5)
    # table 0 clipped to 40, then halved (linear start); table 1 only halved
    clipped = torch.cat([agent.embeddings.grad[0], agent.temporal.grad[0]])
    assert clipped.norm().item() == pytest.approx(0.5 * 40.0, rel=1e-4)
    assert agent.embeddings.grad[1, 3, 0].item() == pytest.approx(1.5)
    # after linear start no scaling; the spectral norm is the largest singular value
    agent.on_evaluation({})
    g = torch.zeros(VOCAB + MEMORY, d)
    g[2, 0], g[3, 1] = 50.0, 30.0  # singular values 50 and 30: Frobenius 58.3, spectral 50
    agent.embeddings.grad = torch.zeros_like(agent.embeddings)
    agent.temporal.grad = torch.zeros_like(agent.temporal)
    agent.embeddings.grad[2] = g[:VOCAB]
    agent.clip_gradients(40.0)
    assert agent.embeddings.grad[2, 2, 0].item() == pytest.approx(40.0, rel=1e-4)
    assert agent.embeddings.grad[2, 3, 1].item() == pytest.approx(24.0, rel=1e-4)
    frob = _agent(linear_start_epochs=0, clip_norm="frobenius")
    frob.embeddings.grad = torch.zeros_like(frob.embeddings)
    frob.temporal.grad = torch.zeros_like(frob.temporal)
    frob.embeddings.grad[2] = g[:VOCAB]
    frob.clip_gradients(40.0)
    assert frob.embeddings.grad[2].norm().item() == pytest.approx(40.0, rel=1e-4)


def test_position_encoding_distinguishes_word_order():
    agent = _agent(temporal_encoding=False)
    ab = agent._encode(torch.tensor([[3, 4, 0, 0]]), 0)
    ba = agent._encode(torch.tensor([[4, 3, 0, 0]]), 0)
    assert not torch.allclose(ab, ba)
    bag = _agent(position_encoding=False)
    torch.testing.assert_close(
        bag._encode(torch.tensor([[3, 4, 0, 0]]), 0), bag._encode(torch.tensor([[4, 3, 0, 0]]), 0)
    )


def test_temporal_slots_are_recency_with_random_empty_memories():
    agent = _agent()
    lengths = torch.tensor([1, 3, 5])
    plain = agent._times(lengths, noise=False)
    assert plain[1, :3].tolist() == [2, 1, 0] and plain[2].tolist() == [4, 3, 2, 1, 0]
    torch.manual_seed(1)
    shifted = 0
    for _ in range(50):
        noisy = agent._times(lengths, noise=True)
        for b, n in enumerate(lengths.tolist()):
            rows = noisy[b, :n]
            # still ordered: older sentences sit further back; at most ceil(0.1 n) slots skipped
            assert torch.all(rows[:-1] >= rows[1:])
            assert torch.all((rows[:-1] > rows[1:]) | (rows[:-1] == MEMORY - 1))
            # clipped to the memory size, as the reference clips its time words
            assert rows.max().item() <= min(n - 1 + int(np.ceil(0.1 * n)), MEMORY - 1)
        shifted += int(not torch.equal(noisy[2], plain[2]))
    assert 0 < shifted < 50
    assert torch.equal(_agent(random_noise=0.0)._times(lengths, noise=True), plain)


def test_linear_start_removes_the_softmax_then_puts_it_back():
    agent = _agent(linear_start_epochs=2, linear_start_lr_scale=0.5)
    batch = _batch()
    valid = torch.arange(MEMORY)[None, :] < batch["story_lengths"][:, None]
    assert agent.linear
    attention = agent.attention(batch)
    assert torch.all(attention[~valid[:, None, :].expand_as(attention)] == 0)
    assert not torch.allclose(attention.sum(-1), torch.ones(3, 3))  # raw scores, not a softmax
    linear_loss, metrics = agent.loss(batch)
    assert metrics["linear_start"].item() == 1.0 and metrics["cross_entropy"].dim() == 0
    # the loss itself is not scaled during LS (clip_gradients scales the clipped gradients)
    assert linear_loss.item() == pytest.approx(3 * metrics["cross_entropy"].item(), rel=1e-5)
    agent.on_evaluation({"score": 0.1})
    assert agent.linear
    agent.on_evaluation({"score": 0.2})
    assert not agent.linear
    attention = agent.attention(batch)
    # a softmax over the memory: the full story's rows sum to 1, the empty slots of the
    # shorter stories take the rest
    torch.testing.assert_close(attention[2].sum(-1), torch.ones(3))
    assert torch.all(attention[:2].sum(-1) < 1.0)
    torch.manual_seed(0)
    loss, metrics = agent.loss(batch)
    assert metrics["linear_start"].item() == 0.0
    # the loss is summed over the batch (the reference code); LS scales the clipped gradients
    assert loss.item() == pytest.approx(3 * metrics["cross_entropy"].item(), rel=1e-5)
    # the phase travels with the weights
    fresh = _agent(linear_start_epochs=2)
    fresh.load_state_dict(agent.state_dict())
    assert not fresh.linear
    assert _agent(linear_start_epochs=0).linear is False


def test_placeholders_number_new_words_by_first_appearance():
    agent = _agent(unknown_words=True, placeholders=2)
    stories = torch.tensor([[[5, 9, 0, 0], [7, 5, 8, 0], [0, 0, 0, 0], [0] * 4, [0] * 4]])
    questions = torch.tensor([[3, 7, 0, 0]])
    answers = torch.tensor([7])
    new = torch.zeros(1, VOCAB, dtype=torch.bool)
    new[0, [7, 8, 9, 11]] = True  # 11 does not occur; 9 first, then 7, then 8 (no room left)
    s, q, a, words = agent._placeholders(stories, questions, answers, new)
    assert s[0, 0].tolist() == [5, VOCAB + 0, 0, 0]
    assert s[0, 1].tolist() == [VOCAB + 1, 5, 8, 0]
    assert q[0].tolist() == [3, VOCAB + 1, 0, 0] and a.tolist() == [VOCAB + 1]
    assert words[0].tolist() == [9, 7]


def test_a_placeholder_answer_is_mapped_back_to_the_storys_word():
    agent = _agent(unknown_words=True)
    agent.seen[:] = True
    agent.seen[9] = False
    batch = _batch(1)
    batch["stories"][0, 0, :3] = torch.tensor([4, 9, 5])

    def answer_first_placeholder(stories, questions, lengths, noise=False):
        logits = torch.zeros(stories.shape[0], VOCAB + agent.cfg.placeholders)
        logits[:, VOCAB] = 1.0
        assert VOCAB in stories  # word 9 reached the network as placeholder 0
        return logits, torch.zeros(stories.shape[0], agent.cfg.hops, MEMORY)

    agent.forward = answer_first_placeholder
    answer, _ = agent.predict(batch["stories"], batch["questions"], batch["story_lengths"])
    assert answer.tolist() == [9]


def test_loss_marks_the_words_it_trained_on_as_seen():
    agent = _agent(unknown_words=True)
    batch = _batch()
    agent.loss(batch)
    used = torch.cat([batch[k].flatten() for k in ("stories", "questions", "answers")]).unique()
    assert agent.seen.sum().item() == len(used) and agent.seen[used].all()


GENERATED = {"source": "generated", "tasks": [1], "generated_questions": 100}


def test_act_answers_the_envs_question_like_the_dataset_pass():
    env = envs.make("memrl/BAbI-v0", **GENERATED)
    agent = make_agent(Config(), env.observation_space, env.action_space)
    obs = np.stack([env.reset(seed=s)[0] for s in range(4)])
    answers, state, extras = agent.act(obs, None, explore=False)
    assert answers.shape == (4,) and answers.dtype == np.int64 and extras == {}
    stories, questions = torch.as_tensor(obs[:, :-1]), torch.as_tensor(obs[:, -1])
    lengths = (stories != 0).any(-1).sum(-1)
    expected, _ = agent.predict(stories.long(), questions.long(), lengths)
    assert answers.tolist() == expected.tolist()


def _smoke_config(tmp_path, *extra):
    return load_config(
        "configs/memn2n_babi_generated.yaml",
        [
            "env.kwargs.tasks=[1]",
            "env.kwargs.generated_questions=100",
            "agent.linear_start_epochs=1",
            "rollout.num_workers=1",
            "run.total_epochs=2",
            "run.log_every_s=0",
            f"run.dir={tmp_path}",
            *extra,
        ],
    )


def test_smoke_training_writes_the_tables_and_reloads(tmp_path):
    torch.set_num_threads(1)
    cfg = _smoke_config(tmp_path)
    run = RunDir.create(tmp_path, cfg.run.name, dump_config(cfg))
    trainer = Trainer(cfg, run)
    # a dataset task: the driver draws the batches and evaluates; no Ray workers start, even
    # with rollout.num_workers=1 (rollout/sources.py, make_source)
    assert trainer.workers is None
    summary = trainer.train()
    assert summary["epochs"] == 2 and summary["updates"] == 2 * 3  # 90 questions, batch 32
    rows = read_metrics(run.metrics)
    assert [r["linear_start"] for r in rows if "linear_start" in r][0] == 1.0
    final = run.path / "evaluation" / "final"
    report = json.loads((final / "test.json").read_text())
    assert report["examples"] == 100 and list(report["groups"]) == ["qa1"]
    explained = json.loads((final / "test_explained.json").read_text())
    assert len(explained) == 1 and set(explained[0]["figures"]) == {"hop 1", "hop 2", "hop 3"}
    assert len(explained[0]["figures"]["hop 1"]) == len(explained[0]["rows"])
    assert "| row | support | hop 1 | hop 2 | hop 3 |" in (final / "test_explained.md").read_text()
    assert all(0 <= r < len(explained[0]["rows"]) for r in explained[0]["support_rows"])
    # the checkpoint reloads into a fresh agent that scores every test question identically
    state = load_checkpoint(latest_checkpoint(run.checkpoints))
    env = envs.make(cfg.env.id, **cfg.env.kwargs)
    fresh = make_agent(cfg.agent, env.observation_space, env.action_space)
    fresh.load_state_dict(state["learner"]["agent"])
    test = env.unwrapped.dataset("test")
    batch = {k: torch.as_tensor(v) for k, v in test.arrays.items()}
    torch.testing.assert_close(fresh.attention(batch), trainer.agent.attention(batch))
    assert fresh.seen.any() and torch.equal(fresh.seen, trainer.agent.seen)
    # one per epoch; the last epoch's scored the final weights, so the end adds none
    assert int(fresh.evaluations) == int(trainer.agent.evaluations) == 2


def _task1_kwargs() -> list[str]:
    root = default_babi_root()
    if (root / "en").is_dir():
        return ["env.kwargs.source=official", f"env.kwargs.root={os.fspath(root)}"]
    return ["env.kwargs.generated_questions=1000"]  # memrl's generator: no files needed


@pytest.mark.slow
def test_memn2n_learns_babi_task_1(tmp_path):
    """Per-task training on task 1 (official 1k files where present): < 1% test error."""
    torch.set_num_threads(1)
    cfg = load_config(
        "configs/memn2n_babi_1k.yaml",
        [
            "env.kwargs.tasks=[1]",
            *_task1_kwargs(),
            "agent.linear_start_epochs=10",
            "run.total_epochs=30",
            "learner.lr_milestones=[25]",
            "run.log_every_s=0",
            f"run.dir={tmp_path}",
        ],
    )
    run = RunDir.create(tmp_path, cfg.run.name, dump_config(cfg))
    Trainer(cfg, run).train()
    report = json.loads((run.path / "evaluation" / "final" / "test.json").read_text())
    assert report["groups"]["qa1"]["error_pct"] < 1.0, report["groups"]["qa1"]


def test_training_placeholders_are_shuffled_but_consistent():
    agent = _agent(unknown_words=True, placeholders=6)
    stories = torch.tensor([[[5, 9, 0, 0], [7, 5, 8, 0], [0] * 4, [0] * 4, [0] * 4]]).repeat(
        40, 1, 1
    )
    questions = torch.tensor([[3, 7, 0, 0]]).repeat(40, 1)
    answers = torch.tensor([7] * 40)
    new = torch.zeros(40, VOCAB, dtype=torch.bool)
    new[:, [7, 8, 9]] = True
    torch.manual_seed(0)
    s, q, a, words = agent._placeholders(stories, questions, answers, new, shuffle=True)
    used = set()
    for b in range(40):
        nine, seven, eight = s[b, 0, 1].item(), s[b, 1, 0].item(), s[b, 1, 2].item()
        assert len({nine, seven, eight}) == 3 and min(nine, seven, eight) >= VOCAB
        assert q[b, 1].item() == seven == a[b].item() and s[b, 1, 1].item() == 5
        assert words[b, seven - VOCAB].item() == 7 and words[b, nine - VOCAB].item() == 9
        used |= {nine, seven, eight}
    assert used == set(range(VOCAB, VOCAB + 6))  # every placeholder gets trained
