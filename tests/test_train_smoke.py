"""Each agent end to end through real Ray actors (2 workers): train a few iterations, write a
checkpoint that reloads to identical action distributions, resume with continuing counters."""

from __future__ import annotations

import json

import numpy as np
import pytest
import ray
import torch

import envs
from agents import make_agent
from rollout.checkpoints import latest_checkpoint, load_checkpoint
from rollout.cli import main
from rollout.config import dump_config, load_config
from rollout.run_dir import RunDir, read_metrics
from rollout.trainer import Trainer

SMOKE = {
    "dqn": [
        "configs/dqn_cartpole.yaml",
        "agent.learning_starts=64",
        "agent.buffer_size=2000",
        "rollout.steps_per_sample=32",
    ],
    "reinforce": ["configs/reinforce_cartpole.yaml", "rollout.steps_per_sample=200"],
    "ntm": [
        "configs/ntm_copy.yaml",
        "env.kwargs={min_len: 1, max_len: 5}",
        "agent.memory_n=16",
        "agent.controller_size=16",
        "agent.batch_size=4",
    ],
    "lstm": [
        "configs/lstm_copy.yaml",
        "env.kwargs={min_len: 1, max_len: 5}",
        "agent.hidden_size=16",
    ],
}
COMMON = [
    "rollout.num_workers=2",
    "rollout.envs_per_worker=2",
    "run.eval_episodes=2",
    "run.stop_return=null",
]


def smoke_config(agent: str, tmp_path, steps: int):
    path, *overrides = SMOKE[agent]
    extra = [
        f"run.total_env_steps={steps}",
        f"run.checkpoint_every_steps={steps // 2}",
        f"run.dir={tmp_path}",
    ]
    return load_config(path, overrides + COMMON + extra)


def distributions(agent, obs: np.ndarray) -> torch.Tensor:
    with torch.no_grad():
        x = torch.as_tensor(obs)
        if hasattr(agent, "q_values"):
            return agent.q_values(x)
        if hasattr(agent, "core"):  # sequence agents: Bernoulli probabilities over a sequence
            return torch.sigmoid(agent.core(x.reshape(4, 4, -1))[0])
        return agent.head.distribution(agent.policy(agent._encode(x))).probs


@pytest.mark.parametrize("agent_name", ["dqn", "reinforce", "ntm", "lstm"])
def test_train_checkpoint_reload_resume_through_ray(agent_name, tmp_path, ray_local, monkeypatch):
    cfg = smoke_config(agent_name, tmp_path, steps=1200)
    run = RunDir.create(tmp_path, cfg.run.name, dump_config(cfg))
    monkeypatch.chdir(tmp_path)  # the actors work in the driver's folder of the moment
    trainer = Trainer(cfg, run)
    evaluator = ray.get(trainer.evaluator.actor.location.remote())
    assert {loc["cwd"] for loc in [*trainer.workers.locations, evaluator]} == {str(tmp_path)}
    summary = trainer.train()
    assert summary["env_steps"] >= 1200
    assert trainer.learner.updates > 0
    assert len(trainer.workers.actors) == 2

    # the checkpoint reloads into a fresh agent with identical action distributions
    ckpt = latest_checkpoint(run.checkpoints)
    state = load_checkpoint(ckpt)
    assert state["counters"]["env_steps"] == summary["env_steps"]
    env = envs.make(cfg.env.id)
    fresh = make_agent(cfg.agent, env.observation_space, env.action_space)
    fresh.load_state_dict(state["learner"]["agent"])
    width = env.observation_space.shape[0]
    obs = np.random.default_rng(0).normal(size=(16, width)).astype(np.float32)
    torch.testing.assert_close(
        distributions(fresh, obs), distributions(trainer.agent.cpu(), obs), rtol=0, atol=0
    )

    if agent_name in ("ntm", "lstm"):  # the generalisation report: table, plot, pictures
        final = run.path / "evaluation" / "final"
        report = json.loads((final / "generalisation.json").read_text())
        scored = [r for r in report["rows"] if "bit_errors_per_seq" in r]
        skipped = [r for r in report["rows"] if "skipped" in r]
        assert scored and all(r["bit_errors_per_seq"] >= 0 for r in scored)
        if agent_name == "ntm":  # lengths beyond 16 memory rows are skipped, not run
            assert skipped and "memory rows" in skipped[0]["skipped"]
        assert (final / "generalisation.png").stat().st_size > 1000
        assert list(final.glob("trace_*.png"))

    rows = read_metrics(run.metrics)
    assert rows[-1]["env_steps"] == summary["env_steps"] and "eval_return_mean" in rows[-1]
    assert (
        json.loads(run.metrics.read_text().splitlines()[-1])["updates"] == trainer.learner.updates
    )

    # resume: counters continue from the checkpoint, the run goes on to the new total
    cfg2 = load_config(run.config, [f"run.total_env_steps={summary['env_steps'] + 600}"])
    resumed = Trainer(cfg2, run, resume=True)
    assert resumed.env_steps == summary["env_steps"]
    assert resumed.learner.updates == trainer.learner.updates
    if resumed.replay is not None:
        assert len(resumed.replay) == len(trainer.replay)
    summary2 = resumed.train()
    assert summary2["env_steps"] >= summary["env_steps"] + 600
    assert resumed.learner.updates > trainer.learner.updates
    steps = [r["env_steps"] for r in read_metrics(run.metrics)]
    assert steps == sorted(steps)


