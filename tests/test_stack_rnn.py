"""The stack RNN (Joulin & Mikolov 2015) and its formal languages: each generator's rules and its
deterministic mask against an independent oracle, the stack operations on hand-computed
tensors, step-by-step against whole-sequence paths, a smoke run through Ray, and (slow) aⁿbⁿ
learned to n = 20 and generalised to n = 60."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch

import envs
from agents import make_agent
from agents.stack_rnn import EMPTY, Config, StackRNNAgent, stack_update
from rollout.config import dump_config, load_config
from rollout.run_dir import RunDir, read_metrics
from rollout.trainer import Trainer

# ------------------------------------------------------------------ the languages, by their rules


def _two_counts(n_max: int):
    for total in range(2, n_max + 1):
        for m in range(1, total):
            yield total, total - m, m


def language(env_id: str, n_max: int) -> dict[str, int]:
    """Every string of the language with n <= n_max, written from the papers' definitions
    (not from the generator), -> its n."""
    out: dict[str, int] = {}
    name = env_id.split("/")[1].removesuffix("-v0")
    if name in ("AnBn", "AnBnCn", "AnBnCnDn"):
        letters = {"AnBn": "ab", "AnBnCn": "abc", "AnBnCnDn": "abcd"}[name]
        out = {"".join(c * n for c in letters): n for n in range(1, n_max + 1)}
    elif name == "AnB2n":
        out = {"a" * n + "bb" * n: n for n in range(1, n_max + 1)}
    elif name == "AnBmCnm":
        out = {"a" * a + "b" * m + "c" * t: t for t, a, m in _two_counts(n_max)}
    elif name == "AnBmCnDm":
        out = {"a" * a + "b" * m + "c" * a + "d" * m: t for t, a, m in _two_counts(n_max)}
    elif name == "AnBmCnTimesM":
        out = {"a" * a + "b" * m + "c" * (a * m): t for t, a, m in _two_counts(n_max)}
    elif name == "Memorisation":
        for n in range(1, n_max + 1):
            for w in itertools.product("bc", repeat=n):
                out["".join(w) + "a" + "".join(reversed(w))] = n
    elif name == "BinaryAddition":
        for n in range(1, n_max + 1):
            for k in range(n + 1):
                for x in _binaries(k):
                    for y in _binaries(n - k):
                        out[f"{x}+{y}=" + bin(int(x, 2) + int(y, 2))[2:][::-1] + "."] = n
    return out


def _binaries(length: int) -> list[str]:
    if length == 0:
        return ["0"]
    return ["1" + "".join(r) for r in itertools.product("01", repeat=length - 1)]


LANGUAGES = [
    ("memrl/AnBn-v0", 6),
    ("memrl/AnBnCn-v0", 6),
    ("memrl/AnBnCnDn-v0", 6),
    ("memrl/AnB2n-v0", 6),
    ("memrl/AnBmCnm-v0", 6),
    ("memrl/AnBmCnDm-v0", 6),
    ("memrl/AnBmCnTimesM-v0", 6),
    ("memrl/Memorisation-v0", 4),
    ("memrl/BinaryAddition-v0", 4),
]


def determined(strings: list[str], prefix: str) -> bool:
    """Whether every string of the language that starts with `prefix` continues the same way
    ('#' = ends there)."""
    nexts = {
        s[len(prefix)] if len(s) > len(prefix) else "#" for s in strings if s.startswith(prefix)
    }
    return len(nexts) == 1


@pytest.mark.parametrize("env_id,max_n", LANGUAGES)
def test_generator_follows_the_rules_and_scores_exactly_the_deterministic_part(env_id, max_n):
    task = envs.make(env_id, min_n=2, max_n=max_n).unwrapped
    # the oracle holds longer strings too, so "determined" means by the language, not by max_n
    oracle = language(env_id, max_n + 2)
    strings = list(oracle)
    inputs, targets, mask = task.sample_batch(64, np.random.default_rng(0))
    assert inputs.shape[:2] == targets.shape == mask.shape and targets.dtype == np.int64
    seen = set()
    for b in range(64):
        length = int((inputs[:, b].sum(-1) > 0).sum())  # steps of this sequence
        read = task.decode(inputs[:length, b].argmax(-1))
        wanted = task.decode(targets[:length, b])
        assert read[0] == "#" and wanted[-1] == "#" and read[1:] == wanted[:-1]
        text = wanted[:-1]
        assert text in oracle and 2 <= oracle[text] <= max_n, text
        seen.add(oracle[text])
        scored = np.flatnonzero(mask[:length, b])
        assert len(scored) and np.all(np.diff(scored) == 1) and scored[-1] == length - 1
        # every scored symbol (and the end) is fixed by what came before it; the one before the
        # first scored is not: the mask is the paper's deterministic part
        for k in scored:
            assert determined(strings, text[:k]), (text, k)
        assert not determined(strings, text[: scored[0] - 1]), (text, scored[0])
    assert len(seen) >= 2  # n varies


def test_languages_reject_bad_lengths_by_name():
    with pytest.raises(ValueError, match="max_n=1 is invalid.*>= min_n=2"):
        envs.make("memrl/AnBn-v0", min_n=2, max_n=1)
    with pytest.raises(ValueError, match="min_n=1 is invalid.*>= 2"):
        envs.make("memrl/AnBmCnm-v0", min_n=1, max_n=5)


def test_report_variants_reach_beyond_training():
    task = envs.make("memrl/AnBn-v0").unwrapped
    ns = [length for _, length, _ in task.report_variants]
    assert 60 in ns and max(ns) > 60 and task.max_n == 20


# ------------------------------------------------------------------------------- stack operations


def test_push_then_pop_returns_the_pushed_vector():
    stack = torch.full((1, 1, 4, 2), EMPTY)
    stack[0, 0, 0] = torch.tensor([0.3, 0.7])  # one element on it
    push = torch.tensor([[[1.0, 0.0, 0.0]]])
    pop = torch.tensor([[[0.0, 1.0, 0.0]]])
    v = torch.tensor([[[0.9, 0.1]]])
    pushed = stack_update(stack, push, v)
    expected = torch.tensor([[0.9, 0.1], [0.3, 0.7], [EMPTY, EMPTY], [EMPTY, EMPTY]])
    torch.testing.assert_close(pushed[0, 0], expected)
    popped = stack_update(pushed, pop, torch.zeros(1, 1, 2))
    torch.testing.assert_close(popped, stack)
    noop = stack_update(stack, torch.tensor([[[0.0, 0.0, 1.0]]]), v)
    torch.testing.assert_close(noop, stack)


def test_mixed_actions_interpolate():
    stack = torch.tensor([0.2, 0.4, 0.6]).view(1, 1, 3, 1)
    v = torch.tensor([[[1.0]]])
    out = stack_update(stack, torch.tensor([[[0.5, 0.3, 0.2]]]), v)
    # push: [1, .2, .4]; pop: [.4, .6, -1]; no-op: [.2, .4, .6]
    expected = [
        0.5 * 1.0 + 0.3 * 0.4 + 0.2 * 0.2,
        0.5 * 0.2 + 0.3 * 0.6 + 0.2 * 0.4,
        0.5 * 0.4 + 0.3 * EMPTY + 0.2 * 0.6,
    ]
    torch.testing.assert_close(out.view(-1), torch.tensor(expected))
    # two actions (no no-op): a plain push/pop mixture
    out2 = stack_update(stack, torch.tensor([[[0.25, 0.75]]]), v)
    expected2 = [0.25 * 1.0 + 0.75 * 0.4, 0.25 * 0.2 + 0.75 * 0.6, 0.25 * 0.4 + 0.75 * EMPTY]
    torch.testing.assert_close(out2.view(-1), torch.tensor(expected2))


def _agent(**kwargs) -> tuple[StackRNNAgent, object]:
    task = envs.make("memrl/AnBnCn-v0", min_n=2, max_n=6).unwrapped
    torch.manual_seed(0)
    cfg = Config(hidden_size=12, stacks=3, capacity=32, **kwargs)
    return make_agent(cfg, task.observation_space, task.action_space), task


@pytest.mark.parametrize("kwargs", [{}, {"noop": False, "recurrent_hidden": True, "width": 2}])
def test_step_by_step_equals_the_whole_sequence(kwargs):
    agent, task = _agent(**kwargs)
    inputs, targets, mask = task.sample_batch(5, np.random.default_rng(1))
    x = torch.as_tensor(inputs)
    whole, (h, stack, actions) = agent.core(x)
    state = agent.initial_state(5)
    steps = []
    for t in range(len(x)):
        y, state = agent.core.step(x[t], state)
        steps.append(y)
    torch.testing.assert_close(torch.stack(steps), whole)
    # the whole-sequence path keeps only the T + depth cells T steps can reach; they agree
    assert stack.shape[2] == len(x) + 2 < state[1].shape[2]
    torch.testing.assert_close(state[1][:, :, : stack.shape[2]], stack)
    # the env-facing path (act, one observation at a time) picks the argmax of the same logits
    state = agent.initial_state(5)
    for t in range(len(x)):
        symbols, state, _ = agent.act(inputs[t], state, explore=False)
        np.testing.assert_array_equal(symbols, whole[t].argmax(-1).numpy())
    # a gradient flows back through the stacks to the first step's input projection
    loss, metrics = agent.loss(
        {"inputs": x, "targets": torch.as_tensor(targets), "mask": torch.as_tensor(mask)}
    )
    loss.backward()
    assert agent.core.read.weight.grad.abs().sum() > 0 and metrics["token_errors"].dim() == 0


def test_action_entropy_cost_adds_the_actions_mean_entropy():
    """loss = cross-entropy + cost x the actions' mean entropy over each sequence's own steps;
    its gradient alone makes the actions sharper."""
    plain, task = _agent()
    costly, _ = _agent(action_entropy_cost=0.5)  # the same seed: the same weights
    inputs, targets, mask = task.sample_batch(4, np.random.default_rng(3))
    batch = {"inputs": torch.as_tensor(inputs), "targets": torch.as_tensor(targets)}
    batch["mask"] = torch.as_tensor(mask)
    base, _ = plain.loss(batch)
    total, figures = costly.loss(batch)
    _, _, a = costly.core.run(batch["inputs"])  # [T, B, K, A]
    entropy = -(a * a.log()).sum(-1).mean(-1)
    steps = torch.as_tensor(inputs).sum(-1) > 0  # padding after a short sequence: no input
    assert not steps.all()
    expected = entropy[steps].mean()
    torch.testing.assert_close(figures["action_entropy"], expected.detach())
    torch.testing.assert_close(total, base + 0.5 * expected)
    (total - base).backward()
    with torch.no_grad():
        for p in costly.parameters():
            if p.grad is not None:
                p -= 1.0 * p.grad
        _, _, sharper = costly.core.run(batch["inputs"])
    after = -(sharper * sharper.log()).sum(-1).mean(-1)[steps].mean()
    assert after < expected
    with pytest.raises(ValueError, match="action_entropy_cost"):
        Config(action_entropy_cost=-1.0).validate()


def test_hard_actions_only_without_gradient():
    agent, task = _agent(hard_actions=True)
    x = torch.as_tensor(task.sample_batch(3, np.random.default_rng(2))[0])
    with torch.no_grad():
        traced = agent.trace(x)
    acts = traced["actions"]
    assert torch.all((acts == 0) | (acts == 1)) and torch.all(acts.sum(-1) == 1)
    _, (_, _, soft) = agent.core(x)  # with gradient: the soft distribution
    assert ((soft > 0) & (soft < 1)).all()
    panels = agent.trace_panels(traced)
    assert len(panels) == 6 and all(p.min() >= 0 and p.max() <= 1 for _, p in panels)


def test_action_temperature_anneals_geometrically_and_travels_with_the_weights():
    """tau = end ** progress between the two update counts; the scores are divided by it in
    every forward pass (with and without gradient), and it is part of the acting weights."""
    agent, task = _agent(action_temperature_end=0.01, action_anneal=[10, 30])
    cfg = agent.cfg
    assert [cfg.temperature(u) for u in (0, 10, 30, 99)] == [1.0, 1.0, 0.01, 0.01]
    assert cfg.temperature(20) == pytest.approx(0.1)
    x = torch.as_tensor(task.sample_batch(3, np.random.default_rng(4))[0])
    # the first step reads empty stacks
    h = torch.sigmoid(agent.core.input(x[0]) + agent.core.read(torch.full((3, 3 * 2), EMPTY)))
    scores = agent.core.act_head(h).view(3, 3, 3)
    for updates, tau in ((0, 1.0), (20, 0.1), (30, 0.01)):
        agent.on_update(updates)
        assert float(agent.core.action_temperature) == pytest.approx(tau)
        _, _, a = agent.core.run(x)
        torch.testing.assert_close(a[0], torch.softmax(scores / tau, -1))
    weights = agent.acting_state_dict()
    assert float(weights["core.action_temperature"]) == pytest.approx(0.01)
    fresh, _ = _agent(action_temperature_end=0.01, action_anneal=[10, 30])
    fresh.load_acting_state_dict(weights)  # a worker or the report: the same actions
    with torch.no_grad():
        torch.testing.assert_close(fresh.core.run(x)[2], agent.core.run(x)[2])
    plain, _ = _agent()
    assert "core.action_temperature" not in plain.acting_state_dict()  # old runs still load
    for bad, match in (
        ({"action_temperature_end": 0.1}, "needs action_anneal"),
        ({"action_temperature_end": 0.1, "action_anneal": [5, 5]}, "needs action_anneal"),
        ({"action_anneal": [1, 2]}, "action_temperature_end is 1"),
        ({"action_temperature_end": 0.0, "action_anneal": [1, 2]}, "must be in \\(0, 1\\]"),
        ({"straight_through_from": -2}, "straight_through_from"),
    ):
        with pytest.raises(ValueError, match=match):
            Config(**bad).validate()


def test_anneal_waits_for_the_first_evaluation_at_the_score():
    """With action_anneal_score the anneal's updates count from the update of the first
    evaluation scoring at least that; later evaluations do not move it; it is in the weights,
    so a resumed run goes on from the same origin."""
    agent, _ = _agent(action_temperature_end=0.01, action_anneal=[0, 10], action_anneal_score=0.0)
    agent.on_update(100)
    assert float(agent.core.action_temperature) == 1.0  # no evaluation at the score yet
    agent.on_evaluation({"score": -0.3})
    agent.on_update(101)
    assert float(agent.core.anneal_origin) == -1.0 and float(agent.core.action_temperature) == 1
    agent.on_evaluation({"score": 0.0})  # fitted at update 101
    assert float(agent.core.anneal_origin) == 101.0
    agent.on_update(106)
    assert float(agent.core.action_temperature) == pytest.approx(0.1)
    agent.on_evaluation({"score": 0.0})
    agent.on_update(120)
    assert float(agent.core.anneal_origin) == 101.0
    assert float(agent.core.action_temperature) == pytest.approx(0.01)
    resumed, _ = _agent(action_temperature_end=0.01, action_anneal=[0, 10], action_anneal_score=0)
    resumed.load_acting_state_dict(agent.acting_state_dict())
    resumed.on_update(106)
    assert float(resumed.core.action_temperature) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="action_anneal_score is set"):
        Config(action_anneal_score=0.0).validate()


def test_straight_through_forward_is_argmax_and_gradient_is_the_softmax():
    """From `straight_through_from` updates on, the training forward pass is the argmax
    model's (the same logits as the no-gradient hard path) and the gradient is the soft one's."""
    hard, task = _agent(straight_through_from=5, hard_actions=True)
    soft, _ = _agent()  # the same seed: the same weights
    inputs, targets, mask = task.sample_batch(4, np.random.default_rng(5))
    batch = {"inputs": torch.as_tensor(inputs), "targets": torch.as_tensor(targets)}
    batch["mask"] = torch.as_tensor(mask)
    hard.on_update(4)
    assert not hard.core.straight_through
    torch.testing.assert_close(hard.loss(batch)[0], soft.loss(batch)[0])
    hard.on_update(5)
    assert hard.core.straight_through
    logits, _, a = hard.core.run(batch["inputs"])
    one_hot = torch.nn.functional.one_hot(a.argmax(-1), 3).float()
    torch.testing.assert_close(a, one_hot)  # hard + soft - soft: one-hot up to rounding
    with torch.no_grad():
        argmax_logits, _ = hard.core(batch["inputs"])  # the test-time argmax path
    torch.testing.assert_close(logits, argmax_logits)
    hard.loss(batch)[0].backward()
    assert hard.core.act_head.weight.grad.abs().sum() > 0  # through the softmax


def test_config_errors_name_the_key():
    with pytest.raises(ValueError, match="stacks must be >= 1"):
        Config(stacks=0).validate()
    with pytest.raises(ValueError, match="depth=3 must be <= capacity=2"):
        Config(depth=3, capacity=2).validate()


# ------------------------------------------------------------------------- training end to end


def test_stack_rnn_trains_through_ray_and_reports(tmp_path, ray_local, monkeypatch):
    # the report runs in the driver: two lengths keep the smoke test short
    from envs.formal_languages import AnBn

    monkeypatch.setattr(
        AnBn, "report_variants", [(f"n={n}", n, {"min_n": n, "max_n": n}) for n in (10, 60)]
    )
    cfg = load_config(
        "configs/stack_rnn_anbn.yaml",
        [
            "env.kwargs={min_n: 2, max_n: 4}",
            "agent.hidden_size=8",
            "agent.stacks=2",
            "agent.capacity=24",
            "agent.batch_size=8",
            "rollout.num_workers=1",
            "run.total_sequences=160",
            "run.eval_every_steps=200",
            "run.eval_episodes=4",
            "run.log_every_s=0",
            f"run.dir={tmp_path}",
        ],
    )
    run = RunDir.create(tmp_path, cfg.run.name, dump_config(cfg))
    trainer = Trainer(cfg, run)
    summary = trainer.train()
    assert summary["sequences"] == 160 and trainer.learner.updates == 20
    rows = read_metrics(run.metrics)
    assert "token_errors" in rows[-1] and "eval_return_mean" in rows[-1]
    final = run.path / "evaluation" / "final"
    report = json.loads((final / "generalisation.json").read_text())
    by_n = {r["length"]: r for r in report["rows"][1:]}
    # capacity 24 holds n = 10's pushes; longer ones still run (cells fall off the bottom)
    assert {10, 60}.issubset(by_n)
    assert all(0 <= r["sequence_accuracy"] <= 1 for r in by_n.values())
    assert (final / "generalisation.png").stat().st_size > 1000
    traces = list(final.glob("trace_*.png"))
    assert len(traces) == 2 and all(p.stat().st_size > 1000 for p in traces)
    # `memrl evaluate` records episodes and draws them with the stacks
    from rollout.cli import main

    assert main(["evaluate", str(run.path), "--episodes", "1"]) == 0
    (out,) = (run.path / "evaluation").glob("20*")
    (picture,) = (out / "recordings").glob("*.png")
    assert picture.stat().st_size > 5000


@pytest.mark.slow
def test_stack_rnn_learns_anbn_and_generalises_to_60(tmp_path):
    """The paper's first result: trained on n <= 20, every sequence right at n = 60."""
    from agents.learner import Learner, LearnerConfig

    torch.manual_seed(0)
    task = envs.make("memrl/AnBn-v0", min_n=2, max_n=20).unwrapped
    # trained with soft actions, scored with argmax ones (the paper's -hard): on aⁿbⁿ the soft
    # mixture drifts past n ~ 50 while the argmax actions hold (benchmarks/results/stack_rnn.json)
    cfg = Config(hard_actions=True)
    agent = make_agent(cfg, task.observation_space, task.action_space)
    learner = Learner(agent, LearnerConfig(optimizer="adam", lr=0.01, grad_clip=1.0))
    rng = np.random.default_rng(0)
    test = envs.make("memrl/AnBn-v0", min_n=60, max_n=60).unwrapped
    i, t, m = test.sample_batch(100, np.random.default_rng(1))
    held_out = {"inputs": torch.as_tensor(i), "targets": torch.as_tensor(t)}
    held_out["mask"] = torch.as_tensor(m)
    for update in range(2000):
        i, t, m = task.sample_batch(cfg.batch_size, rng)
        learner.update({"inputs": i, "targets": t, "mask": m})
        if update % 250 == 249 and agent.score_examples(held_out)["correct"].mean() == 1.0:
            break
    assert agent.score_examples(held_out)["correct"].mean() == 1.0


