# Two commands do everything: `make run` and `make test`. Each creates .venv on first use.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
PORT   ?= 8501

.PHONY: run test test-fast install install-test system-deps bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PY) -m pip install -q -e '.[test]'
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

## Start the dashboard on the bundled default model and example clip.
run: install
	$(VENV)/bin/streamlit run dashboard/app.py --server.port $(PORT)

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

bench: install
	$(VENV)/bin/earmark bench

clean:
	rm -rf $(VENV) .pytest_cache
