"""RL-NTM with the shared REINFORCE agent: the previous-action input, the write-gated symbol, the
paper's mixed objective (symbol by likelihood, interface actions by REINFORCE), the training
stop at gym's "solved" rule, and a smoke training of every tape config through Ray."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

import envs
from agents import AgentError, make_agent
from agents.reinforce import Config
from rollout.checkpoints import latest_checkpoint, load_checkpoint
from rollout.config import dump_config, load_config
from rollout.run_dir import RunDir, read_metrics
from rollout.trainer import Trainer

TASKS = ("copy", "duplicated_input", "reverse", "repeat_copy", "reversed_addition")


def tape_agent(**changes):
    env = envs.make("memrl/TapeCopy-v0")
    changes.setdefault("torso", "lstm")
    changes.setdefault("hidden", [])
    cfg = Config(
        lstm_size=16,
        previous_action=True,
        write_gated_symbol=True,
        gamma=1.0,
        **changes,
    )
    cfg.validate()
    torch.manual_seed(0)
    return make_agent(cfg, env.observation_space, env.action_space)


def hand_batch(rewards: list[float] | None = None) -> dict[str, torch.Tensor]:
    """Two episodes, time-major: (move, write, symbol) actions, one padded step."""
    actions = torch.tensor([[[1, 1, 3], [0, 0, 2]], [[1, 0, 4], [1, 1, 1]], [[1, 1, 0], [0, 0, 0]]])
    mask = torch.tensor([[1.0, 1.0], [1.0, 1.0], [1.0, 0.0]])
    rew = torch.tensor(rewards or [1.0, 0.0, 0.0, 1.0, -0.5, 0.0]).reshape(3, 2) * mask
    return {
        "obs": torch.tensor([[3, 2], [4, 1], [0, 5]]),
        "actions": actions,
        "rewards": rew,
        "mask": mask,
        "targets": torch.tensor([[3, 2], [4, 1], [2, 0]]),
    }


def test_write_gated_log_prob_leaves_out_the_symbol_of_steps_that_do_not_write():
    agent = tape_agent()
    logits = torch.randn(4, agent.head.num_logits)
    actions = torch.tensor([[1, 1, 3], [0, 0, 2], [1, 0, 4], [0, 1, 1]])
    log_probs, entropy, symbol_logits = agent._log_probs(logits, actions)
    move, write, symbol = (
        torch.log_softmax(part, -1) for part in logits.split(agent.head.sizes, -1)
    )
    rows = torch.arange(4)
    expected = move[rows, actions[:, 0]] + write[rows, actions[:, 1]]
    expected = expected + actions[:, 1] * symbol[rows, actions[:, 2]]
    torch.testing.assert_close(log_probs, expected)
    assert symbol_logits is None
    assert entropy.shape == (4,)


def test_likelihood_trains_the_symbol_rows_on_targets_whatever_the_reward():
    """The mixed objective: the symbol's logits get gradient from the cross-entropy alone, so
    changing the rewards leaves their gradient unchanged; the move rows do feel the reward."""
    grads = []
    for rewards in ([1.0, 0.0, 0.0, 1.0, -0.5, 0.0], [-0.5, 0.0, 0.0, -1.0, 1.0, 0.0]):
        agent = tape_agent(symbol_loss="likelihood")
        loss, metrics = agent.loss(hand_batch(rewards))
        loss.backward()
        grads.append(agent.policy.weight.grad.clone())
        assert {"symbol_loss", "symbol_accuracy", "policy_loss"} <= set(metrics)
    symbol_rows = slice(4, 9)  # logits: 2 moves, 2 write flags, 5 symbols
    torch.testing.assert_close(grads[0][symbol_rows], grads[1][symbol_rows])
    assert not torch.allclose(grads[0][:2], grads[1][:2])


def test_likelihood_is_the_cross_entropy_of_the_written_steps():
    agent = tape_agent(symbol_loss="likelihood")
    batch = hand_batch()
    with torch.no_grad():
        _, metrics = agent.loss(batch)
        steps, width = batch["mask"].shape
        actions = batch["actions"].reshape(-1, 3)
        previous = agent._previous(actions).reshape(steps, width, -1)
        previous = torch.cat([torch.zeros_like(previous[:1]), previous[:-1]])
        features = agent._recurrent(batch["obs"], None, previous)[0].reshape(steps * width, -1)
        symbol_logits = agent.policy(features)[:, 4:]
    written = [0, 3, 4]  # flat (t, b) indices whose write flag is 1 and mask is 1
    targets = batch["targets"].reshape(-1)[written]
    expected = torch.nn.functional.cross_entropy(symbol_logits[written], targets)
    torch.testing.assert_close(metrics["symbol_loss"], expected)


def test_missing_targets_are_a_clear_error():
    agent = tape_agent(symbol_loss="likelihood")
    batch = hand_batch()
    del batch["targets"]
    with pytest.raises(AgentError, match="info\\['target'\\]"):
        agent.loss(batch)


@pytest.mark.parametrize("torso", ["lstm", "mlp"])
def test_previous_action_replayed_in_the_loss_matches_acting(torso):
    """The learner rebuilds each step's previous action from the batch: its greedy actions
    equal those the acting agent chose step by step (LSTM, or an MLP whose state it is)."""
    agent = tape_agent(torso=torso, hidden=[] if torso == "lstm" else [32])
    env = envs.make("memrl/TapeCopy-v0", length=6)
    obs, _ = env.reset(seed=0)
    state, seen, taken = agent.initial_state(1), [], []
    for _ in range(6):
        action, state, _ = agent.act(np.array([obs]), state, explore=False)
        wrote = int(action[0][1])
        assert state[-1].sum() == 2 + wrote  # move and write one-hot; the symbol if written
        seen.append(obs)
        taken.append(action[0])
        obs, _, done, _, _ = env.step(action[0])
        if done:
            break
    steps = len(taken)
    acts = torch.as_tensor(np.array(taken)).reshape(steps, 1, 3)
    previous = agent._previous(acts.reshape(-1, 3)).reshape(steps, 1, -1)
    previous = torch.cat([torch.zeros_like(previous[:1]), previous[:-1]])
    with torch.no_grad():
        obs = torch.tensor(seen).reshape(steps, 1)
        if torso == "lstm":
            features = agent._recurrent(obs, None, previous)[0][:, 0]
        else:
            features = torch.cat([agent._encode(obs.reshape(-1)), previous[:, 0]], -1)
        greedy = agent.head.greedy(agent.policy(features))
    assert torch.equal(greedy, acts[:, 0])


def test_likelihood_acts_with_the_greedy_symbol_while_exploring():
    agent = tape_agent(symbol_loss="likelihood")
    obs = np.arange(6).repeat(50)
    action, _, _ = agent.act(obs, agent.initial_state(len(obs)), explore=True)
    greedy, _, _ = agent.act(obs, agent.initial_state(len(obs)), explore=False)
    assert np.array_equal(action[:, 2], greedy[:, 2])
    assert not np.array_equal(action[:, :2], greedy[:, :2])  # moves and writes are sampled


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"symbol_loss": "likelihood"}, "needs write_gated_symbol"),
        ({"symbol_loss": "maximum"}, "symbol_loss must be one of reinforce, likelihood"),
        ({"entropy_coef_end": 0.0}, "needs entropy_decay_steps >= 1"),
        ({"entropy_decay_steps": -1}, "entropy_decay_steps must be >= 0"),
        ({"previous_symbol": False}, "previous_symbol: false needs write_gated_symbol"),
    ],
)
def test_bad_options_are_clear_errors(changes, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(Config(), **changes).validate()


def test_write_gate_needs_tape_actions():
    env = envs.make("CartPole-v1")
    with pytest.raises(AgentError, match="write_gated_symbol needs MultiDiscrete"):
        make_agent(Config(write_gated_symbol=True), env.observation_space, env.action_space)


def test_training_stops_at_the_solved_rule(tmp_path):
    cfg = load_config(
        "configs/rl_ntm_copy.yaml",
        [
            "rollout.num_workers=0",
            "rollout.envs_per_worker=4",
            "rollout.steps_per_sample=100",
            "run.stop_train_return=-10",  # any 100 episodes reach it
            "run.eval_every_steps=0",
            "run.eval_episodes=2",
            f"run.dir={tmp_path}",
        ],
    )
    run = RunDir.create(tmp_path, cfg.run.name, dump_config(cfg))
    trainer = Trainer(cfg, run)
    summary = trainer.train()
    assert 100 <= summary["episodes"] < 400
    assert "training episodes" in trainer.loop.stop_reason


@pytest.mark.parametrize("task", TASKS)
def test_smoke_training_through_ray(task, tmp_path, ray_local):
    """Each tape config trains a few updates through a Ray worker; the checkpoint reloads to
    the same policy. Copy also runs the paper's mixed objective."""
    overrides = [
        "rollout.num_workers=1",
        "rollout.envs_per_worker=2",
        "rollout.steps_per_sample=100",
        "agent.lstm_size=16",
        "run.total_env_steps=600",
        "run.checkpoint_every_steps=300",
        "run.eval_episodes=2",
        "run.log_every_s=0",
        f"run.dir={tmp_path}",
    ]
    if task == "copy":
        overrides.append("agent.symbol_loss=likelihood")
    cfg = load_config(f"configs/rl_ntm_{task}.yaml", overrides)
    run = RunDir.create(tmp_path, cfg.run.name, dump_config(cfg))
    trainer = Trainer(cfg, run)
    summary = trainer.train()
    assert summary["env_steps"] >= 600 and trainer.learner.updates >= 3
    rows = read_metrics(run.metrics)
    assert "value_loss" in rows[-1] and "eval_return_mean" in rows[-1]
    if task == "copy":
        assert "symbol_accuracy" in rows[-1]
    state = load_checkpoint(latest_checkpoint(run.checkpoints))
    env = envs.make(cfg.env.id)
    fresh = make_agent(cfg.agent, env.observation_space, env.action_space)
    fresh.load_state_dict(state["learner"]["agent"])
    obs = np.arange(env.observation_space.n).repeat(2)
    a, _, _ = fresh.act(obs, fresh.initial_state(len(obs)), explore=False)
    b, _, _ = trainer.agent.cpu().act(obs, trainer.agent.initial_state(len(obs)), explore=False)
    assert np.array_equal(a, b)