def test_benchmark_summary_and_table():
    from benchmarks.stack_rnn import format_table, summarise

    def run(seed, soft, hard):
        return {
            "seed": seed,
            "wall_s": 10.0 * (seed + 1),
            "sequences_correct_by_n": soft,
            "goal_met": min(soft.values()) >= 0.99,
            "hard_actions_sequences_correct_by_n": hard,
            "hard_actions_goal_met": min(hard.values()) >= 0.99,
        }

    runs = [
        run(0, {"20": 1.0, "60": 0.0}, {"20": 1.0, "60": 1.0}),
        run(1, {"20": 1.0, "60": 1.0}, {"20": 1.0, "60": 0.995}),
        run(2, {"20": 0.5, "60": 0.25}, {"20": 0.0, "60": 0.0}),
    ]
    soft, hard = summarise(runs), summarise(runs, "hard_actions_")
    assert soft["goal_met"] == "1/3" and hard["goal_met"] == "2/3"
    assert soft["n=60"] == {"median": 0.25, "min": 0.0, "max": 1.0}
    assert soft["median_wall_s"] == 20.0
    entry = {"agent": "stack_rnn", "task": "anbn", "runs": runs}
    entry |= {"summary": soft, "summary_hard_actions": hard}
    table = format_table({"entries": {"stack_rnn/anbn": entry}}).splitlines()
    assert len(table) == 4 and "argmax actions at test" in table[3]
    assert "| 3 | 1/3 | 100% (50-100) |" in table[2]


