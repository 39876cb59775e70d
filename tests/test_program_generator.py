"""The CLEVR program generator: acting state, the shared REINFORCE loss, MLE training on the
dataset source, REINFORCE through Ray warm-started from it, and checkpoints that reload."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import agents.losses
import agents.reinforce
from agents import AgentError, EpisodeSpec, SupervisedSpec, make_agent, program_generator
from envs.clevr.env import ClevrVQA
from rollout.checkpoints import latest_checkpoint, load_checkpoint
from rollout.config import dump_config, load_config
from rollout.run_dir import RunDir, read_metrics
from rollout.trainer import Trainer
from rollout.worker import RolloutWorker

DATA = {
    "scenes": "generated",
    "num_scenes": 60,
    "valid_scenes": 8,
    "test_scenes": 8,
    "questions_per_scene": 5,
    "num_programs": 40,
}
TINY = ["agent.embed_dim=16", "agent.hidden_size=32", "agent.layers=1"]


def _kwargs_override() -> str:
    return "env.kwargs={" + ", ".join(f"{k}: {v}" for k, v in DATA.items()) + "}"


def _agent(objective: str = "reinforce") -> tuple[ClevrVQA, program_generator.ProgramGenerator]:
    torch.manual_seed(0)
    env = ClevrVQA(**DATA)
    cfg = program_generator.Config(objective=objective, embed_dim=16, hidden_size=32, layers=1)
    return env, make_agent(cfg, env.observation_space, env.action_space)


def test_objective_picks_the_data_and_bad_spaces_are_refused() -> None:
    env, agent = _agent("mle")
    assert agent.data_spec() == SupervisedSpec(batch_size=64)
    assert _agent("reinforce")[1].data_spec() == EpisodeSpec()
    agent.check_task(env, "memrl/ClevrVQA-v0")
    with pytest.raises(AgentError, match="no dataset"):
        agent.check_task(object(), "CartPole-v1")
    import gymnasium as gym

    with pytest.raises(AgentError, match="1-D integer Box"):
        make_agent(
            program_generator.Config(),
            gym.spaces.Box(0.0, 1.0, (4,), np.float32),
            env.action_space,
        )
    with pytest.raises(ValueError, match="objective must be one of"):
        program_generator.Config(objective="ppo").validate()


def test_acting_step_by_step_is_the_greedy_decoder() -> None:
    """`act` (the workers' path, state carried between calls, a fresh encoding per episode)
    emits the same tokens as whole-batch greedy decoding."""
    env, agent = _agent()
    d = env.dataset("valid")
    questions = d.arrays["question"][:5]
    want = agent.decode(torch.as_tensor(questions), 12).numpy()
    state = agent.initial_state(5)
    state = agent.reset_state(state, np.ones(5, bool))
    got = []
    for _ in range(12):
        tokens, state, extras = agent.act(questions, state, explore=False)
        got.append(tokens)
        assert extras["log_prob"].shape == (5,) and (extras["log_prob"] <= 0).all()
    got = np.stack(got, 1)
    for row in range(5):  # up to and with each row's <END>
        n = list(want[row]).index(2) + 1 if 2 in want[row] else 12
        np.testing.assert_array_equal(got[row, :n], want[row, :n])
    # a row whose episode ended encodes its next question afresh
    state = agent.reset_state(state, np.array([True, False, False, False, False]))
    first, _, _ = agent.act(questions[[1, 1, 2, 3, 4]], state, explore=False)
    assert first[0] == want[1, 0]


def test_reinforce_loss_recomputes_the_acting_log_probs() -> None:
    """Episodes from a rollout worker: teacher-forcing the sampled tokens gives the log-probs
    the policy sampled them with (the gap is 0 with the same weights), and the loss is the
    shared reinforce_loss with IEP's moving-average baseline."""
    env, agent = _agent()
    worker = RolloutWorker("memrl/ClevrVQA-v0", DATA, agent.cfg, 4, seed=0)
    worker.set_weights(agent.acting_state_dict())
    batch = worker.sample_episodes(40).data
    assert batch["obs"].shape[1:] == (batch["mask"].shape[1], 40)
    assert batch["targets"].shape[2] == env.cfg.max_program_len + 1
    tensors = {k: torch.as_tensor(v) for k, v in batch.items()}
    loss, metrics = agent.loss(tensors)
    assert float(metrics["log_prob_gap"]) < 1e-5
    assert loss.requires_grad and metrics["baseline"] == 0.0
    rewards = batch["rewards"].sum(0)
    assert float(metrics["episode_return_mean"]) == pytest.approx(rewards.mean())
    # the baseline moved toward the batch's mean reward: b = 0.9 * 0 + 0.1 * R
    assert float(agent.baseline.value) == pytest.approx(0.1 * rewards.mean())


def test_the_same_reinforce_loss_as_the_reinforce_agent(monkeypatch) -> None:
    assert program_generator.reinforce_loss is agents.losses.reinforce_loss
    assert agents.reinforce.reinforce_loss is agents.losses.reinforce_loss
    calls = []

    def spy(*args, **kwargs):
        calls.append((args, kwargs))
        return agents.losses.reinforce_loss(*args, **kwargs)

    monkeypatch.setattr(program_generator, "reinforce_loss", spy)
    _, agent = _agent()
    t, b = 3, 2
    batch = {
        "obs": torch.tensor([[[1, 5, 6, 2] + [0] * 36] * b] * t),
        "actions": torch.tensor([[7, 8], [9, 2], [2, 0]]),
        "rewards": torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0]]),
        "mask": torch.tensor([[1.0, 1.0], [1.0, 1.0], [1.0, 0.0]]),
    }
    agent.loss(batch)
    ((args, kwargs),) = calls
    assert kwargs["reduction"] == "sequence" and args[3] is agent.baseline
    assert isinstance(agent.baseline, agents.losses.MovingAverageBaseline)
    assert agent.baseline.decay == 0.9
    # returns: the final reward at every step of its episode
    torch.testing.assert_close(args[1], torch.tensor([[1.0, 1.0], [1.0, 1.0], [1.0, 0.0]]))


