"""`memrl replay`: recorded CartPole and Atari (ALE/Pong-v5) episodes replay exactly; a changed
action or reward is reported as a mismatch with its step (exit 1); bad references exit 2."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import envs
from agents import make_agent
from rollout.checkpoints import save_checkpoint
from rollout.cli import main
from rollout.config import dump_config, load_config
from rollout.episode_record import RandomPolicy, load_episode, run_episode, save_episode
from rollout.episode_replay import replay_episode
from rollout.run_dir import RunDir


@pytest.fixture(scope="module")
def cartpole_eval(tmp_path_factory):
    """`memrl evaluate` output for a DQN checkpoint on CartPole, epsilon 0.2 so the episodes
    mix greedy and random actions."""
    tmp = tmp_path_factory.mktemp("replay")
    cfg = load_config("configs/dqn_cartpole.yaml", [f"run.dir={tmp}"])
    run = RunDir.create(tmp, cfg.run.name, dump_config(cfg))
    env = envs.make("CartPole-v1")
    torch.manual_seed(0)
    agent = make_agent(cfg.agent, env.observation_space, env.action_space)
    save_checkpoint(
        run.checkpoints,
        0,
        {"learner": {"agent": agent.state_dict()}, "counters": {"env_steps": 0}},
    )
    args = ["evaluate", str(run.path), "--episodes", "3", "--epsilon", "0.2", "--record", "none"]
    assert main(args) == 0
    (out,) = (run.path / "evaluation").iterdir()
    return out


def tampered(src, dest, key: str, step: int, change) -> None:
    meta, arrays = load_episode(src)
    arrays[key] = arrays[key].copy()
    arrays[key][step] = change(arrays[key][step])
    np.savez_compressed(dest, meta=np.asarray(json.dumps(meta)), **arrays)


def test_cartpole_episode_replays_exactly(cartpole_eval, capsys):
    lines = [json.loads(x) for x in (cartpole_eval / "episodes.jsonl").read_text().splitlines()]
    assert main(["replay", f"{cartpole_eval / 'episodes.jsonl'}#1"]) == 0
    out = "".join(capsys.readouterr().out.split())
    assert f"exactmatch:{lines[1]['length']}stepsofCartPole-v1seed1" in out
    result = replay_episode(str(cartpole_eval / lines[2]["data"]))
    assert result.matches and result.steps == lines[2]["length"]
    assert "observations" in np.load(cartpole_eval / lines[2]["data"]).files  # small: stored


def test_changed_action_or_reward_is_a_mismatch(cartpole_eval, tmp_path, capsys):
    src = cartpole_eval / "episodes" / "episode_0000.npz"
    bad = tmp_path / "changed_action.npz"
    tampered(src, bad, "actions", 5, lambda a: 1 - a)
    assert main(["replay", str(bad)]) == 1
    out = "".join(capsys.readouterr().out.split())
    # CartPole's observation after step 5 is the first thing a different push changes
    assert "MISMATCH" in out and "step5:theobservationafterstep5differs" in out
    result = replay_episode(str(bad))
    assert not result.matches and result.steps == 6

    bad_reward = tmp_path / "changed_reward.npz"
    tampered(src, bad_reward, "rewards", 3, lambda r: r + 0.5)
    result = replay_episode(str(bad_reward))
    assert result.mismatch == "step 3: reward 1.0 replayed, 1.5 recorded"


def test_replay_renders_video(cartpole_eval, tmp_path):
    result = replay_episode(f"{cartpole_eval / 'episodes.jsonl'}#0", render="")
    assert result.matches
    assert result.video == cartpole_eval / "episodes" / "episode_0000_replay.mp4"
    assert result.video.read_bytes()[4:8] == b"ftyp"
    gif = tmp_path / "replay.gif"
    assert main(["replay", f"{cartpole_eval / 'episodes.jsonl'}#0", "--render", str(gif)]) == 0
    assert gif.read_bytes()[:6] == b"GIF89a"


def test_atari_episode_replays_exactly(tmp_path):
    # sticky actions (p = 0.25) and no-op starts are drawn from the env's seeded generator
    kwargs = {"max_episode_steps": 60}
    env = envs.make("ALE/Pong-v5", **kwargs)
    episode = run_episode(
        RandomPolicy(env.action_space), "ALE/Pong-v5", kwargs, seed=11, render=True
    )
    # capped at 60 agent steps (ALE's frame cap also counts the no-op frames of the reset)
    assert 30 <= episode.length <= 60 and (episode.truncated or episode.terminated)
    assert len(episode.frames) == episode.length + 1
    assert episode.frames[0].shape == (210, 160, 3)
    path = tmp_path / "pong.npz"
    save_episode(path, episode)
    result = replay_episode(str(path))
    assert result.matches and result.steps == episode.length
    assert len(np.unique(episode.arrays["obs_hash"])) > 10  # the frames do change

    bad = tmp_path / "pong_changed.npz"
    actions = episode.arrays["actions"]
    step = int(np.flatnonzero(actions[10:] != 0)[0]) + 10  # an action that is not NOOP
    tampered(path, bad, "actions", step, lambda a: 0)
    result = replay_episode(str(bad))
    assert not result.matches and result.mismatch.startswith("step ")
    assert int(result.mismatch.split(":")[0].split()[1]) >= step


def test_bad_episode_references_exit_2(cartpole_eval, tmp_path, capsys):
    listing = cartpole_eval / "episodes.jsonl"

    def fails(reference: str, *words: str) -> None:
        assert main(["replay", reference]) == 2
        err = "".join(capsys.readouterr().err.split())
        for word in words:
            assert "".join(word.split()) in err, err

    fails(f"{tmp_path / 'none.jsonl'}#0", "does not exist")
    fails(f"{listing}#x", "'x' is not a number")
    fails(f"{listing}#9", "has no episode 9", "0-2")
    fails(str(tmp_path / "episode.txt"), "episodes.jsonl#N")
    fails(str(tmp_path / "missing.npz"), "does not exist")
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    fails(str(tmp_path / "other.npz"), "not a memrl episode file")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    fails(str(tmp_path / "junk.npz"), "cannot read episode file")
    (tmp_path / "other.jsonl").write_text('{"a": 1}\n')
    fails(f"{tmp_path / 'other.jsonl'}#0", "not an episodes.jsonl file")


def test_atari_dqn_evaluation_replays_exactly(tmp_path, capsys):
    """The whole path on Atari: a (untrained) Nature-CNN DQN checkpoint for ALE/Pong-v5,
    `memrl evaluate` with epsilon 0.1 and a short episode, then `memrl replay` of it."""
    cfg = load_config("configs/dqn_pong.yaml", [f"run.dir={tmp_path}"])
    run = RunDir.create(tmp_path, cfg.run.name, dump_config(cfg))
    env = envs.make(cfg.env.id, **cfg.env.kwargs)
    torch.manual_seed(0)
    agent = make_agent(cfg.agent, env.observation_space, env.action_space)
    state = {"learner": {"agent": agent.state_dict()}, "counters": {"env_steps": 0}}
    save_checkpoint(run.checkpoints, 0, state)
    args = ["evaluate", str(run.path), "--episodes", "1", "--epsilon", "0.1"]
    assert main([*args, "--env-override", "max_episode_steps=60"]) == 0
    (out,) = (run.path / "evaluation").iterdir()
    (line,) = [json.loads(x) for x in (out / "episodes.jsonl").read_text().splitlines()]
    assert line["env_id"] == "ALE/Pong-v5" and line["env_kwargs"]["max_episode_steps"] == 60
    assert (out / line["recording"]).read_bytes()[4:8] == b"ftyp"
    data = np.load(out / line["data"], allow_pickle=False)
    assert data["agent_outputs"].shape == (line["length"], env.action_space.n)
    capsys.readouterr()
    assert main(["replay", f"{out / 'episodes.jsonl'}#0"]) == 0
    assert "exactmatch" in "".join(capsys.readouterr().out.split())