def test_entropy_selection_restarts_the_seeds_above_the_mean():
    from benchmarks.stack_rnn import above_mean, entropy_selection

    # seeds 0-3 screened: mean 0.25, so 1 and 3 (0.4, 0.5) restart as fresh seeds 4 and 5
    entropies = {0: 0.1, 1: 0.4, 2: 0.0, 3: 0.5, 4: 0.2, 5: 0.05}
    screened = []

    def screen(seed):
        screened.append(seed)
        return entropies[seed]

    kept, records = entropy_selection(screen, [0, 1, 2, 3], 1, iter([4, 5, 6]))
    assert screened == [0, 1, 2, 3, 4, 5]  # every seed once, the fresh ones in pool order
    # final pool (0, 4, 2, 5): mean 0.0875, so 0 and 4 are dropped
    assert kept == [2, 5]
    verdicts = {r["seed"]: (r["round"], r["verdict"]) for r in records}
    assert verdicts == {
        0: (0, "dropped"),
        1: (0, "restarted"),
        2: (0, "kept"),
        3: (0, "restarted"),
        4: (1, "dropped"),
        5: (1, "kept"),
    }
    by_seed = {r["seed"]: r for r in records}
    assert by_seed[1]["pool_mean"] == pytest.approx(0.25)
    assert by_seed[2]["pool_mean"] == pytest.approx(0.0875)
    # no restarts: the pool's own mean decides; a diverged run (inf) is above and out of the mean
    kept, _ = entropy_selection({0: 1.0, 1: float("inf"), 2: 3.0}.get, [0, 1, 2], 0, iter([]))
    assert kept == [0]
    assert above_mean({0: 1.0, 1: 1.0}) == ([], 1.0)  # equal to the mean is kept


