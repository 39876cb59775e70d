"""envs.make resolves every kind of spec, and refuses bad ones clearly; the fakes pass the checker."""

from __future__ import annotations

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

import envs
from rollout.cli import main


def test_gymnasium_ids_and_ale_resolve():
    env = envs.make("CartPole-v1")
    assert env.spec.id == "CartPole-v1"
    env.close()
    ids = envs.known_ids()
    assert "CartPole-v1" in ids and "ALE/Pong-v5" in ids


def test_module_class_and_function_specs():
    env = envs.make("tests.fakes:Corridor", length=7)
    assert env.observation_space.shape == (7,)
    with pytest.raises(envs.EnvSpecError, match="not a gymnasium.Env subclass"):
        envs.make("tests.fakes:NotAnEnv")
    with pytest.raises(
        envs.EnvSpecError, match="has no attribute 'Coridor'.*Did you mean 'tests.fakes:Corridor'"
    ):
        envs.make("tests.fakes:Coridor")
    with pytest.raises(envs.EnvSpecError, match="cannot import module 'no_such_pkg.mod'"):
        envs.make("no_such_pkg.mod:Env")
    with pytest.raises(
        envs.EnvSpecError, match="could not build 'tests.fakes:Corridor' with kwargs"
    ):
        envs.make("tests.fakes:Corridor", colour="red")


def test_unknown_id_names_closest():
    with pytest.raises(
        envs.EnvSpecError,
        match=r"unknown environment 'CartPole-v9'.*Closest known ids: CartPole-v1",
    ):
        envs.make("CartPole-v9")


@pytest.mark.parametrize("name", ["Corridor", "BitMatch"])
def test_fake_envs_pass_gymnasium_checker(name):
    check_env(envs.make(f"tests.fakes:{name}").unwrapped, skip_render_check=True)


def test_corridor_rules():
    env = envs.make("tests.fakes:Corridor", length=3, max_steps=4)
    obs, _ = env.reset(seed=0)
    assert obs.argmax() == 0
    _, r, term, trunc, _ = env.step(0)  # wall: stays at 0
    assert (r, term, trunc) == (-0.01, False, False)
    env.step(1)
    _, r, term, _, _ = env.step(1)
    assert r == 1.0 and term
    env.reset()
    for _ in range(3):
        env.step(0)
    assert env.step(0)[3]  # truncated at max_steps


def test_memrl_envs_lists_one_line_per_id(capsys):
    assert main(["envs", "CartPole"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert any(line.startswith("CartPole-v1") and "gymnasium" in line for line in lines)
    assert all("CartPole" in line for line in lines)
    assert isinstance(gym.registry, dict)


def test_gymnasium_module_id_form_and_picklable_factory():
    import pickle

    env = envs.make("gymnasium.envs.classic_control:CartPole-v1")
    assert env.spec.id == "CartPole-v1"
    thunk = pickle.loads(pickle.dumps(envs.env_factory("tests.fakes:Corridor", {"length": 4})))
    assert thunk().observation_space.shape == (4,)


def test_a_bug_inside_an_env_is_not_reported_as_bad_kwargs(monkeypatch):
    import tests.fakes

    def broken(self, length=5, max_steps=20):
        return None + 1  # a TypeError that has nothing to do with the arguments

    monkeypatch.setattr(tests.fakes.Corridor, "__init__", broken)
    # a plug-in's own bug is reported as the plug-in's, with where it happened (issue 21)
    with pytest.raises(envs.EnvSpecError, match="raised TypeError while building it at") as info:
        envs.make("tests.fakes:Corridor")
    assert "test_envs.py" in str(info.value) and "kwargs" not in str(info.value)