def test_cli_train_and_resume_in_process_workers(tmp_path, capsys):
    base = [
        "configs/dqn_cartpole.yaml",
        "rollout.num_workers=0",
        "agent.learning_starts=64",
        f"run.dir={tmp_path}",
    ]
    assert main(["train", *base, "run.total_env_steps=640", "run.eval_episodes=1"]) == 0
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert (run_dir / "config.yaml").is_file() and list((run_dir / "tb").iterdir())
    out = capsys.readouterr().out  # the one-line summary goes to stdout
    assert "done:" in out and "640 env steps" in out
    assert main(["train", "--resume", str(run_dir), "run.total_env_steps=1280"]) == 0
    captured = capsys.readouterr()
    assert "resumed from" in captured.err and "1,280 env steps" in captured.out
    state = load_checkpoint(latest_checkpoint(run_dir / "checkpoints"))
    assert state["counters"]["env_steps"] == 1280


def test_weights_go_to_the_workers_only_after_learner_updates(tmp_path):
    """Before learning starts nothing changes on the learner, so nothing is broadcast; after it,
    every `rollout.weights_every` updates."""
    cfg = load_config(
        "configs/dqn_cartpole.yaml",
        [
            "rollout.num_workers=0",
            "rollout.envs_per_worker=2",
            "rollout.steps_per_sample=32",
            "agent.learning_starts=320",
            "agent.replay_ratio=0.25",  # 8 updates per 32-step iteration
            "rollout.weights_every=16",  # -> a broadcast every other iteration
            "run.total_env_steps=960",
            "run.eval_every_steps=0",
            "run.eval_episodes=1",
            "run.stop_return=null",
            f"run.dir={tmp_path}",
        ],
    )
    run = RunDir.create(tmp_path, cfg.run.name, dump_config(cfg))
    trainer = Trainer(cfg, run)
    sent = []
    original = trainer.workers.set_weights
    trainer.workers.set_weights = lambda w, kwargs=None: (
        sent.append(trainer.learner.updates),
        original(w, kwargs),
    )
    trainer.train()
    assert sent[0] == 0  # the initial weights
    later = sent[1:]
    assert later and all(b - a >= 16 for a, b in zip([0, *later], later))
    assert trainer.learner.updates - later[-1] < 16 + 8


