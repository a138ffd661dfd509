# Two commands do all the set-up: `make run` trains and evaluates, `make test` runs the tests.
# Each creates .venv when missing and installs the package with the extras it needs: `run` only
# TensorFlow (EXTRA=cpu, or EXTRA=gpu), `test`, `lint` and `docs` the dev tools, MLflow (track) and engines too.
PYTHON ?= python3
VENV ?= .venv
EXTRA ?= cpu
PY := $(VENV)/bin/python
# The engines' own Hydra launchers (submitit for SLURM, Ray). `make run` installs none unless
# asked (`make run ENGINES=ray`, `ENGINES=slurm,ray`): the main job needs neither, and Ray alone
# is about 240 MB. `make test` installs both, since their tests run sweeps through them
# (`make test TEST_ENGINES=` leaves them out; those tests then skip).
ENGINES ?=
TEST_ENGINES ?= slurm,ray
# Exact versions of everything `make` installs, as CI tested them (Linux x86-64, Python 3.11).
# `make lock` resolves them again from pyproject.toml, keeping every pin that still fits.
LOCK := requirements.lock
LOCKED_EXTRAS := cpu dev track slurm ray
export MPLBACKEND := Agg
export TF_CPP_MIN_LOG_LEVEL ?= 2

comma := ,
# One install's extras, e.g. "cpu,dev,slurm,ray", named by its stamp file (commas as dashes),
# so that another set of extras installs again and the same set does not.
stamp = $(VENV)/.installed-$(subst $(comma),-,$(EXTRA)$(if $(strip $(1)),$(comma)$(strip $(1))))
RUN_STAMP := $(call stamp,$(ENGINES))
TEST_STAMP := $(call stamp,dev$(comma)track$(if $(strip $(TEST_ENGINES)),$(comma)$(strip $(TEST_ENGINES))))

.PHONY: run test test-slow test-all lint docs lock

$(VENV)/.installed-%: pyproject.toml $(LOCK)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c $(LOCK) -e ".[$(subst -,$(comma),$*)]"
	touch $@

# make run ARGS="model=cnn optimizer=rmsprop data.root=../shared/data/emnist-proxy"
run: $(RUN_STAMP)
	$(PY) -m emnist_bench $(ARGS)

# The default suite: fast, no training beyond seconds, in TEST_WORKERS processes (pytest-xdist;
# a test file's tests share a process, so its module fixtures are made once). Two fill a 2-core
# machine: most of a test's time is one thread of Python (imports, Hydra, plots), so a second
# process all but halves the wait, and each one holds TensorFlow (about 1 GB), so not one per
# core of a large machine. `make test TEST_WORKERS=0` runs them in this process, one at a time.
# `make test-slow` runs the slow tests only (the engines' sweeps, the distributed search,
# real-data and multi-epoch runs), one at a time; CI runs both, `make test-all`.
TEST_WORKERS ?= 2
test: $(TEST_STAMP)
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

test-slow: $(TEST_STAMP)
	$(PY) -m pytest -m slow $(PYTEST_ARGS)

test-all: test test-slow

lint: $(TEST_STAMP)
	$(PY) -m ruff check emnist_bench tests benchmarks docs
	$(PY) -m ruff format --check emnist_bench tests benchmarks docs

# The docs site: the configuration reference regenerated from conf/, then a strict build into
# build/site/ (`mkdocs serve` previews it).
docs: $(TEST_STAMP)
	$(PY) docs/gen_config_reference.py
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict

# The lock file, resolved with uv (installed into .venv for this only); the GPU extra's CUDA
# wheels are not pinned, the packages it shares with the CPU build are.
lock:
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet uv
	$(PY) -m uv pip compile pyproject.toml $(foreach extra,$(LOCKED_EXTRAS),--extra $(extra)) \
		--python-version 3.11 --python-platform x86_64-manylinux_2_28 --quiet -o $(LOCK)
