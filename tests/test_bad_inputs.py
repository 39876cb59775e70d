"""Every bad input a careful user tries gets one clear message and an exit status (issue 21).

Each case is one line: the command (with placeholders for the files it needs), the exit status,
and a regex the message must match (it names the culprit: the file, the key, the value). Every
case also checks that no traceback is printed and that a refused input writes nothing (the
sandbox holds the same files afterwards). The commands run in-process through
`rollout.cli.main`, with Ray forbidden, so the whole file takes seconds.

Placeholders: {run} a small trained REINFORCE run, {dqn} a DQN run with replay.npz in its
checkpoints, {dir} the sandbox, which also holds ep.npz (an episode of {run}) and `file` (a plain
file). A case's `setup` damages these copies first.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from rollout.cli import main

ROOT = Path(__file__).resolve().parent.parent
CFG = str(ROOT / "configs/reinforce_cartpole.yaml")
DQN_CFG = str(ROOT / "configs/dqn_cartpole.yaml")
FAST = [
    "rollout.num_workers=0",
    "rollout.envs_per_worker=2",
    "rollout.steps_per_sample=40",
    "run.eval_episodes=2",
    "run.stop_return=null",
]
PLUGIN_PATH_ENV = "MEMRL_PLUGIN_PATH"  # envs.PLUGIN_PATH_ENV, spelt out
MARKER = "PWNED"  # what the os:system specs below would create


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A trained REINFORCE run with an evaluation, and a DQN run with replay, made once."""
    root = tmp_path_factory.mktemp("base")
    saved = list(sys.path), os.environ.get(PLUGIN_PATH_ENV)
    try:
        runs = root / "runs"
        argv = ["train", CFG, *FAST, "run.total_env_steps=200", "run.checkpoint_every_steps=80"]
        assert main([*argv, f"run.dir={runs}"]) == 0
        (run,) = runs.iterdir()
        assert main(["evaluate", str(run), "--episodes", "2", "--record", "none"]) == 0
        dq = root / "dq"
        argv = ["train", DQN_CFG, *FAST, "run.total_env_steps=200", "agent.buffer_size=500"]
        assert main([*argv, "run.checkpoint_every_steps=80", f"run.dir={dq}"]) == 0
        (dqn,) = dq.iterdir()
    finally:
        sys.path[:] = saved[0]
        os.environ.pop(PLUGIN_PATH_ENV, None)
        if saved[1] is not None:
            os.environ[PLUGIN_PATH_ENV] = saved[1]
    (evaluation,) = (run / "evaluation").iterdir()
    return {"run": run, "dqn": dqn, "evaluation": evaluation}


@pytest.fixture
def sandbox(base, tmp_path, monkeypatch):
    """A folder holding fresh copies of the runs, the working folder of the command."""
    shutil.copytree(base["run"], tmp_path / "run")
    shutil.copytree(base["dqn"], tmp_path / "dqn")
    (evaluation,) = (tmp_path / "run" / "evaluation").iterdir()
    shutil.copy(evaluation / "episodes" / "episode_0000.npz", tmp_path / "ep.npz")
    (tmp_path / "file").write_text("not a folder\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "dont_write_bytecode", True)  # a plug-in import writes no .pyc
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.delenv(PLUGIN_PATH_ENV, raising=False)

    def refuse(*args, **kwargs):
        raise AssertionError("Ray was started for a bad input")

    import rollout.ray_runtime

    monkeypatch.setattr(rollout.ray_runtime, "start_ray", refuse)
    return tmp_path


def files_under(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_size for p in folder.rglob("*") if p.is_file()}


# ----------------------------------------------------------------------------- damage
def latest_ckpt(run: Path) -> Path:
    return sorted(p for p in (run / "checkpoints").iterdir() if p.name.isdigit())[-1]


def write(path: str, data: bytes | str) -> Callable[[Path], None]:
    def setup(box: Path) -> None:
        target = box / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, str):
            target.write_text(data)
        else:
            target.write_bytes(data)

    return setup


def config_with(**env: object) -> Callable[[Path], None]:
    """Replace the run copy's env section (what someone could hand you in a run folder)."""

    def setup(box: Path) -> None:
        import yaml

        path = box / "run" / "config.yaml"
        data = yaml.safe_load(path.read_text())
        data["env"].update(env)
        path.write_text(yaml.safe_dump(data))

    return setup


def episode_with(
    meta: dict | None = None, raw_meta: object = None, **arrays: object
) -> Callable[[Path], None]:
    def setup(box: Path) -> None:
        with np.load(box / "ep.npz", allow_pickle=False) as data:
            content = {k: data[k] for k in data.files}
        old = json.loads(str(content["meta"]))
        for key, value in (meta or {}).items():
            if value is DELETE:
                old.pop(key, None)
            else:
                old[key] = value
        content["meta"] = np.asarray(json.dumps(old) if raw_meta is None else raw_meta)
        for key, value in arrays.items():
            if value is DELETE:
                content.pop(key)
            elif callable(value):
                content[key] = value(content[key])
            else:
                content[key] = np.asarray(value)
        np.savez(box / "ep.npz", **content)

    return setup


DELETE = object()
RANDOM = np.random.default_rng(0).bytes(3000)


