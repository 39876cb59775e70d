"""`memrl evaluate`: a trained CartPole checkpoint in recorded episodes, the files it writes,
greedy/sampled action choice, the statistics, memory-task pictures, and user errors (exit 2)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

import envs
from agents import make_agent
from rollout.checkpoints import load_checkpoint, save_checkpoint
from rollout.cli import main
from rollout.config import dump_config, load_config
from rollout.episode_record import AgentPolicy, Sampling, run_episode
from rollout.evaluation import describe_returns
from rollout.run_dir import RunDir, read_metrics
from rollout.trainer import Trainer


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A tiny DQN trained on CartPole in-process (num_workers 0): numbered checkpoints, and the
    `best` checkpoint written by the periodic evaluation."""
    tmp = tmp_path_factory.mktemp("cartpole")
    cfg = load_config(
        "configs/dqn_cartpole.yaml",
        [
            "rollout.num_workers=0",
            "agent.learning_starts=200",
            "run.total_env_steps=3000",
            "run.eval_every_steps=1000",
            "run.eval_episodes=3",
            "run.checkpoint_every_steps=1000",
            "run.stop_return=null",
            f"run.dir={tmp}",
        ],
    )
    run = RunDir.create(tmp, cfg.run.name, dump_config(cfg))
    summary = Trainer(cfg, run).train()
    return run, summary


def only_eval_dir(run: RunDir, before: set):
    (new,) = set((run.path / "evaluation").iterdir()) - before
    return new


def eval_dirs(run: RunDir) -> set:
    folder = run.path / "evaluation"
    return set(folder.iterdir()) if folder.is_dir() else set()


def test_training_tracks_the_best_checkpoint(trained_run):
    run, summary = trained_run
    best = load_checkpoint(run.checkpoints / "best")["best"]
    assert best["eval_return_mean"] == pytest.approx(summary["best_eval_return"])
    evals = [r for r in read_metrics(run.metrics) if "eval_return_mean" in r]
    assert len(evals) >= 3  # at 1k, 2k, 3k steps and the final one
    assert max(r["eval_return_mean"] for r in evals) == pytest.approx(best["eval_return_mean"])
    assert all(r["eval_env_steps"] <= r["env_steps"] for r in evals)
    assert best["env_steps"] in {r["eval_env_steps"] for r in evals}


def test_evaluate_writes_all_files(trained_run, capsys):
    run, _ = trained_run
    before = eval_dirs(run)
    args = ["evaluate", str(run.path), "--checkpoint", "latest", "--episodes", "4", "--seed", "7"]
    assert main(args) == 0
    out = only_eval_dir(run, before)
    lines = [json.loads(x) for x in (out / "episodes.jsonl").read_text().splitlines()]
    assert [x["episode"] for x in lines] == [0, 1, 2, 3]
    assert [x["seed"] for x in lines] == [7, 8, 9, 10]
    for x in lines:
        assert x["env_id"] == "CartPole-v1" and x["env_kwargs"] == {}
        assert x["checkpoint_step"] == 3008 and x["policy"] == "greedy"
        assert x["return"] == x["length"] > 0 and x["wall_time_s"] > 0  # CartPole: +1 a step
        data = np.load(out / x["data"], allow_pickle=False)
        assert len(data["actions"]) == x["length"] and data["rewards"].sum() == x["return"]
        assert data["obs_hash"].shape == (x["length"] + 1,)
        assert data["agent_outputs"].shape == (x["length"], 2)  # the Q-values
        # greedy: each action is the argmax of the recorded Q-values
        assert np.array_equal(data["actions"], data["agent_outputs"].argmax(1))
    recorded = [x["recording"] for x in lines if "recording" in x]
    assert recorded == [f"recordings/episode_000{i}.mp4" for i in range(3)]
    assert all((out / r).stat().st_size > 2000 for r in recorded)
    assert (out / "recordings" / "episode_0000.mp4").read_bytes()[4:8] == b"ftyp"

    summary = json.loads((out / "summary.json").read_text())
    returns = [x["return"] for x in lines]
    assert summary["return"]["mean"] == pytest.approx(np.mean(returns))
    assert summary["return"]["min"] == min(returns) and summary["return"]["max"] == max(returns)
    assert summary["checkpoint"] == "000000003008" and summary["episodes"] == 4

    page = (out / "report.html").read_text()
    assert page.count("data:video/mp4;base64,") == 3 and "data:image/png;base64," in page
    assert "http://" not in page and "https://" not in page  # self-contained
    assert (out / "return_histogram.png").stat().st_size > 1000
    err = capsys.readouterr().err
    assert "return" in err and "95% CI" in err and "report.html" in err

    # the same options give the same episodes (greedy, seeded resets)
    before = eval_dirs(run)
    again_args = ["--checkpoint", "latest", "--episodes", "2", "--seed", "7", "--record", "none"]
    assert main(["evaluate", str(run.path), *again_args]) == 0
    again = [
        json.loads(x)
        for x in (only_eval_dir(run, before) / "episodes.jsonl").read_text().splitlines()
    ]
    assert [x["return"] for x in again] == returns[:2] and "recording" not in again[0]


