# Two commands do everything: `make run` and `make test`. Each creates .venv on first use.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
PORT   ?= 8501
# The dashboard listens on this machine only; `make run HOST=0.0.0.0` serves a network (put authentication
# in front first: see the README, "Serving a classroom").
HOST   ?= 127.0.0.1

.PHONY: run test test-fast install install-test install-docs system-deps bench fuzz docs clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[hf]'
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PY) -m pip install -q -e '.[test]'
	touch $@

$(VENV)/.installed-docs: $(VENV)/.installed
	$(PY) -m pip install -q -e '.[docs]'
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test
install-docs: $(VENV)/.installed-docs

## Start the dashboard on the bundled default model and example clip.
run: install
	$(VENV)/bin/streamlit run dashboard/app.py --server.address $(HOST) --server.port $(PORT)

## Debian packages the tests use (browser test, example synthesis); best effort, skipped if not root.
system-deps:
	@missing=""; for p in chromium espeak-ng sox; do command -v $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian packages:$$missing"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing chromium-driver >/dev/null) \
	      || echo "could not install$$missing; the tests that need them will skip and say why"; \
	  else echo "not root: cannot install$$missing; the tests that need them will skip and say why"; fi; \
	fi

## Install with test extras and run the whole test suite.
test: install-test system-deps
	$(PY) -m pytest -q

## The developer's quick loop: everything but the slow, browser and fuzz tests (see docs/guide/developing.md).
test-fast: install-test
	$(PY) -m pytest -q -m "not slow and not browser and not fuzz"

## Build the documentation site into site/ (MkDocs + Material + mkdocstrings); a broken link or reference fails.
docs: install-docs
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict $(MKDOCS_FLAGS)

## Fuzz the decoder (10,000 mutated files), every declared hyperparameter, and every hostile model file through
## the four doors (API, CLI, EARMARK_MODELS, upload; about 11 min on 2 busy cores); writes the tables.
FUZZ_CASES ?= 10000
fuzz: install-test
	mkdir -p docs/results
	OMP_NUM_THREADS=1 nice -n 10 $(PY) tests/test_fuzz_decoder.py --cases $(FUZZ_CASES) --out docs/results/fuzz-decoder.md
	OMP_NUM_THREADS=1 nice -n 10 $(PY) tests/test_fuzz_params.py --out docs/results/fuzz-params.md
	OMP_NUM_THREADS=1 nice -n 10 $(PY) -W ignore tests/test_hostile_doors.py --out docs/results/hostile-models.md

bench: install
	$(VENV)/bin/earmark bench --explainers ig,smoothgrad,freqrise --transforms fourier,stft --peers --out runs/bench

clean:
	rm -rf $(VENV) .pytest_cache site