def test_word_dropout_hides_question_words_in_training_only(monkeypatch) -> None:
    """`word_dropout` replaces question words (never <NULL>/<START>/<END>) by <UNK> in the MLE
    training pass, about the configured fraction of them; evaluation sees the question."""
    env, agent = _agent("mle")
    agent.cfg.word_dropout = 0.5
    d = env.dataset("train")
    batch = {k: torch.as_tensor(v) for k, v in d.take(np.arange(40)).items()}
    seen = []
    forward = agent.model.forward

    def spy(src, src_mask, tgt_in):
        seen.append(src.clone())
        return forward(src, src_mask, tgt_in)

    monkeypatch.setattr(agent.model, "forward", spy)
    torch.manual_seed(0)
    agent.train()
    agent.loss(batch)
    question = batch["question"]
    words = question > program_generator.UNK_ID
    hidden = seen[0] != question
    assert (seen[0][hidden] == program_generator.UNK_ID).all()
    assert not (hidden & ~words).any()  # specials and padding untouched
    assert 0.4 < hidden.sum() / words.sum() < 0.6
    agent.eval()
    agent.loss(batch)
    torch.testing.assert_close(seen[1], question)
    with pytest.raises(ValueError, match="word_dropout"):
        program_generator.Config(word_dropout=1.0).validate()


def _mle_config(tmp_path, *extra):
    return load_config(
        "configs/vqa_mle.yaml",
        [
            _kwargs_override(),
            *TINY,
            "agent.batch_size=20",
            "learner.lr=0.01",
            "run.total_epochs=6",
            "run.eval_every_epochs=3",
            "run.log_every_s=0",
            f"run.dir={tmp_path}",
            *extra,
        ],
    )


def test_mle_on_the_dataset_source_then_reinforce_through_ray(tmp_path, ray_local) -> None:
    torch.set_num_threads(1)
    cfg = _mle_config(tmp_path)
    mle_run = RunDir.create(tmp_path, cfg.run.name, dump_config(cfg))
    mle = Trainer(cfg, mle_run)
    summary = mle.train()
    assert summary["epochs"] == 6 and summary["updates"] == 12  # 40 programs, batches of 20
    evals = [r for r in read_metrics(mle_run.metrics) if "eval_accuracy" in r]
    assert [r["epochs"] for r in evals][:2] == [3, 6]
    assert (mle_run.path / "evaluation" / "final" / "test.json").is_file()

    # checkpoint round trip: a fresh agent with the checkpoint's weights scores identically
    state = load_checkpoint(latest_checkpoint(mle_run.checkpoints))
    env = ClevrVQA(**DATA)
    fresh = make_agent(cfg.agent, env.observation_space, env.action_space)
    fresh.load_state_dict(state["learner"]["agent"])
    batch = {k: torch.as_tensor(v) for k, v in env.dataset("valid").take(np.arange(16)).items()}
    assert cfg.agent.dropout > 0  # the config's: eval mode compares the weights, not masks
    fresh, trained = fresh.eval(), mle.agent.cpu().eval()
    torch.testing.assert_close(
        fresh.model(batch["question"], batch["question_mask"], batch["program"][:, :-1]),
        trained.model(batch["question"], batch["question_mask"], batch["program"][:, :-1]),
        rtol=0,
        atol=0,
    )

    # REINFORCE through one Ray worker, warm-started from the MLE run's best weights
    cfg2 = load_config(
        "configs/vqa_reinforce.yaml",
        [
            _kwargs_override(),
            *TINY,
            "agent.entropy_coef=0.01",  # a gradient even when no episode earns a reward
            "rollout.num_workers=1",
            "rollout.envs_per_worker=4",
            "rollout.steps_per_sample=60",
            "run.total_env_steps=300",
            "run.eval_every_steps=150",
            "run.eval_episodes=8",
            "run.checkpoint_every_steps=150",
            "run.log_every_s=0",
            f"run.dir={tmp_path}",
            f"run.init_from={mle_run.path}",
        ],
    )
    rl_run = RunDir.create(tmp_path, cfg2.run.name, dump_config(cfg2))
    rl = Trainer(cfg2, rl_run)
    best = load_checkpoint(mle_run.checkpoints / "best")["best"]["agent"]
    for key, value in best.items():
        torch.testing.assert_close(rl.agent.state_dict()[key], value, rtol=0, atol=0)
    summary2 = rl.train()
    assert summary2["env_steps"] >= 300 and summary2["episodes"] > 0
    assert rl.learner.updates > 0 and len(rl.workers.actors) == 1
    rows = read_metrics(rl_run.metrics)
    assert "eval_return_mean" in rows[-1] and 0.0 <= rows[-1]["eval_return_mean"] <= 1.0
    assert latest_checkpoint(rl_run.checkpoints) is not None
    # the weights moved away from the warm start
    moved = rl.agent.cpu().state_dict()
    assert any(not torch.equal(moved[k], v) for k, v in best.items())
