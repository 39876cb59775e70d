"""The example plug-in (examples/plugin_env, distribution memrl-tmaze) installs with pip into a
temporary folder, registers `tmaze/TMaze-v0` through the `memrl.envs` entry point, and
`memrl train` trains on it. Slow: through a Ray worker, the recurrent REINFORCE agent learns the
T-maze and a memoryless one stays at chance."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import envs
from agents import make_agent
from rollout.checkpoints import latest_checkpoint, load_checkpoint
from rollout.cli import main
from rollout.config import load_config

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = ROOT / "examples" / "plugin_env"
CONFIG = PLUGIN / "tmaze_lstm.yaml"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """`pip install` of the plug-in into a temporary folder (the shared venv stays as it is).
    No build isolation: setuptools comes from this venv, so the test needs no network."""
    target = tmp_path_factory.mktemp("site")
    build = tmp_path_factory.mktemp("build")
    # a copy: pip builds in the source tree and would leave build/ and *.egg-info in the repo
    source = shutil.copytree(PLUGIN, build / "plugin_env", ignore=shutil.ignore_patterns("build"))
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation"]
        + ["--target", str(target), str(source)],
        check=True,
        cwd=build,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
        timeout=300,
    )
    assert (target / "tmaze" / "tmaze.py").is_file()
    return target


def memrl(args: list[str], cwd: Path, site: Path | None) -> subprocess.CompletedProcess:
    """The installed `memrl` command in a fresh process, the plug-in on its path (or not)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("PYTEST")}
    env |= {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}
    if site is not None:
        env["PYTHONPATH"] = str(site)
    exe = Path(sys.executable).with_name("memrl")
    cmd = [str(exe)] if exe.is_file() else [sys.executable, "-m", "rollout.cli"]
    return subprocess.run(cmd + args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_plugin_installs_registers_and_trains(site, tmp_path, monkeypatch, capsys):
    # not installed (and not importable from here): the id is unknown, a clear exit 2
    base = ["train", str(CONFIG), f"run.dir={tmp_path / 'runs'}"]
    assert main(base) == 2
    assert "unknown environment 'tmaze/TMaze-v0'" in " ".join(capsys.readouterr().err.split())

    monkeypatch.syspath_prepend(str(site))  # what `pip install` gives this process
    assert "tmaze/TMaze-v0" in envs.known_ids()
    assert envs.describe("tmaze/TMaze-v0") == "plug-in (tmaze:TMaze)"

    # `memrl train` in a fresh process, from a folder where only the install provides `tmaze`
    # (in-process workers here; the slow test below trains through a Ray worker)
    runs = tmp_path / "runs"
    overrides = [
        "rollout.num_workers=0",
        "rollout.envs_per_worker=4",
        "rollout.steps_per_sample=200",
        "run.total_env_steps=1200",
        "run.eval_every_steps=0",
        "run.eval_episodes=4",
        f"run.dir={runs}",
    ]
    trained = memrl(["train", str(CONFIG), *overrides], tmp_path, site)
    assert trained.returncode == 0, trained.stderr[-3000:]
    err = " ".join(trained.stderr.split())
    assert "done: total_env_steps reached" in trained.stdout
    assert "warning" not in err  # the T-maze passes Gymnasium's env checker cleanly
    (run_dir,) = runs.iterdir()
    state = load_checkpoint(latest_checkpoint(run_dir / "checkpoints"))
    assert state["counters"]["env_steps"] >= 1200
    assert "lstm.weight_hh_l0" in state["learner"]["agent"]


def test_editable_install_in_a_fresh_venv(tmp_path):
    """`pip install -e examples/plugin_env`, as the README says, into a new venv that sees this
    venv's packages (memrl, torch, ...) through a .pth file; edits to the source take effect."""
    import site as site_module
    import sysconfig

    source = shutil.copytree(
        PLUGIN, tmp_path / "plugin_env", ignore=shutil.ignore_patterns("build")
    )
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    ours = sysconfig.get_paths()["purelib"]
    assert ours in site_module.getsitepackages()
    Path(purelib, "memrl_parent.pth").write_text(f"import site; site.addsitedir({ours!r})\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet"]
        + ["--no-deps", "--no-build-isolation", "-e", str(source)],
        check=True,
        cwd=tmp_path,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
        timeout=300,
    )
    probe = (
        "import envs; env = envs.make('tmaze/TMaze-v0', length=3); "
        "print(envs.describe('tmaze/TMaze-v0'), type(env).__module__, env.max_steps)"
    )
    source.joinpath("tmaze", "tmaze.py").write_text(
        source.joinpath("tmaze", "tmaze.py")
        .read_text()
        .replace("else 2 * self.length + 4", "else 7 * self.length")
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run(
        [str(python), "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["plug-in", "(tmaze:TMaze)", "tmaze.tmaze", "21"]


def success_rate(run_dir: Path, episodes: int = 200) -> float:
    """Greedy success rate (info["success"]) of a run's final weights on fresh seeds."""
    cfg = load_config(run_dir / "config.yaml")
    env = envs.make(cfg.env.id, **cfg.env.kwargs)
    agent = make_agent(cfg.agent, env.observation_space, env.action_space)
    agent.load_state_dict(
        load_checkpoint(latest_checkpoint(run_dir / "checkpoints"))["learner"]["agent"]
    )
    wins = 0
    for seed in range(10_000, 10_000 + episodes):
        obs, _ = env.reset(seed=seed)
        state, done, info = agent.initial_state(1), False, {}
        while not done:
            action, state, _ = agent.act(obs[None], state, explore=False)
            obs, _, terminated, truncated, info = env.step(action[0])
            done = terminated or truncated
        wins += bool(info.get("success"))
    return wins / episodes


@pytest.mark.slow
def test_lstm_reinforce_learns_the_tmaze_and_a_memoryless_policy_cannot(
    site, tmp_path, monkeypatch
):
    monkeypatch.syspath_prepend(str(site))  # this process reads the checkpoints' env too
    rates = {}
    for torso in ("lstm", "mlp"):
        runs = tmp_path / torso
        args = ["train", str(CONFIG), f"agent.torso={torso}", "run.total_env_steps=800000"]
        done = memrl([*args, f"run.dir={runs}"], tmp_path, site)
        assert done.returncode == 0, done.stderr[-3000:]
        print(" ".join(done.stderr.split())[-300:])
        (run_dir,) = runs.iterdir()
        rates[torso] = success_rate(run_dir)
    print(f"T-maze (length 10) greedy success over 200 episodes: {rates}")
    assert rates["lstm"] >= 0.95
    assert 0.35 <= rates["mlp"] <= 0.65  # chance: the junction looks the same either way
