# chronon-airflow: `make demo` runs the main job, `make test` runs lint and the whole suite.
# Both create .venv and install the package on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install system-deps lint test test-fast demo demo-distributed demo-stop bench clean

# The dev install is pinned by the constraints file of the Airflow release it tests (see README
# "Installing in production"), so a fresh machine resolves exactly what was tested.
CONSTRAINTS ?= constraints/airflow-3.3.txt

$(STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -U pip
	$(BIN)/pip install -q -e '.[dev]' -c $(CONSTRAINTS)
	touch $(STAMP)

install: $(STAMP)

# The browser checks need Debian's Chromium, the compose check Debian's docker-compose and the
# distributed topology (make demo-distributed, tests/e2e/test_distributed.py) Debian's redis-server
# (PostgreSQL 15 comes with the machine): installed here when missing (root or sudo), so
# `make test` alone goes from clone to green.
system-deps:
	@if [ ! -x /usr/bin/chromium ] || ! command -v docker-compose >/dev/null 2>&1 || [ ! -x /usr/bin/redis-server ]; then \
	  SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q chromium docker-compose redis-server \
	    || echo "could not install chromium/docker-compose/redis-server: the browser, compose and distributed checks will say so"; \
	fi

# ruff and mypy, configured in pyproject.toml ([tool.ruff], [tool.mypy]); pinned by the [dev] extra.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

test: $(STAMP) system-deps lint
	$(BIN)/pytest

# The unit tier alone (tests/unit, about 30 s on 2 cores): no Spark, no Airflow stack, no browser, no
# wheel build. Tests that need any of those carry the spark/e2e/browser/slow markers and stay out.
test-fast: $(STAMP)
	$(BIN)/pytest tests/unit -q -m "not spark and not e2e and not browser and not slow"

# Starts the local stack (Airflow api-server, scheduler, dag-processor, triggerer; reference model
# backend, SMTP sink) in .chronon/demo, runs the sample join and its chained GroupBy, prints the
# summary and leaves the stack running. DEMO_ARGS passes options, e.g.
# `make demo DEMO_ARGS=--fail-batch-job` (a batch job fails once; the task's retry recovers).
demo: $(STAMP)
	$(BIN)/python -m chronon_demo run $(DEMO_ARGS)

# The same main job on the distributed topology (chronon_demo/distributed.py): CeleryExecutor on
# Redis with one worker per queue, PostgreSQL, a Spark standalone cluster; all on loopback.
demo-distributed: $(STAMP) system-deps
	$(BIN)/python -m chronon_demo run --distributed

# Stops exactly the processes `make demo` or `make demo-distributed` started (PIDs in .chronon/demo/stack.json).
demo-stop:
	@if [ -x $(BIN)/python ]; then $(BIN)/python -m chronon_demo stop; else echo 'no .venv: nothing to stop'; fi

# Scale benchmark (issue 7; not part of `make test`): generates a 2,000-join repo and prints P1-P4.
# BENCH_ARGS passes options, e.g. `make bench BENCH_ARGS="--parts 4 --concurrency 32"`.
bench: $(STAMP)
	$(BIN)/python -m chronon_bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .chronon .pytest_cache .mypy_cache .ruff_cache