def test_previous_action_input_leaves_out_a_symbol_not_written():
    agent = tape_agent()
    previous = agent._previous(torch.tensor([[1, 1, 3], [0, 0, 2]]))
    assert previous[0].tolist() == [0, 1, 0, 1, 0, 0, 0, 1, 0]
    assert previous[1].tolist() == [1, 0, 1, 0, 0, 0, 0, 0, 0]


def test_previous_action_input_without_the_symbol_keeps_only_move_and_write_flag():
    agent = tape_agent(previous_symbol=False)
    previous = agent._previous(torch.tensor([[1, 1, 3], [0, 0, 2]]))
    assert previous[0].tolist() == [0, 1, 0, 1, 0, 0, 0, 0, 0]
    assert previous[1].tolist() == [1, 0, 1, 0, 0, 0, 0, 0, 0]


def test_entropy_bonus_schedule_is_linear_in_env_steps_and_enters_the_loss():
    agent = tape_agent(
        entropy_coef=0.1, entropy_coef_end=0.01, entropy_decay_steps=1000, reduction="sequence"
    )
    assert agent.entropy_coef == pytest.approx(0.1)
    batch = hand_batch()
    loss_start, metrics = agent.loss(batch)
    agent.on_env_steps(500)
    assert agent.entropy_coef == pytest.approx(0.055)
    loss_mid, metrics_mid = agent.loss(batch)
    assert float(metrics_mid["entropy_coef"]) == pytest.approx(0.055)
    # loss = ... - coef * (entropy summed per episode, averaged over the 2 episodes)
    entropy_term = float((loss_mid - loss_start).detach()) / (0.1 - 0.055)
    _, entropy, _ = agent._log_probs(
        agent.policy(
            agent._recurrent(batch["obs"], None, _previous_inputs(agent, batch))[0].reshape(6, -1)
        ),
        agent.head.from_env(batch["actions"].reshape(6, 3)),
    )
    expected = float((entropy.reshape(3, 2) * batch["mask"]).sum().detach()) / 2
    assert entropy_term == pytest.approx(expected, rel=1e-4)
    agent.on_env_steps(5000)  # past the schedule: the end value
    assert agent.entropy_coef == pytest.approx(0.01)
    plain = tape_agent(entropy_coef=0.1)
    plain.on_env_steps(5000)  # no schedule: the constant
    assert plain.entropy_coef == pytest.approx(0.1)
    assert "entropy_coef" not in plain.loss(batch)[1]