def test_lstm_learns_to_execute_through_ray(tmp_path, ray_local):
    """Learning to Execute (a symbol task with a curriculum) through a Ray worker."""
    cfg = load_config(
        "configs/lstm_learn_to_execute.yaml",
        [
            "agent.hidden_size=32",
            "agent.batch_size=16",
            "env.curriculum_threshold=-1000",  # every evaluation moves the level
            "run.total_sequences=320",
            "run.eval_every_steps=1500",
            "run.eval_episodes=4",
            "run.log_every_s=0",
            f"run.dir={tmp_path}",
        ],
    )
    run = RunDir.create(tmp_path, cfg.run.name, dump_config(cfg))
    trainer = Trainer(cfg, run)
    summary = trainer.train()
    assert summary["sequences"] == 320 and trainer.learner.updates == 20
    rows = read_metrics(run.metrics)
    assert max(r.get("curriculum_level", 0) for r in rows) >= 1
    assert "token_errors" in rows[-1] and "cost_bits" in rows[-1]
    assert any("eval_level_return_mean" in r for r in rows)  # the level, beside the target
    # the end-of-run table: per-character accuracy at every addition length up to the target
    report = json.loads((run.path / "evaluation/final/generalisation.json").read_text())
    assert [r["variant"] for r in report["rows"][1:]] == [f"{k} digits" for k in range(1, 10)]
    assert all(0.0 <= r["token_accuracy"] <= 1.0 for r in report["rows"])


def test_report_weights_final_scores_the_last_weights(tmp_path, ray_local):
    """`run.report_weights: final` (dynamic n-grams: the evaluations count wrong bits, the
    report the cost) makes the end-of-run report score the final weights, not the best
    evaluation's: its cost is the last checkpoint's on the same 1000 validation sequences."""
    from rollout.sequence_report import write_report

    cfg = load_config(
        "configs/lstm_dynamic_ngrams.yaml",
        [
            "env.kwargs={n: 3, length: 20}",
            "agent.hidden_size=8",
            "agent.layers=1",
            "run.total_sequences=96",
            "run.eval_every_steps=400",
            "run.eval_episodes=2",
            "run.report_weights=final",
            "run.log_every_s=0",
            f"run.dir={tmp_path}",
        ],
    )
    run = RunDir.create(tmp_path, cfg.run.name, dump_config(cfg))
    trainer = Trainer(cfg, run)
    untrained = {k: v.clone() for k, v in trainer.agent.acting_state_dict().items()}
    trainer.train()
    path = run.path / "evaluation/final/generalisation.json"
    report = json.loads(path.read_text())
    state = load_checkpoint(latest_checkpoint(run.checkpoints))
    env = envs.make(cfg.env.id, **cfg.env.kwargs)
    final = make_agent(cfg.agent, env.observation_space, env.action_space)
    final.load_state_dict(state["learner"]["agent"])
    again = write_report(final, cfg.env.id, cfg.env.kwargs, tmp_path / "again", seed=cfg.run.seed)
    assert report["rows"][0] == again["rows"][0]
    assert report["sequences_per_row"] == 1000
    # with other best weights (here the untrained ones): 'final' ignores them, 'best' scores them
    trainer.best_weights = untrained
    trainer._final_report()
    assert json.loads(path.read_text())["rows"][0] == again["rows"][0]
    trainer.cfg.run.report_weights = "best"
    trainer._final_report()
    assert json.loads(path.read_text())["rows"][0] != again["rows"][0]


def test_actors_take_the_drivers_folder_only_under_an_embedded_ray(tmp_path, monkeypatch):
    """An embedded start marks its processes (a sweep's trials inherit the mark, and their
    rollout actors then work in the trial's folder, the user's); joining a cluster does not."""
    from rollout.ray_runtime import EMBEDDED_RAY_ENV, actor_folder

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(EMBEDDED_RAY_ENV, "1")
    assert actor_folder() == str(tmp_path)
    monkeypatch.delenv(EMBEDDED_RAY_ENV)
    assert actor_folder() is None