def damage_ckpt(name: str, data: bytes, which: str = "latest") -> Callable[[Path], None]:
    def setup(box: Path) -> None:
        for run in (box / "run", box / "dqn"):
            ckpts = sorted(p for p in (run / "checkpoints").iterdir() if p.name.isdigit())
            for ckpt in ckpts if which == "all" else ckpts[-1:]:
                if (ckpt / name).is_file() or name == "state.pt":
                    (ckpt / name).write_bytes(data)

    return setup


def truncate_ckpt(name: str) -> Callable[[Path], None]:
    def setup(box: Path) -> None:
        for run in (box / "run", box / "dqn"):
            path = latest_ckpt(run) / name
            if path.is_file():
                path.write_bytes(path.read_bytes()[:100])

    return setup


def remove_ckpts(box: Path) -> None:
    for run in (box / "run", box / "dqn"):
        shutil.rmtree(run / "checkpoints")


OS_SYSTEM = config_with(id="os:system", kwargs={"command": f"touch {MARKER}"})
EVIL_EPISODE = episode_with({"env_id": "os:system", "env_kwargs": {"command": f"touch {MARKER}"}})
ALIAS_BOMB = (
    "a: &a [x, x, x, x]\nb: &b [*a, *a, *a, *a]\nc: &c [*b, *b, *b, *b]\nenv: {kwargs: *c}\n"
)

T = ["train", CFG, *FAST]  # a training command; overrides follow
R = "run.dir={dir}/runs"