def _previous_inputs(agent, batch):
    taken = agent._previous(agent.head.from_env(batch["actions"].reshape(6, 3))).reshape(3, 2, -1)
    return torch.cat([torch.zeros_like(taken[:1]), taken[:-1]])


class _ScriptedCopier:
    """Copies perfectly for the first `good` symbols of an episode, then writes a wrong one."""

    def __init__(self, good: int):
        self.good = good

    def initial_state(self, n: int) -> np.ndarray:
        return np.zeros(n, int)

    def reset_state(self, state: np.ndarray, done: np.ndarray) -> np.ndarray:
        return np.where(done, 0, state)

    def act(self, obs: np.ndarray, state: np.ndarray, explore: bool):
        symbol = np.where(state < self.good, obs, (obs + 1) % 5)
        action = np.stack([np.ones_like(obs), np.ones_like(obs), symbol], -1)
        return action, state + 1, {}


def test_benchmark_generalisation_scores_whole_episodes():
    from benchmarks.rl_ntm import greedy_episodes

    perfect = greedy_episodes(_ScriptedCopier(99), "memrl/TapeCopy-v0", 6, 5, seed=0)
    assert perfect == {"length": 6, "solved_fraction": 1.0, "mean_return": 6.0}
    flawed = greedy_episodes(_ScriptedCopier(3), "memrl/TapeCopy-v0", 6, 5, seed=0)
    assert flawed == {"length": 6, "solved_fraction": 0.0, "mean_return": 2.5}