def test_evaluate_best_and_numbered_checkpoints_with_gif(trained_run):
    run, _ = trained_run
    best = load_checkpoint(run.checkpoints / "best")["best"]
    before = eval_dirs(run)
    args = [
        "evaluate",
        str(run.path),
        "--checkpoint",
        "best",
        "--episodes",
        "1",
        "--record",
        "frames",
    ]
    assert main(args) == 0
    out = only_eval_dir(run, before)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["checkpoint"] == "best" and summary["checkpoint_step"] == best["env_steps"]
    assert (out / "recordings" / "episode_0000.gif").read_bytes()[:6] == b"GIF89a"
    assert "data:image/gif;base64," in (out / "report.html").read_text()

    before = eval_dirs(run)
    assert (
        main(
            [
                "evaluate",
                str(run.path),
                "--checkpoint",
                "2048",
                "--episodes",
                "1",
                "--record",
                "none",
            ]
        )
        == 0
    )
    assert (
        json.loads((only_eval_dir(run, before) / "summary.json").read_text())["checkpoint_step"]
        == 2048
    )


def test_evaluate_defaults_to_best_and_says_so(trained_run, capsys):
    """Without --checkpoint, a run with a `best` checkpoint is evaluated with it (training can end
    in a dip: issue 26's CartPole scored 124.4 on the latest weights, 500 on the best); the
    choice is printed. A checkpoint folder's path works as --checkpoint too."""
    run, _ = trained_run
    best = load_checkpoint(run.checkpoints / "best")["best"]
    before = eval_dirs(run)
    assert main(["evaluate", str(run.path), "--episodes", "1", "--record", "none"]) == 0
    summary = json.loads((only_eval_dir(run, before) / "summary.json").read_text())
    assert summary["checkpoint"] == "best" and summary["checkpoint_step"] == best["env_steps"]
    err = capsys.readouterr().err
    assert f"checkpoint {run.checkpoints / 'best'} (env step {best['env_steps']:,})" in err
    assert "the default: best if the run has one" in err

    before = eval_dirs(run)
    folder = run.checkpoints / "000000002048"
    assert main(["evaluate", str(run.path), "--checkpoint", str(folder), "--record", "none"]) == 0
    summary = json.loads((only_eval_dir(run, before) / "summary.json").read_text())
    assert summary["checkpoint"] == "000000002048" and summary["checkpoint_step"] == 2048
    assert "the default" not in capsys.readouterr().err


def test_evaluate_without_best_uses_latest(tmp_path, capsys):
    cfg = load_config("configs/dqn_cartpole.yaml", [f"run.dir={tmp_path}"])
    run = RunDir.create(tmp_path, cfg.run.name, dump_config(cfg))
    env = envs.make("CartPole-v1")
    agent = make_agent(cfg.agent, env.observation_space, env.action_space)
    for step in (10, 20):
        state = {"learner": {"agent": agent.state_dict()}, "counters": {"env_steps": step}}
        save_checkpoint(run.checkpoints, step, state)
    assert main(["evaluate", str(run.path), "--episodes", "1", "--record", "none"]) == 0
    (out,) = (run.path / "evaluation").iterdir()
    assert json.loads((out / "summary.json").read_text())["checkpoint_step"] == 20
    assert "(env step 20)" in capsys.readouterr().err


def test_sampled_evaluation_is_reproducible(trained_run):
    run, _ = trained_run
    cfg = load_config(run.config)
    env = envs.make("CartPole-v1")
    agent = make_agent(cfg.agent, env.observation_space, env.action_space)
    agent.load_state_dict(load_checkpoint(run.checkpoints / "000000003008")["learner"]["agent"])

    def actions(sampling: Sampling, seed: int = 3) -> np.ndarray:
        ep = run_episode(AgentPolicy(agent, sampling), "CartPole-v1", {}, seed)
        return ep.arrays["actions"]

    greedy = actions(Sampling())
    for sampling in (Sampling("epsilon", 0.5), Sampling("temperature", 2.0)):
        a, b = actions(sampling), actions(sampling)
        assert np.array_equal(a, b)  # seeded per episode: reproducible
        n = min(len(a), len(greedy))
        assert not np.array_equal(a[:n], greedy[:n])  # and it does sample


@pytest.mark.parametrize(
    "config,env_id",
    [
        ("configs/dqn_cartpole.yaml", "CartPole-v1"),
        ("configs/reinforce_cartpole.yaml", "CartPole-v1"),
        ("configs/ntm_copy.yaml", "memrl/Copy-v0"),
        ("configs/lstm_copy.yaml", "memrl/Copy-v0"),
    ],
)
def test_greedy_scores_give_the_agents_own_greedy_actions(config, env_id):
    cfg = load_config(config)
    env = envs.make(env_id, **cfg.env.kwargs)
    torch.manual_seed(0)
    agent = make_agent(cfg.agent, env.observation_space, env.action_space)
    policy = AgentPolicy(agent, Sampling())
    policy.reset(0)
    state = agent.initial_state(1)
    obs, _ = env.reset(seed=0)
    for _ in range(15):
        mine, _ = policy.act(obs)
        theirs, state, _ = agent.act(np.asarray(obs)[None], state, False)
        assert np.array_equal(np.asarray(mine), theirs[0])
        obs, _, terminated, truncated, _ = env.step(mine)
        if terminated or truncated:
            break


