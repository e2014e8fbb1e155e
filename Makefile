# creditwindow: two commands do everything on a fresh machine.
#   make demo   set up, bring the local platform up, run the fleet end to end on 1,000 applications
#   make test   set up and run every test (unit, handlers, end to end on the real broker and Redis)

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | sha256sum | cut -c1-12)
PYTEST_ARGS ?=

.PHONY: help install demo test test-fast test-e2e bench faults up down status schemas docs clean

help:
	@echo "make demo | make test | make test-fast | make bench | make faults | make up | make down | make status"

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11+ not found: install python3 (3.11 or newer) and python3-venv"; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || { echo "Python 3.11+ needed, found $$($(PYTHON) --version)"; exit 1; }
	@$(PYTHON) -m venv $(VENV) || { echo "python venv failed: install python3-venv"; exit 1; }
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[dev,model,test]"
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

install: $(STAMP)

up: install
	$(BIN)/creditwindow dev up

down: install
	$(BIN)/creditwindow dev down

status: install
	$(BIN)/creditwindow dev status

demo: install
	$(BIN)/creditwindow demo

# Everything: pure unit tests, handler tests (in-memory broker), end-to-end tests on the real
# Kafka broker and Redis (from KAFKA_BOOTSTRAP_SERVERS/REDIS_URL, testcontainers, or the local platform).
test: install
	@$(BIN)/python -m pytest -ra $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: the suite is missing, which is a failure" >&2; fi; \
	exit $$rc

# The fast ones while you work: no broker, no Redis.
test-fast: install
	$(BIN)/python -m pytest -ra -m "unit or handlers" $(PYTEST_ARGS)

test-e2e: install
	$(BIN)/python -m pytest -ra -m e2e $(PYTEST_ARGS)

bench: install
	$(BIN)/creditwindow bench

faults: install
	$(BIN)/creditwindow faults

schemas: install
	$(BIN)/creditwindow schema export docs/schemas

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