def _env_return(table: dict, data: tuple[int, ...]) -> float:
    """Run the deterministic table's greedy policy on TapeReverse with this input."""
    from benchmarks.rl_ntm_landscape import previous_index

    env = envs.make("memrl/TapeReverse-v0", length=len(data)).unwrapped
    env.reset(seed=0)
    env.input_data = np.array(data)
    env.target = list(data[::-1])
    obs, prev, total, done = env._observe(), 0, 0.0, False
    while not done:
        row = obs * 7 + prev
        move, write, symbol = (int(table[k][row].argmax()) for k in ("move", "write", "symbol"))
        obs, reward, done, _, _ = env.step(np.array([move, write, symbol]))
        total += reward
        prev = previous_index(move, write, symbol)
    return total


def test_landscape_expected_return_matches_the_env_and_hand_computed_values():
    import itertools

    from benchmarks.rl_ntm_landscape import (
        blind_interface,
        expected_return,
        reverse_algorithm,
        tie_symbol,
    )

    # `previous_symbol: false`: wrote 0 and wrote 1 share a row; blind: symbols 0 and 1 too
    assert tie_symbol()[:7].tolist() == [0, 1, 2, 2, 3, 4, 4]
    blind = blind_interface(tie_symbol())
    assert blind[7:14].tolist() == blind[:7].tolist()
    assert blind[14:].tolist() == tie_symbol()[14:].tolist()

    assert float(expected_return(reverse_algorithm(), [1, 2, 3])) == pytest.approx(2.0)
    assert float(expected_return(reverse_algorithm(), [4])) == pytest.approx(4.0)
    # write the symbol under the head at once, moving right: perfect on length 1; on length 2
    # right when the two symbols agree (2), else -0.5 at the first write: 0.75
    at_once = {k: torch.zeros(21, 2) for k in ("move", "write", "symbol")}
    at_once["move"][:, 1] = at_once["write"][:, 1] = 50.0
    at_once["symbol"][:7, 0] = at_once["symbol"][7:14, 1] = 50.0  # the symbol observed
    assert float(expected_return(at_once, [1])) == pytest.approx(1.0)
    assert float(expected_return(at_once, [2])) == pytest.approx(0.75)
    # any deterministic table: the mean over all inputs of what the env pays
    generator = torch.Generator().manual_seed(3)
    for _ in range(2):
        choice = {k: torch.randint(2, (21,), generator=generator) for k in at_once}
        table = {k: 50.0 * nn.functional.one_hot(c, 2).float() for k, c in choice.items()}
        for length in (1, 2, 3):
            inputs = list(itertools.product(range(2), repeat=length))
            mean = np.mean([_env_return(table, data) for data in inputs])
            assert float(expected_return(table, [length])) == pytest.approx(mean, abs=1e-4)