def test_validation_entropy_of_a_stored_run(tmp_path, monkeypatch):
    """Bits per scored symbol from a run folder's newest checkpoint: a barely trained stack RNN
    on aⁿbⁿ is near log2(3) bits per symbol, the same on every call (fixed sequences)."""
    from benchmarks.stack_rnn import ROOT, config_budget, validation_entropy
    from envs.formal_languages import AnBn

    monkeypatch.setattr(AnBn, "report_variants", [("n=10", 10, {"min_n": 10, "max_n": 10})])
    overrides = ["agent.hidden_size=8", "agent.stacks=2", "agent.batch_size=8"]
    overrides += ["rollout.num_workers=0", "run.total_sequences=16", "run.eval_every_steps=0"]
    cfg = load_config("configs/stack_rnn_anbn.yaml", [*overrides, f"run.dir={tmp_path}"])
    run = RunDir.create(tmp_path, cfg.run.name, dump_config(cfg))
    Trainer(cfg, run).train()
    first = validation_entropy(run.path, 20, sequences=64)
    assert first == validation_entropy(run.path, 20, sequences=64)
    assert 0.8 < first < 2.5  # log2(3) = 1.58: the output layer has barely moved
    assert config_budget(ROOT / "configs/stack_rnn_anbn.yaml", []) == 32000
    assert config_budget(ROOT / "configs/stack_rnn_anbn.yaml", ["run.total_sequences=5"]) == 5


def test_selection_entry_in_the_table():
    from benchmarks.stack_rnn import format_table, summarise

    runs = [
        {"seed": s, "wall_s": 5.0, "sequences_correct_by_n": {"60": v}, "goal_met": v >= 0.99}
        for s, v in ((2, 1.0), (5, 0.5))
    ]
    entry = {"agent": "stack_rnn", "task": "anbncn", "runs": runs, "selected_seed": 5}
    entry |= {"summary": summarise(runs), "screen": [{"seed": s} for s in range(6)]}
    lines = format_table({"entries": {"stack_rnn/anbncn (entropy selection)": entry}}).splitlines()
    assert "| 2 kept of 6 screened | 1/2 |" in lines[2]
    assert "(entropy selection, selected seed 5) | anbncn | 1 | 0/1 |" in lines[3]
