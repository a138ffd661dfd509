# Two commands do all the set-up: `make run` trains and evaluates, `make test` runs the tests.
# Each creates .venv when missing and installs the package with its extras.
PYTHON ?= python3
VENV ?= .venv
EXTRA ?= cpu
PY := $(VENV)/bin/python
# The engines' own Hydra launchers (submitit for SLURM, Ray), installed with the suite, whose
# tests run sweeps through them: `make test ENGINES=` leaves them out (those tests then skip).
ENGINES ?= ,slurm,ray
export MPLBACKEND := Agg
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: run test lint bench

$(VENV)/.installed-$(EXTRA)$(ENGINES): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[$(EXTRA),dev$(ENGINES)]"
	touch $@

# make run ARGS="model=cnn optimizer=rmsprop data.root=../shared/data/emnist-proxy"
run: $(VENV)/.installed-$(EXTRA)$(ENGINES)
	$(PY) -m emnist_bench $(ARGS)

# make test PYTEST_ARGS="-m slow" for the long real-data runs.
test: $(VENV)/.installed-$(EXTRA)$(ENGINES)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed-$(EXTRA)$(ENGINES)
	$(PY) -m ruff check emnist_bench tests benchmarks
	$(PY) -m ruff format --check emnist_bench tests benchmarks
