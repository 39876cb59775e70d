# memrl: `make run` trains the main experiment, `make test` runs the suite CI runs.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER ?= 0
export RAY_USAGE_STATS_ENABLED ?= 0

.PHONY: install run test test-slow bench lint clean

install: $(STAMP)

# torch==2.13.0 is pinned in pyproject.toml so pip takes the CPU wheel and never a CUDA build.
$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "memrl needs Python 3.11 (set PYTHON=/path/to/python3.11)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/memrl train configs/ntm_copy.yaml

# Two pytest processes: much of a Ray test is waiting (start-up, actors, subprocesses), so 2 beat
# 1 on 2 cores. Each keeps one Ray for all its tests (tests/conftest.py), so tests, not files,
# are shared out, and an idle process takes queued tests from the busy one (worksteal).
TEST_WORKERS ?= 2

test: $(STAMP)
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist worksteal

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow -s

bench: $(STAMP)
	$(PY) benchmarks/cartpole.py
	$(PY) benchmarks/ntm.py
	$(PY) benchmarks/rollout_throughput.py

lint: $(STAMP)
	$(VENV)/bin/ruff check agents envs rollout memrl tests benchmarks examples
	$(VENV)/bin/ruff format --check agents envs rollout memrl tests benchmarks examples

clean:
	rm -rf $(VENV) runs .pytest_cache
