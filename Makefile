# Two commands: `make run` and `make test`. Both set everything up on a fresh machine.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | cksum | cut -d' ' -f1)
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run test lint unit bench clean browser

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@# A download cut short or garbled on the way fails its hash check: tried again (up to
	@# three times, without pip's cache), so one bad transfer does not fail a fresh install.
	@for try in 1 2 3; do \
	  if [ $$try = 1 ]; then cache=""; else cache="--no-cache-dir"; fi; \
	  echo "$(BIN)/python -m pip install -q --disable-pip-version-check $$cache -r requirements.lock"; \
	  $(BIN)/python -m pip install -q --disable-pip-version-check $$cache -r requirements.lock && break; \
	  if [ $$try = 3 ]; then exit 1; fi; \
	  echo "installing the locked requirements failed (try $$try of 3); trying again in 5 s"; \
	  sleep 5; \
	done
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/tradewire serve --host $(HOST) --port $(PORT)

lint: install
	$(BIN)/ruff check src tests $(wildcard bench)
	$(BIN)/lint-imports

test: lint browser
	$(BIN)/python -m pytest

# The dashboard's tests drive Debian's Chromium (Playwright's own browser download is not used).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -q && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium; }

unit: install
	$(BIN)/python -m pytest tests/unit

bench: install
	$(BIN)/python -m bench

# The long crash runs (docs/reliability.md): the crash harness of tests/e2e/test_crash_harness.py
# at soak size (SOAK_KILLS kills on SQLite and again on PostgreSQL), bounded by SOAK_TIMEOUT.
# Each database's `lost= duplicated= stuck= kills=` line goes to $(SOAK_OUT).
SOAK_KILLS ?= 25
SOAK_SECONDS ?= 300
SOAK_TIMEOUT ?= 900
SOAK_OUT ?= docs/reliability-results.txt
.PHONY: soak
soak: install
	@rm -f $(SOAK_OUT).part; touch $(SOAK_OUT).part; rc=0; \
	TW_SOAK_KILLS=$(SOAK_KILLS) TW_SOAK_SECONDS=$(SOAK_SECONDS) TW_SOAK_MAX_GAP=6 \
	  TW_SOAK_RESULTS=$(SOAK_OUT).part timeout -s INT -k 30 $(SOAK_TIMEOUT) \
	  $(BIN)/python -m pytest -q -rs -p no:cacheprovider tests/e2e/test_crash_harness.py || rc=$$?; \
	{ echo "# make soak SOAK_KILLS=$(SOAK_KILLS) SOAK_SECONDS=$(SOAK_SECONDS)" \
	    "SOAK_TIMEOUT=$(SOAK_TIMEOUT): exit $$rc"; cat $(SOAK_OUT).part; } > $(SOAK_OUT); \
	rm -f $(SOAK_OUT).part; cat $(SOAK_OUT); exit $$rc

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
