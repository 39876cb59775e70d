"""The RL-NTM tape tasks (envs/tape.py): each task's target, gym's reward and termination rules,
the clock, the length curriculum, the registered ids and Gymnasium's env checker."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs
from envs.tape import (
    TAPE_TASKS,
    TapeCopy,
    TapeDuplicatedInput,
    TapeRepeatCopy,
    TapeReverse,
    TapeReversedAddition,
    reset_process_levels,
)

IDS = {
    "memrl/TapeCopy-v0": 25.0,
    "memrl/TapeDuplicatedInput-v0": 9.0,
    "memrl/TapeReverse-v0": 25.0,
    "memrl/TapeRepeatCopy-v0": 75.0,
    "memrl/TapeReversedAddition-v0": 25.0,
}
LEFT, RIGHT, UP, DOWN = 0, 1, 2, 3


@pytest.mark.parametrize("env_id", sorted(IDS))
def test_registered_passes_the_env_checker_with_gyms_threshold(env_id):
    assert env_id in envs.MEMRL_ENVS
    env = gym.make(env_id)
    check_env(env.unwrapped, skip_render_check=True)
    assert env.unwrapped.reward_threshold == IDS[env_id]
    assert isinstance(env.action_space, gym.spaces.MultiDiscrete)
    assert env.observation_space == gym.spaces.Discrete(env.unwrapped.base + 1)


def test_targets_of_each_task():
    data = np.array([3, 1, 4, 0])
    assert TapeCopy().target_from_input(data) == [3, 1, 4, 0]
    assert TapeReverse().target_from_input(data) == [0, 4, 1, 3]
    assert TapeRepeatCopy().target_from_input(data) == [3, 1, 4, 0, 0, 4, 1, 3, 3, 1, 4, 0]
    assert TapeDuplicatedInput().target_from_input(np.array([2, 2, 0, 0, 4, 4])) == [2, 0, 4]
    # base 3, least significant digit first: 2+2 = 4 = 1 carry 1; 1+0+1 = 2; 2+2 = 4 = 1 carry 1
    grid = np.array([[2, 2], [1, 0], [2, 2]])
    assert TapeReversedAddition().target_from_input(grid) == [1, 2, 1, 1]


def test_duplicated_input_draws_pairs():
    env = TapeDuplicatedInput(length=7)
    env.reset(seed=3)
    data = env.input_data
    assert len(data) == 6 and (data[0::2] == data[1::2]).all()


def _solve_copy(env: TapeCopy) -> tuple[list[float], bool]:
    obs, _ = env.reset(seed=0)
    rewards, done = [], False
    while not done:
        obs, r, done, truncated, info = env.step(np.array([RIGHT, 1, obs]))
        rewards.append(r)
        assert not truncated
    return rewards, done


def test_copy_rewards_each_correct_symbol_and_ends_when_written():
    env = TapeCopy(length=5)
    rewards, done = _solve_copy(env)
    assert rewards == [1.0] * 5 and done


def test_wrong_symbol_costs_half_and_ends_the_episode():
    env = TapeCopy(length=5)
    obs, _ = env.reset(seed=1)
    _, r, terminated, _, info = env.step(np.array([RIGHT, 1, (obs + 1) % env.base]))
    assert r == -0.5 and terminated and info["target"] == obs


def test_moves_without_writing_earn_nothing_until_the_clock_runs_out():
    env = TapeCopy(length=3)
    env.reset(seed=2)
    limit = env.time_limit  # 3 + 3 + 4
    assert limit == 10
    for _ in range(limit):
        _, r, terminated, _, _ = env.step(np.array([RIGHT, 0, 0]))
        assert r == 0.0 and not terminated
    _, r, terminated, _, _ = env.step(np.array([RIGHT, 0, 0]))
    assert r == -1.0 and terminated


def test_blank_off_both_ends_and_target_in_info():
    env = TapeReverse(length=3)
    obs, _ = env.reset(seed=4)
    assert obs == env.input_data[0]
    obs, _, _, _, info = env.step(np.array([LEFT, 0, 0]))
    assert obs == env.base  # off the left end
    assert info["target"] == env.input_data[-1]  # reverse: the last input symbol is due first
    for _ in range(5):
        obs, *_ = env.step(np.array([RIGHT, 0, 0]))
    assert obs == env.base  # off the right end


def test_reverse_solved_by_walking_to_the_end_and_back():
    env = TapeReverse(length=6)
    obs, _ = env.reset(seed=5)
    for _ in range(5):
        obs, r, *_ = env.step(np.array([RIGHT, 0, 0]))
        assert r == 0.0
    total, done = 0.0, False
    while not done:
        obs, r, done, _, _ = env.step(np.array([LEFT, 1, obs]))
        total += r
    assert total == 6.0


def test_reversed_addition_on_the_grid():
    """The zig-zag solution: read a column's two digits (a vertical move between them), write
    their digit of the sum moving right, so each column takes two steps of the 2n + 4."""
    env = TapeReversedAddition(length=6)
    obs, _ = env.reset(seed=6)
    assert env.time_limit == 16
    carry, total, done, row = 0, 0.0, False, 0
    for _ in range(len(env.input_data)):
        first = obs
        obs, r, done, _, _ = env.step(np.array([DOWN if row == 0 else UP, 0, 0]))
        row = 1 - row
        assert r == 0.0 and not done
        digit, carry = (first + obs + carry) % 3, (first + obs + carry) // 3
        obs, r, done, _, _ = env.step(np.array([RIGHT, 1, digit]))
        total += r
    if carry:
        _, r, done, _, _ = env.step(np.array([RIGHT, 1, carry]))
        total += r
    assert done and total == len(env.target) and env.write_position == len(env.target)


def test_curriculum_promotes_after_a_window_of_good_episodes():
    env = TapeCopy()
    assert env.min_length == 2
    for _ in range(env.promotion_window):
        _solve_copy(env)
    env.reset()  # the reset after the 10th good episode levels up
    assert env.min_length == 3 and env.shortfalls == []
    # a failed episode in the window holds the level
    for i in range(env.promotion_window):
        obs, _ = env.reset()
        if i == 4:
            env.step(np.array([RIGHT, 1, (obs + 1) % env.base]))
            continue
        done = False
        while not done:
            obs, _, done, _, _ = env.step(np.array([RIGHT, 1, obs]))
    env.reset()
    assert env.min_length == 3


def test_lengths_drawn_at_the_level_and_fixed_length_turns_the_curriculum_off():
    env = TapeCopy(min_length=7)
    lengths = {env.reset(seed=s)[1]["length"] for s in range(40)}
    assert lengths == {7, 8, 9}
    fixed = TapeCopy(length=12)
    for _ in range(30):
        _solve_copy(fixed)
    assert fixed.reset()[1]["length"] == 12 and not fixed.curriculum


def test_process_scope_shares_one_level_between_envs():
    """As gym's class variable: the window counts every env's episodes, and all move up."""
    reset_process_levels()
    a, b = TapeCopy(curriculum_scope="process"), TapeCopy(curriculum_scope="process")
    own = TapeCopy()
    for _ in range(5):
        _solve_copy(a)
        _solve_copy(b)
    a.reset()  # 9 episodes counted (a reset counts the episode before it)
    assert a.min_length == 2
    b.reset()  # the 10th: both move up
    assert a.min_length == b.min_length == 3 and own.min_length == 2
    assert TapeReverse(curriculum_scope="process").min_length == 1  # per task
    reset_process_levels()


def test_reverse_needs_fifty_perfect_episodes():
    env = TapeReverse()
    assert env.min_length == 1 and env.promotion_window == 50
    for _ in range(49):
        env.reset()
        env.episode_return = float(len(env.target))
    env.reset()
    assert env.min_length == 1
    env.episode_return = float(len(env.target))
    env.reset()
    assert env.min_length == 2


@pytest.mark.parametrize(
    "bad", [{"length": 0}, {"min_length": -1}, {"length": 2.5}, {"curriculum_scope": "x"}]
)
def test_bad_kwargs_are_clear_errors(bad):
    with pytest.raises(envs.EnvSpecError, match="must be (a positive integer|one of env, process)"):
        envs.make("memrl/TapeCopy-v0", **bad)


def test_every_task_is_listed():
    assert set(TAPE_TASKS) == {
        "copy",
        "duplicated_input",
        "reverse",
        "repeat_copy",
        "reversed_addition",
    }