def test_describe_returns():
    values = [1.0, 2.0, 3.0, 4.0, 10.0]
    s = describe_returns(values, seed=0)
    assert s["mean"] == 4.0 and s["median"] == 3.0 and s["min"] == 1.0 and s["max"] == 10.0
    assert s["std"] == pytest.approx(np.std(values, ddof=1))
    low, high = s["ci95"]
    assert 1.0 <= low < 4.0 < high <= 10.0
    assert describe_returns(values, seed=0) == s  # seeded bootstrap
    assert describe_returns([5.0])["ci95"] == [5.0, 5.0]


def fresh_run(tmp_path, config: str, overrides: list[str]) -> RunDir:
    """A run dir whose one checkpoint (env step 0) holds an untrained agent."""
    cfg = load_config(config, [*overrides, f"run.dir={tmp_path}"])
    run = RunDir.create(tmp_path, cfg.run.name, dump_config(cfg))
    env = envs.make(cfg.env.id, **cfg.env.kwargs)
    torch.manual_seed(0)
    agent = make_agent(cfg.agent, env.observation_space, env.action_space)
    state = {"learner": {"agent": agent.state_dict()}, "counters": {"env_steps": 0}}
    save_checkpoint(run.checkpoints, 0, state)
    return run


def test_memory_task_pictures(tmp_path):
    run = fresh_run(
        tmp_path,
        "configs/ntm_copy.yaml",
        [
            "env.kwargs={bits: 4, min_len: 3, max_len: 5}",
            "agent.memory_n=16",
            "agent.controller_size=16",
        ],
    )
    assert main(["evaluate", str(run.path), "--episodes", "2"]) == 0
    (out,) = (run.path / "evaluation").iterdir()
    pictures = sorted((out / "recordings").glob("*.png"))
    assert [p.name for p in pictures] == ["episode_0000.png", "episode_0001.png"]
    assert all(p.stat().st_size > 5000 for p in pictures)
    data = np.load(out / "episodes" / "episode_0000.npz", allow_pickle=False)
    steps = len(data["actions"])
    assert data["targets"].shape == (steps, 4) and data["output_step"].sum() == (steps - 1) // 2
    assert data["observations"].shape == (steps + 1, 5)
    lines = [json.loads(x) for x in (out / "episodes.jsonl").read_text().splitlines()]
    # reward is minus the wrong bits on the output steps
    wrong = ((data["agent_outputs"] > 0) != data["targets"]).sum(1) * data["output_step"]
    assert lines[0]["return"] == -wrong.sum()
    assert (out / "report.html").read_text().count("data:image/png;base64,") == 3


def test_bad_inputs_exit_2(trained_run, tmp_path, capsys):
    run, _ = trained_run

    def fails(args: list[str], *words: str) -> None:
        assert main(args) == 2
        err = "".join(capsys.readouterr().err.split())
        for word in words:
            assert "".join(word.split()) in err, err

    fails(["evaluate", str(tmp_path / "nope")], "does not exist")
    (tmp_path / "empty").mkdir()
    fails(["evaluate", str(tmp_path / "empty")], "not a memrl run directory")
    bare = RunDir.create(tmp_path, "bare", run.config.read_text())
    fails(["evaluate", str(bare.path)], "no complete checkpoint")
    fails(["evaluate", str(run.path), "--checkpoint", "newest"], "'latest' or 'best'", "2048")
    fails(["evaluate", str(run.path), "--checkpoint", "5"], "no complete checkpoint at env step 5")
    no_best = tmp_path / "no_best"
    shutil.copytree(run.path, no_best, ignore=shutil.ignore_patterns("best", "evaluation"))
    fails(["evaluate", str(no_best), "--checkpoint", "best"], "no 'best' checkpoint")
    fails(["evaluate", str(run.path), "--env-override", "max_episode_steps"], "KEY=VALUE")
    fails(["evaluate", str(run.path), "--env-override", "gravity=3"], "gravity")
    fails(["evaluate", str(run.path), "--episodes", "0"], "--episodes")
    ntm = fresh_run(
        tmp_path, "configs/ntm_copy.yaml", ["agent.memory_n=16", "agent.controller_size=8"]
    )
    fails(["evaluate", str(ntm.path), "--env-override", "bits=5"], "do not fit agent 'ntm'")
    assert not (ntm.path / "evaluation").exists() or not any((ntm.path / "evaluation").iterdir())
    fails(["evaluate", str(run.path), "--epsilon", "1.5"], "--epsilon")
