"""The README cannot go stale silently: every `make` target it names exists, every
`memrl train configs/...` example loads with its overrides (config keys and types checked), every
`memrl` subcommand it shows exists, and every docs/ link points at a file. The Python example
is docs/python_api.md's, which tests/test_python_api.py runs."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from rollout.config import load_config

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
BLOCKS = re.findall(r"```bash\n(.*?)```", README, flags=re.S)
LINES = [line.split("  #")[0].strip() for block in BLOCKS for line in block.splitlines()]


def test_make_targets_exist():
    makefile = (ROOT / "Makefile").read_text()
    targets = {m for m in re.findall(r"^([a-z-]+):", makefile, flags=re.M)}
    named = {line.split()[1] for line in LINES if line.startswith("make ")}
    assert named and named <= targets


TRAIN = [line for line in LINES if line.startswith("memrl train configs/")]


@pytest.mark.parametrize("line", TRAIN)
def test_train_examples_load(line):
    words = shlex.split(line)[2:]
    config, overrides = words[0], [w for w in words[1:] if "=" in w and not w.startswith("-")]
    overrides = [o for o in overrides if not o.startswith("env.id=mypackage")]  # a placeholder
    cfg = load_config(ROOT / config, overrides)
    assert cfg.env.id


def test_subcommands_exist():
    from rollout.cli import _parser

    choices = next(a.choices for a in _parser()._actions if getattr(a, "choices", None) is not None)
    named = {
        line.split()[1] for line in LINES if line.startswith("memrl ") and len(line.split()) > 1
    }
    named -= {"--help,"}
    assert TRAIN and named <= set(choices), named - set(choices)


def test_docs_links_exist():
    links = re.findall(r"\]\((docs/[^)#]+)", README)
    assert links
    missing = [link for link in links if not (ROOT / link).is_file()]
    assert not missing, missing