# (id, argv, exit status, regex on the message, setup)
# fmt: off
CASES: list[tuple[str, list[str], int, str, Callable[[Path], None] | None]] = [
    # --- the config file
    ("config-missing", ["train", "nope.yaml"], 2, r"config file 'nope.yaml' does not exist", None),
    ("config-near-miss", ["train", "conf.yaml"], 2, r"Did you mean 'config.yaml'", write("config.yaml", "env: {}\n")),
    ("config-binary", ["train", "{dir}/bin.yaml"], 2, r"bin.yaml' is not text", write("bin.yaml", RANDOM)),
    ("config-bad-yaml", ["train", "{dir}/c.yaml"], 2, r"c.yaml' is not valid YAML", write("c.yaml", "env: [\n")),
    ("config-list", ["train", "{dir}/c.yaml"], 2, r"must hold a mapping with sections", write("c.yaml", "- 1\n- 2\n")),
    ("config-scalar", ["train", "{dir}/c.yaml"], 2, r"must hold a mapping with sections", write("c.yaml", "hello\n")),
    ("config-duplicate-key", ["train", "{dir}/c.yaml"], 2, r"the key 'id' is given twice", write("c.yaml", "env:\n  id: CartPole-v1\n  id: CartPole-v0\nagent: {name: reinforce}\n")),
    ("config-duplicate-section", ["train", "{dir}/c.yaml"], 2, r"the key 'env' is given twice", write("c.yaml", "env: {}\nenv: {}\n")),
    ("config-alias", ["train", "{dir}/c.yaml"], 2, r"aliases \(\*a\) are not allowed", write("c.yaml", "x: &a 1\ny: *a\n")),
    ("config-alias-bomb", ["train", "{dir}/c.yaml"], 2, r"aliases \(\*a\) are not allowed", write("c.yaml", ALIAS_BOMB)),
    ("config-huge", ["train", "{dir}/c.yaml"], 2, r"c.yaml' is 2,000,001 bytes", write("c.yaml", "#" * 2_000_000 + "\n")),
    ("config-is-folder", ["train", "{dir}/run"], 2, r"config file '.*run' does not exist", None),
    ("config-unknown-section", ["train", "{dir}/c.yaml"], 2, r"unknown section 'enviroment'.*Valid sections: env, agent", write("c.yaml", "enviroment: {}\n")),
    ("config-agent-scalar", ["train", "{dir}/c.yaml"], 2, r"'agent' must be a mapping of keys to values, got 5", write("c.yaml", "agent: 5\n")),
    ("config-no-agent", ["train", "{dir}/c.yaml"], 2, r"'agent.name' is missing. Valid agents", write("c.yaml", "env: {id: CartPole-v1}\n")),
    ("config-first-is-override", ["train", "learner.lr=1"], 2, r"give a config file first", None),
    ("config-none", ["train"], 2, r"give a config file first", None),
    # --- overrides: syntax
    ("override-huge-value", [*T, "learner.optimizer=" + "x" * 100_000], 2, r"'learner.optimizer' must be one of .*\[\.\.\.\]", None),
    ("override-huge-key", [*T, "learner." + "k" * 100_000 + "=1"], 2, r"unknown key 'learner.kkkk.*\[\.\.\.\]'", None),
    ("override-no-key", [*T, "=5"], 2, r"bad override '=5'", None),
    ("override-empty-part", [*T, "learner..lr=1"], 2, r"bad override 'learner..lr=1'", None),
    ("override-trailing-dot", [*T, "learner.=1"], 2, r"bad override 'learner.=1'", None),
    ("override-no-equals", [*T, "learner.lr"], 2, r"bad override 'learner.lr'", None),
    ("override-into-value", [*T, "learner.lr.x=1"], 2, r"'lr' is a value, not a section", None),
    ("override-unknown-section", [*T, "lerner.lr=1"], 2, r"unknown section 'lerner'.*Did you mean 'learner'", None),
    ("override-unknown-key", [*T, "learner.lrr=1"], 2, r"unknown key 'learner.lrr'.*Did you mean 'lr'", None),
    ("override-alias", [*T, "env.kwargs=[&a 1, *a]"], 2, r"aliases \(\*a\) are not allowed", None),
    ("override-duplicate", [*T, "env.kwargs={a: 1, a: 2}"], 2, r"the key 'a' is given twice", None),
    # --- learner
    ("lr-zero", [*T, "learner.lr=0"], 2, r"'learner.lr' must be > 0", None),
    ("lr-negative", [*T, "learner.lr=-1e-3"], 2, r"'learner.lr' must be > 0", None),
    ("lr-inf", [*T, "learner.lr=.inf"], 2, r"'learner.lr' must be a finite number, got inf", None),
    ("lr-nan", [*T, "learner.lr=.nan"], 2, r"'learner.lr' must be a finite number, got nan", None),
    ("lr-text", [*T, "learner.lr=fast"], 2, r"'learner.lr' must be float, got 'fast'", None),
    ("lr-bool", [*T, "learner.lr=true"], 2, r"'learner.lr' must be float, got True", None),
    ("lr-list", [*T, "learner.lr=[1]"], 2, r"'learner.lr' must be float, got \[1\]", None),
    ("optimizer", [*T, "learner.optimizer=adamw"], 2, r"'learner.optimizer' must be one of 'adam', 'rmsprop', 'sgd', got 'adamw'", None),
    ("lr-schedule", [*T, "learner.lr_schedule=exp"], 2, r"'learner.lr_schedule' must be one of", None),
    ("lr-schedule-no-updates", [*T, "learner.lr_schedule=cosine"], 2, r"needs 'learner.lr_decay_updates' >= 1", None),
    ("lr-decay-negative", [*T, "learner.lr_decay_updates=-1"], 2, r"'learner.lr_decay_updates' must be >= 0", None),
    ("lr-end-ratio", [*T, "learner.lr_end_ratio=2"], 2, r"'learner.lr_end_ratio' must be in \[0, 1\]", None),
    ("grad-clip", [*T, "learner.grad_clip=-1"], 2, r"'learner.grad_clip' must be >= 0", None),
    ("grad-clip-inf", [*T, "learner.grad_clip=.inf"], 2, r"'learner.grad_clip' must be a finite number", None),
    ("beta2-one", [*T, "learner.beta2=1"], 2, r"'learner.beta2' must be in \(0, 1\)", None),
    ("beta2-zero", [*T, "learner.beta2=0"], 2, r"'learner.beta2' must be in \(0, 1\)", None),
    ("eps-zero", [*T, "learner.eps=0"], 2, r"'learner.eps' must be > 0", None),
    ("amsgrad-sgd", [*T, "learner.optimizer=sgd", "learner.amsgrad=true"], 2, r"'learner.amsgrad' is an Adam option", None),
    ("momentum", [*T, "learner.momentum=1"], 2, r"'learner.momentum' must be in \[0, 1\)", None),
    ("alpha", [*T, "learner.alpha=0"], 2, r"'learner.alpha' must be in \(0, 1\)", None),
    ("weight-decay", [*T, "learner.weight_decay=-0.1"], 2, r"'learner.weight_decay' must be >= 0", None),
    ("device", [*T, "learner.device=tpu"], 2, r"'learner.device' must be one of 'auto', 'cpu', 'cuda', got 'tpu'", None),
    ("torch-threads-negative", [*T, "learner.torch_threads=-1"], 2, r"'learner.torch_threads' must be in 0..1024", None),
    ("torch-threads-huge", [*T, "learner.torch_threads=100000"], 2, r"'learner.torch_threads' must be in 0..1024", None),
    ("torch-threads-float", [*T, "learner.torch_threads=1.5"], 2, r"'learner.torch_threads' must be int, got 1.5", None),
    ("mixed-precision", [*T, "learner.mixed_precision=maybe"], 2, r"'learner.mixed_precision' must be one of", None),
    ("cuda-graphs-sgd", [*T, "learner.cuda_graphs=on", "learner.optimizer=sgd"], 2, r"'learner.cuda_graphs: on' needs 'learner.optimizer: adam'", None),
    ("centered", [*T, "learner.centered=maybe"], 2, r"'learner.centered' must be bool, got 'maybe'", None),
    ("clip-mode-memn2n", ["train", str(ROOT / "configs/memn2n_babi_generated.yaml"), "learner.grad_clip_mode=adaptive", "run.dir={dir}/runs"], 2, r"agent 'memn2n' clips its own gradients by norm; 'learner.grad_clip_mode: adaptive'", None),
    ("clip-ratio", [*T, "learner.grad_clip_ratio=1"], 2, r"'learner.grad_clip_ratio' must be > 1", None),
    # --- rollout
    ("workers-negative", [*T, "rollout.num_workers=-1"], 2, r"'rollout.num_workers' must be >= 0", None),
    ("workers-text", [*T, "rollout.num_workers=two"], 2, r"'rollout.num_workers' must be int, got 'two'", None),
    ("envs-per-worker", [*T, "rollout.envs_per_worker=0"], 2, r"'rollout.envs_per_worker' must be >= 1", None),
    ("steps-per-sample", [*T, "rollout.steps_per_sample=1"], 2, r"'rollout.steps_per_sample' must be >= 'rollout.envs_per_worker'", None),
    ("weights-every", [*T, "rollout.weights_every=0"], 2, r"'rollout.weights_every' must be >= 1", None),
    ("worker-nice", [*T, "rollout.worker_nice=20"], 2, r"'rollout.worker_nice' must be in 0..19", None),
    ("placement", [*T, "rollout.placement=WIDE"], 2, r"'rollout.placement' must be one of 'PACK'", None),
    ("placement-timeout", [*T, "rollout.placement_timeout_s=0"], 2, r"'rollout.placement_timeout_s' must be > 0", None),
    ("worker-restarts", [*T, "rollout.max_worker_restarts=-1"], 2, r"'rollout.max_worker_restarts' must be >= 0", None),
    ("overlap", [*T, "rollout.overlap=maybe"], 2, r"'rollout.overlap' must be bool", None),
    ("rollout-unknown", [*T, "rollout.workers=2"], 2, r"unknown key 'rollout.workers'.*Did you mean", None),
    # --- run
    ("seed-negative", [*T, "run.seed=-1", R], 2, r"'run.seed' must be in 0..4294967295", None),
    ("seed-huge", [*T, "run.seed=99999999999", R], 2, r"'run.seed' must be in 0..4294967295", None),
    ("seed-float", [*T, "run.seed=1.5", R], 2, r"'run.seed' must be int, got 1.5", None),
    ("total-steps-zero", [*T, "run.total_env_steps=0"], 2, r"a run needs a budget: set one of 'run.total_env_steps'", None),
    ("total-steps-negative", [*T, "run.total_env_steps=-5"], 2, r"the run budgets 'run.total_\*' must be >= 0", None),
    ("total-episodes", [*T, "run.total_episodes=-1"], 2, r"the run budgets 'run.total_\*' must be >= 0", None),
    ("total-epochs", [*T, "run.total_epochs=-2"], 2, r"the run budgets 'run.total_\*' must be >= 0", None),
    ("eval-every-epochs", [*T, "run.eval_every_epochs=0"], 2, r"'run.eval_every_epochs' must be >= 1", None),
    ("curriculum-no-threshold", [*T, "env.curriculum=[{max_len: 2}]"], 2, r"'env.curriculum' needs 'env.curriculum_threshold'", None),
    ("curriculum-eval-without-levels", [*T, "env.curriculum_eval_kwargs={max_len: 2}"], 2, r"'env.curriculum_eval_kwargs' is set but 'env.curriculum' has no levels", None),
    ("curriculum-every-negative", [*T, "env.curriculum=[{max_len: 2}]", "env.curriculum_every_sequences=-1"], 2, r"'env.curriculum_every_sequences' must be >= 0", None),
    ("curriculum-every-and-threshold", [*T, "env.curriculum=[{max_len: 2}]", "env.curriculum_threshold=0", "env.curriculum_every_sequences=10"], 2, r"'env.curriculum_threshold' and 'env.curriculum_every_sequences' exclude each other", None),
    ("curriculum-every-without-levels", [*T, "env.curriculum_every_sequences=10"], 2, r"'env.curriculum_every_sequences' is set but 'env.curriculum' has no levels", None),
    ("curriculum-every-not-sequences", [*T, "env.curriculum=[{}]", "env.curriculum_every_sequences=10"], 2, r"'env.curriculum_every_sequences' counts training sequences, and env 'CartPole-v1' is not a sequence task", None),
    ("curriculum-patience-negative", [*T, "env.curriculum=[{max_len: 2}]", "env.curriculum_threshold=0", "env.curriculum_patience=-1"], 2, r"'env.curriculum_patience' must be >= 0", None),
    ("curriculum-patience-without-threshold", [*T, "env.curriculum=[{max_len: 2}]", "env.curriculum_every_sequences=10", "env.curriculum_patience=5"], 2, r"'env.curriculum_patience' needs 'env.curriculum_threshold' and 'env.curriculum'", None),
    ("curriculum-not-mappings", [*T, "env.curriculum=[3]", "env.curriculum_threshold=0"], 2, r"'env.curriculum'\[0\] must be dict\[str, Any\], got 3", None),
    ("dataset-order", [*T, "rollout.dataset_order=sorted"], 2, r"'rollout.dataset_order' must be one of 'epochs', 'replacement'", None),
    ("eval-every", [*T, "run.eval_every_steps=-5", R], 2, r"'run.eval_every_steps' must be >= 0", None),
    ("eval-episodes", [*T, "run.eval_episodes=0"], 2, r"'run.eval_episodes' must be >= 1", None),
    ("max-time-negative", [*T, "run.max_time_s=-1", R], 2, r"'run.max_time_s' must be >= 0", None),
    ("max-time-inf", [*T, "run.max_time_s=.inf"], 2, r"'run.max_time_s' must be a finite number", None),
    ("keep-checkpoints", [*T, "run.keep_checkpoints=0"], 2, r"'run.keep_checkpoints' must be >= 1", None),
    ("checkpoint-every", [*T, "run.checkpoint_every_steps=-1"], 2, r"'run.checkpoint_every_steps' must be >= 0", None),
    ("log-every", [*T, "run.log_every_s=-1"], 2, r"'run.log_every_s' must be >= 0", None),
    ("stop-return-nan", [*T, "run.stop_return=.nan"], 2, r"'run.stop_return' must be float or NoneType", None),
    ("run-name-slash", [*T, "run.name=a/b"], 2, r"'run.name' may hold letters, digits", None),
    ("run-name-empty", [*T, "run.name="], 2, r"'run.name' may hold letters, digits", None),
    ("run-dir-empty", [*T, "run.dir="], 2, r"'run.dir' must not be empty", None),
    ("run-dir-file", [*T, "run.dir={dir}/file"], 2, r"run.dir '.*file' is a file, not a folder", None),
    ("run-dir-under-file", [*T, "run.dir={dir}/file/sub"], 2, r"run.dir '.*file/sub' is under '.*file', which is a file", None),
    ("save-replay", [*T, "run.save_replay=maybe"], 2, r"'run.save_replay' must be bool", None),
    # --- env and agent
    ("env-unknown", [*T, "env.id=NoSuchEnv-v0"], 2, r"unknown environment 'NoSuchEnv-v0'", None),
    ("env-typo", [*T, "env.id=CartPol-v1"], 2, r"Closest known ids: CartPole-v1", None),
    ("env-empty", [*T, "env.id="], 2, r"an env spec must be a non-empty string", None),
    ("env-number", [*T, "env.id=5"], 2, r"'env.id' must be str, got 5", None),
    ("env-os-system", [*T, "env.id=os:system", f"env.kwargs={{command: touch {MARKER}}}"], 2, r"'os:system' is a function not marked with @envs.env_maker", None),
    ("env-builtins-exec", [*T, "env.id=builtins:exec", "env.kwargs={}"], 2, r"'builtins:exec' is .*not a gymnasium.Env subclass or an env maker", None),
    ("env-subprocess", [*T, "env.id=subprocess:Popen", f"env.kwargs={{args: [touch, {MARKER}]}}"], 2, r"'subprocess:Popen' is a class but not a gymnasium.Env subclass", None),
    ("env-module-attr", [*T, "env.id=os:sep"], 2, r"'os:sep' is str, not a gymnasium.Env subclass", None),
    ("env-not-an-env", [*T, "env.id=tests.fakes:NotAnEnv"], 2, r"'tests.fakes:NotAnEnv' is a class but not a gymnasium.Env", None),
    ("env-no-module", [*T, "env.id=no_such_pkg.mod:Env"], 2, r"cannot import module 'no_such_pkg.mod' for env", None),
    ("env-bad-module-name", [*T, "env.id=my-pkg:Env"], 2, r"'my-pkg' in env 'my-pkg:Env' is not a Python module name", None),
    ("env-no-attr", [*T, "env.id=tests.fakes:Coridor"], 2, r"Did you mean 'tests.fakes:Corridor'", None),
    ("env-plugin-syntax", [*T, "env.id=broken_syntax:Env"], 2, r"raised SyntaxError while importing 'broken_syntax' at .*broken_syntax.py:2", write("broken_syntax.py", "import gymnasium\ndef (:\n")),
    ("env-plugin-import-raises", [*T, "env.id=raises_at_import:Env"], 2, r"raised RuntimeError while importing 'raises_at_import'.*boom at import", write("raises_at_import.py", "raise RuntimeError('boom at import')\n")),
    ("env-plugin-init-raises", [*T, "env.id=raises_in_init:Env"], 2, r"raised KeyError while building it at .*raises_in_init.py:4", write("raises_in_init.py", "import gymnasium\nclass Env(gymnasium.Env):\n    def __init__(self):\n        raise KeyError('no such level')\n",)),
    ("env-plugin-no-spaces", [*T, "env.id=no_spaces:Env"], 2, r"'no_spaces:Env' has no observation_space", write("no_spaces.py", "import gymnasium\nclass Env(gymnasium.Env):\n    pass\n")),
    ("env-bad-kwargs", [*T, "env.kwargs={bogus: 1}"], 2, r"could not build 'CartPole-v1' with kwargs \{'bogus': 1\}", None),
    ("env-kwargs-list", [*T, "env.kwargs=[1]"], 2, r"'env.kwargs' must be dict", None),
    ("env-check", [*T, "env.check=maybe"], 2, r"'env.check' must be bool", None),
    ("env-atari-unknown", [*T, "env.id=ALE/NoSuchGame-v5"], 2, r"NoSuchGame", None),
    ("agent-unknown", [*T, "agent.name=dqnn"], 2, r"unknown agent 'dqnn' in 'agent.name'.*Did you mean 'dqn'", None),
    ("agent-name-list", [*T, "agent.name=[]"], 2, r"unknown agent '\[\]' in 'agent.name'", None),
    ("agent-key", [*T, "agent.hiden=[8]"], 2, r"unknown key 'agent.hiden'.*Did you mean 'hidden'", None),
    ("agent-space", [*T, "env.id=tests.test_plugin_envs:BoxAction"], 2, r"action space Box.*supported action spaces", None),
    # --- resume: run folders are data
    ("resume-missing", ["train", "--resume", "{dir}/nope"], 2, r"'.*nope' is not a memrl run directory", None),
    ("resume-not-a-run", ["train", "--resume", "{dir}"], 2, r"is not a memrl run directory \(no config.yaml", None),
    ("resume-with-config", ["train", "--resume", "{run}", CFG], 2, r"with --resume, give only overrides", None),
    ("resume-os-system", ["train", "--resume", "{run}"], 2, r"config '.*run/config.yaml' \(key env.id\) names the env 'os:system'.*--trust", OS_SYSTEM),
    ("resume-os-system-trusted", ["train", "--resume", "{run}", "--trust"], 2, r"'os:system' is a function not marked with @envs.env_maker", OS_SYSTEM),
    ("resume-plugin-untrusted", ["train", "--resume", "{run}"], 2, r"names the env 'tests.fakes:Corridor', which would import module 'tests.fakes'", config_with(id="tests.fakes:Corridor")),
    ("resume-gym-module-untrusted", ["train", "--resume", "{run}"], 2, r"'gymnasium.envs.classic_control:CartPole-v1', which would import", config_with(id="gymnasium.envs.classic_control:CartPole-v1")),
    ("resume-config-binary", ["train", "--resume", "{run}"], 2, r"config.yaml' is not text", write("run/config.yaml", RANDOM)),
    ("resume-config-duplicate", ["train", "--resume", "{run}"], 2, r"the key 'env' is given twice", write("run/config.yaml", "env: {}\nenv: {}\n")),
    ("resume-config-alias-bomb", ["train", "--resume", "{run}"], 2, r"aliases \(\*a\) are not allowed", write("run/config.yaml", ALIAS_BOMB)),
    ("resume-bad-override", ["train", "--resume", "{run}", "learner.lr=-1"], 2, r"'learner.lr' must be > 0", None),
    ("resume-all-damaged", ["train", "--resume", "{run}", "run.total_env_steps=400"], 2, r"no readable complete checkpoint in '.*checkpoints': skipped checkpoint", damage_ckpt("state.pt", RANDOM, "all")),
    ("resume-no-checkpoint", ["train", "--resume", "{run}", "run.total_env_steps=400"], 2, r"no complete checkpoint in '.*checkpoints' to resume from", remove_ckpts),
    ("resume-replay-resized", ["train", "--resume", "{dqn}", "rollout.envs_per_worker=4", "rollout.steps_per_sample=40", "run.total_env_steps=400"], 2, r"the run's checkpoints hold a replay buffer of 2 env streams \(rollout.num_workers=0 x rollout.envs_per_worker=2 in '.*config.yaml'\); this resume would have 4", None),
    ("resume-replay-more-workers", ["train", "--resume", "{dqn}", "rollout.num_workers=2", "run.total_env_steps=400"], 2, r"replay buffer of 2 env streams.*this resume would have 4", None),
    ("resume-replay-damaged", ["train", "--resume", "{dqn}", "run.total_env_steps=400"], 2, r"no readable complete checkpoint.*replay.npz' \(damaged\)", damage_ckpt("replay.npz", RANDOM, "all")),
    # --- evaluate
    ("eval-missing", ["evaluate", "{dir}/nope"], 2, r"run directory '.*nope' does not exist", None),
    ("eval-not-a-run", ["evaluate", "{dir}"], 2, r"is not a memrl run directory", None),
    ("eval-episodes-zero", ["evaluate", "{run}", "--episodes", "0"], 2, r"--episodes must be in 1..100,000", None),
    ("eval-episodes-negative", ["evaluate", "{run}", "--episodes", "-3"], 2, r"--episodes must be in 1..100,000", None),
    ("eval-episodes-huge", ["evaluate", "{run}", "--episodes", "999999999999"], 2, r"--episodes must be in 1..100,000 .*got 999,999,999,999", None),
    ("eval-episodes-text", ["evaluate", "{run}", "--episodes", "ten"], 2, r"argument --episodes: invalid int value: 'ten'", None),
    ("eval-checkpoint-text", ["evaluate", "{run}", "--checkpoint", "newest"], 2, r"--checkpoint must be N .*got 'newest'", None),
    ("eval-checkpoint-missing", ["evaluate", "{run}", "--checkpoint", "7"], 2, r"has no complete checkpoint at env step 7. Available checkpoints", None),
    ("eval-epsilon", ["evaluate", "{run}", "--epsilon", "2"], 2, r"--epsilon must be in \[0, 1\], got 2", None),
    ("eval-epsilon-negative", ["evaluate", "{run}", "--epsilon", "-0.1"], 2, r"--epsilon must be in \[0, 1\]", None),
    ("eval-temperature", ["evaluate", "{run}", "--temperature", "0"], 2, r"--temperature must be > 0", None),
    ("eval-both", ["evaluate", "{run}", "--epsilon", "0.1", "--temperature", "1"], 2, r"not allowed with argument", None),
    ("eval-record", ["evaluate", "{run}", "--record", "gif"], 2, r"argument --record: invalid choice: 'gif'", None),
    ("eval-env-override", ["evaluate", "{run}", "--env-override", "steps"], 2, r"bad --env-override 'steps'", None),
    ("eval-env-override-kwarg", ["evaluate", "{run}", "--env-override", "bogus=1"], 2, r"could not build 'CartPole-v1' with kwargs", None),
    ("eval-os-system", ["evaluate", "{run}"], 2, r"config '.*config.yaml' \(key env.id\) names the env 'os:system'.*pass --trust", OS_SYSTEM),
    ("eval-os-system-trusted", ["evaluate", "{run}", "--trust"], 2, r"'os:system' is a function not marked", OS_SYSTEM),
    ("eval-eval-builtin", ["evaluate", "{run}", "--trust"], 2, r"'builtins:eval' is .*not a gymnasium.Env subclass", config_with(id="builtins:eval", kwargs={"source": "open('PWNED', 'w')"})),
    ("eval-plugin-untrusted", ["evaluate", "{run}"], 2, r"names the env 'tests.fakes:Corridor'", config_with(id="tests.fakes:Corridor")),
    ("eval-config-binary", ["evaluate", "{run}"], 2, r"config.yaml' is not text", write("run/config.yaml", RANDOM)),
    ("eval-config-duplicate", ["evaluate", "{run}"], 2, r"is given twice", write("run/config.yaml", "run: {}\nrun: {}\n")),
    ("eval-state-random", ["evaluate", "{run}", "--checkpoint", "latest"], 2, r"cannot read checkpoint '.*state.pt' \(damaged", damage_ckpt("state.pt", RANDOM)),
    ("eval-state-truncated", ["evaluate", "{run}", "--checkpoint", "latest"], 2, r"cannot read checkpoint '.*state.pt' \(damaged", truncate_ckpt("state.pt")),
    ("eval-no-checkpoint", ["evaluate", "{run}"], 2, r"has no complete checkpoint", remove_ckpts),
    ("eval-no-best", ["evaluate", "{run}", "--checkpoint", "best"], 2, r"has no 'best' checkpoint", lambda box: shutil.rmtree(box / "run/checkpoints/best")),
    # --- replay: episode files are data
    ("replay-missing", ["replay", "{dir}/nope.npz"], 2, r"episode file '.*nope.npz' does not exist", None),
    ("replay-suffix", ["replay", "{dir}/file"], 2, r"bad episode reference '.*file'", None),
    ("replay-list-missing", ["replay", "{dir}/episodes.jsonl#0"], 2, r"episode list '.*episodes.jsonl' does not exist", None),
    ("replay-list-number", ["replay", "{dir}/l.jsonl#x"], 2, r"'x' is not a number", write("l.jsonl", "{}\n")),
    ("replay-list-not-json", ["replay", "{dir}/l.jsonl#0"], 2, r"l.jsonl' is not an episodes.jsonl file", write("l.jsonl", "nope\n")),
    ("replay-list-binary", ["replay", "{dir}/l.jsonl#0"], 2, r"l.jsonl' is not an episodes.jsonl file", write("l.jsonl", RANDOM)),
    ("replay-list-bad-episode", ["replay", "{dir}/l.jsonl#0"], 2, r"l.jsonl' is not an episodes.jsonl file", write("l.jsonl", '{"episode": "zero", "data": "ep.npz"}\n')),
    ("replay-list-bad-data", ["replay", "{dir}/l.jsonl#0"], 2, r"l.jsonl' is not an episodes.jsonl file", write("l.jsonl", '{"episode": 0, "data": 5}\n')),
    ("replay-list-no-episode", ["replay", "{dir}/l.jsonl#5"], 2, r"has no episode 5 \(episodes in it: 0-0\)", write("l.jsonl", '{"episode": 0, "data": "ep.npz"}\n')),
    ("replay-random-bytes", ["replay", "{dir}/ep.npz"], 2, r"cannot read episode file '.*ep.npz'", write("ep.npz", RANDOM)),
    ("replay-truncated", ["replay", "{dir}/ep.npz"], 2, r"cannot read episode file '.*ep.npz'", lambda box: (box / "ep.npz").write_bytes((box / "ep.npz").read_bytes()[:200])),
    ("replay-missing-arrays", ["replay", "{dir}/ep.npz"], 2, r"is not a memrl episode file: it lacks \['actions'\]", episode_with(actions=DELETE)),
    ("replay-meta-not-json", ["replay", "{dir}/ep.npz"], 2, r"'meta' is not valid JSON", episode_with(raw_meta="{nope")),
    ("replay-meta-list", ["replay", "{dir}/ep.npz"], 2, r"'meta' must be a JSON object, got list", episode_with(raw_meta="[1]")),
    ("replay-meta-numeric", ["replay", "{dir}/ep.npz"], 2, r"'meta' must be a JSON string", episode_with(raw_meta=5)),
    ("replay-no-seed", ["replay", "{dir}/ep.npz"], 2, r"'meta' has no 'seed'", episode_with({"seed": DELETE})),
    ("replay-seed-negative", ["replay", "{dir}/ep.npz"], 2, r"meta 'seed' must be an integer in \[0, 2\*\*63\), got -1", episode_with({"seed": -1})),
    ("replay-seed-text", ["replay", "{dir}/ep.npz"], 2, r"meta 'seed' must be an integer", episode_with({"seed": "zero"})),
    ("replay-no-env", ["replay", "{dir}/ep.npz"], 2, r"'meta' has no 'env_id'", episode_with({"env_id": DELETE})),
    ("replay-env-number", ["replay", "{dir}/ep.npz"], 2, r"meta 'env_id' must be a non-empty string, got 5", episode_with({"env_id": 5})),
    ("replay-kwargs-list", ["replay", "{dir}/ep.npz"], 2, r"meta 'env_kwargs' must be an object", episode_with({"env_kwargs": [1]})),
    ("replay-env-unknown", ["replay", "{dir}/ep.npz"], 2, r"unknown environment 'Nope-v0'", episode_with({"env_id": "Nope-v0"})),
    ("replay-os-system", ["replay", "{dir}/ep.npz"], 2, r"the episode file '.*ep.npz' \(meta env_id\) names the env 'os:system'.*pass --trust", EVIL_EPISODE),
    ("replay-os-system-trusted", ["replay", "{dir}/ep.npz", "--trust"], 2, r"'os:system' is a function not marked", EVIL_EPISODE),
    ("replay-exec-trusted", ["replay", "{dir}/ep.npz", "--trust"], 2, r"'builtins:exec' is .*not a gymnasium.Env subclass", episode_with({"env_id": "builtins:exec", "env_kwargs": {"source": "open('PWNED', 'w')"}})),
    ("replay-plugin-untrusted", ["replay", "{dir}/ep.npz"], 2, r"names the env 'tests.fakes:Corridor', which would import", episode_with({"env_id": "tests.fakes:Corridor"})),
    ("replay-action-range", ["replay", "{dir}/ep.npz"], 2, r"recorded action 0 \(7\) is not in the env's action space Discrete\(2\)", episode_with(actions=lambda a: np.full_like(a, 7))),
    ("replay-action-float", ["replay", "{dir}/ep.npz"], 2, r"recorded action 0 \(0.5\) is not in the env's action space", episode_with(actions=lambda a: np.full(a.shape, 0.5))),
    ("replay-action-text", ["replay", "{dir}/ep.npz"], 2, r"'actions' must be numeric", episode_with(actions=lambda a: np.asarray(["x"] * len(a)))),
    ("replay-short-actions", ["replay", "{dir}/ep.npz"], 2, r"'actions' holds \d+ entries, but 'rewards' holds \d+ steps", episode_with(actions=lambda a: a[:-1])),
    ("replay-short-hashes", ["replay", "{dir}/ep.npz"], 2, r"'obs_hash' must hold \d+ hashes", episode_with(obs_hash=lambda a: a[:-1])),
    ("replay-render-suffix", ["replay", "{dir}/ep.npz", "--render", "{dir}/out.txt"], 2, r"--render writes .mp4 or .gif, not 'out.txt'", None),
    # --- plot
    ("plot-missing", ["plot", "{dir}/nope"], 2, r"'.*nope' does not exist", None),
    ("plot-not-a-run", ["plot", "{dir}"], 2, r"is not a memrl run directory", None),
    ("plot-binary-metrics", ["plot", "{run}", "-o", "{dir}/p.png"], 2, r"hold no metrics", write("run/metrics.jsonl", RANDOM)),
    ("plot-binary-config", ["plot", "{run}", "-o", "{dir}/p.png"], 2, r"config.yaml' is not text", write("run/config.yaml", RANDOM)),
    ("plot-metric", ["plot", "{run}", "--metric", "nope", "-o", "{dir}/p.png"], 2, r"nope", None),
    ("plot-suffix", ["plot", "{run}", "-o", "{dir}/p.jpg"], 2, r"must be a .png file", None),
    ("plot-folder", ["plot", "{run}", "-o", "{dir}/none/p.png"], 2, r"the folder of '.*none/p.png' does not exist", None),
    ("plot-x", ["plot", "{run}", "--x", "steps"], 2, r"argument --x: invalid choice: 'steps'", None),
    # --- submit (fails before any connection) and the rest
    ("submit-override-first", ["submit", "learner.lr=1", "--address", "http://127.0.0.1:1"], 2, r"give a config file first", None),
    ("submit-outside", ["submit", CFG, "--address", "http://127.0.0.1:1"], 2, r"is outside the current folder", None),
    ("submit-bad-config", ["submit", "{dir}/c.yaml", "--address", "http://127.0.0.1:1"], 2, r"the key 'env' is given twice", write("c.yaml", "env: {}\nenv: {}\n")),
    ("submit-bad-env", ["submit", "{dir}/c.yaml", "--address", "http://127.0.0.1:1"], 2, r"'os:system' is a function not marked", write("c.yaml", f"env: {{id: 'os:system', kwargs: {{command: touch {MARKER}}}}}\nagent: {{name: reinforce}}\n",)),
    ("submit-refused", ["submit", "{dir}/c.yaml", "--address", "http://127.0.0.1:1"], 2, r"cannot reach the Ray job server at 'http://127.0.0.1:1'", write("c.yaml", "agent: {name: reinforce}\n")),
    ("submit-no-address", ["submit", CFG], 2, r"the following arguments are required: --address", None),
    ("envs-no-match", ["envs", "zzzzzz"], 1, r"^$", None),
    ("unknown-command", ["fly"], 2, r"invalid choice: 'fly'", None),
    ("train-unknown-flag", ["train", CFG, "--fast"], 2, r"unrecognized arguments: --fast", None),
]
# fmt: on


@pytest.mark.parametrize(
    ("argv", "code", "pattern", "setup"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input(argv, code, pattern, setup, sandbox, capsys):
    import re

    if setup is not None:
        setup(sandbox)
    before = files_under(sandbox)
    args = [
        a.replace("{dir}", str(sandbox))
        .replace("{run}", str(sandbox / "run"))
        .replace("{dqn}", str(sandbox / "dqn"))
        for a in argv
    ]
    try:
        status = main(args)
    except SystemExit as exc:  # argparse's own usage errors
        status = exc.code
    captured = capsys.readouterr()
    text = captured.err + captured.out
    message = " ".join(text.split())
    assert status == code, message
    assert "Traceback" not in text
    assert len(message) < 3000, "the message is not one paragraph"
    assert re.search(pattern, message), message
    if code == 2 and pattern != r"^$":
        assert "error" in message  # one message that says it is an error
    assert files_under(sandbox) == before, "a refused input wrote files"
    assert not (sandbox / MARKER).exists(), "the command named in the file ran"


def test_there_are_enough_cases():
    assert len(CASES) >= 120
    assert len({c[0] for c in CASES}) == len(CASES)
