# creditwindow: two commands do everything on a fresh machine.
#   make demo   set up, bring the local platform up, run the fleet end to end on 1,000 applications
#   make test   set up and run every test (unit, handlers, end to end on the real broker and Redis)
# Containers (a Docker engine; `deploy/images/engine.sh start` installs and starts one as root):
#   make images            the images, built here from Debian's packages and Maven where no registry answers
#   make test-containers   the end-to-end suite on Kafka and Redis started by testcontainers
#   make compose-check     docker-compose.yml up, 1,000 applications through it, down
#   make deploy-check      render and validate deploy/k8s offline; check the Prometheus rules with promtool
# The local cluster (three Kafka nodes, Redis with a replica and Sentinels; no Docker):
#   make test-cluster      the cluster suite and end-to-end tests on it (the cluster is started and stopped)
#   make faults-cluster    the fault suite on it, 20,000 applications (docs/reliability.md, its section)
#   make bench-cluster     what WAIT for the Redis replica costs (docs/benchmarks.md, its section)

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
LOCK   := requirements/dev.txt
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml $(LOCK) requirements/build.txt | sha256sum | cut -c1-12)
PYTEST_ARGS ?=
COMPOSE := docker compose $(if $(wildcard .cache/images.env),--env-file .cache/images.env)

.PHONY: help install lock demo test test-fast test-dates test-e2e bench profile faults up down status schemas docs clean \
	images test-containers compose-check compose-up compose-down k8s-check rules-check deploy-check \
	test-cluster faults-cluster bench-cluster

help:
	@echo "make demo | make test | make test-fast | make test-dates | make bench | make profile | make faults | make up | make down | make status"
	@echo "make images | make test-containers | make compose-check | make deploy-check | make lock"
	@echo "make test-cluster | make faults-cluster | make bench-cluster"

# Installs exactly the lock (hashes checked): requirements/dev.txt has every extra; the project itself
# is installed editable, built with the locked setuptools. `make lock` re-resolves after a change to
# pyproject.toml's dependencies.
$(STAMP): pyproject.toml $(LOCK) requirements/build.txt
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11+ not found: install python3 (3.11 or newer) and python3-venv"; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || { echo "Python 3.11+ needed, found $$($(PYTHON) --version)"; exit 1; }
	@$(PYTHON) -m venv $(VENV) || { echo "python venv failed: install python3-venv"; exit 1; }
	$(BIN)/pip install -q --require-hashes -r requirements/build.txt -r $(LOCK)
	$(BIN)/pip install -q --no-deps --no-build-isolation -e .
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

install: $(STAMP)

lock: install
	$(BIN)/pip install -q "uv>=0.5"
	$(BIN)/uv pip compile -q pyproject.toml --universal --python-version 3.11 --generate-hashes -o requirements/runtime.txt
	$(BIN)/uv pip compile -q pyproject.toml --universal --python-version 3.11 --generate-hashes --extra dev --extra model --extra test -o requirements/dev.txt
	$(BIN)/uv pip compile -q requirements/build.in --universal --python-version 3.11 --generate-hashes -o requirements/build.txt

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

# The unit and handler suites at other dates (devtools/dates.py): the process clock moved by Debian's
# faketime (installed when missing) and the tests' own clock (CW_TEST_NOW) to a month's last seconds,
# just after them, a leap day and a year after the fixtures.
test-dates: install
	$(BIN)/python -m devtools.dates $(PYTEST_ARGS)

test-e2e: install
	$(BIN)/python -m pytest -ra -m e2e $(PYTEST_ARGS)

bench: install
	$(BIN)/creditwindow bench

# Where each service's CPU goes under the benchmark's load (py-spy): docs/profile.md and its flame graphs.
PROFILE_LABEL ?= now
profile: install
	$(BIN)/creditwindow profile --label $(PROFILE_LABEL)

faults: install
	$(BIN)/creditwindow faults

# --- the local cluster -------------------------------------------------------------------------------
# End-to-end tests that run as they are on the cluster (CLUSTER_E2E), beside the cluster suite. The
# cluster is stopped afterwards unless it was running before (CW_KEEP_CLUSTER=1 keeps it).
CLUSTER_HOME ?= $(or $(CW_HOME),.cache)
CLUSTER_E2E ?= tests/e2e/test_fleet.py tests/e2e/test_topics_check.py
test-cluster: install
	@running=$$($(BIN)/creditwindow dev status --cluster >/dev/null 2>&1 && echo yes); \
	$(BIN)/creditwindow dev up --cluster || exit $$?; \
	set -a; . $(CLUSTER_HOME)/cluster/cluster.env; set +a; \
	CW_CLUSTER_TESTS=1 CW_KEEP_CLUSTER=1 $(BIN)/python -m pytest -ra $(CLUSTER_E2E) tests/cluster $(PYTEST_ARGS); rc=$$?; \
	if [ -z "$$running" ] && [ -z "$$CW_KEEP_CLUSTER" ]; then $(BIN)/creditwindow dev down --cluster; fi; \
	exit $$rc

faults-cluster: install
	$(BIN)/creditwindow faults --cluster

bench-cluster: install
	$(BIN)/creditwindow bench --cluster

schemas: install
	$(BIN)/creditwindow schema export docs/schemas

# --- containers and deployment -------------------------------------------------------------------

images:
	bash deploy/images/build.sh

# The end-to-end suite with Kafka and Redis from testcontainers (whatever endpoints the shell has).
test-containers: install
	env -u KAFKA_BOOTSTRAP_SERVERS -u REDIS_URL CW_TEST_ENDPOINTS=containers $(BIN)/python -m pytest -ra -m e2e $(PYTEST_ARGS)

compose-check: install
	CW_COMPOSE_CHECK=1 $(BIN)/python -m pytest -ra -s -m compose $(PYTEST_ARGS)

compose-up:
	$(COMPOSE) up --detach --wait

compose-down:
	$(COMPOSE) down

k8s-check:
	bash deploy/k8s/validate.sh

rules-check:
	bash deploy/prometheus/check.sh

deploy-check: k8s-check rules-check

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
