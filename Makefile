# chronon-airflow: `make demo` runs the main job, `make test` runs the whole suite.
# Both create .venv and install the package on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test demo demo-stop bench lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -U pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/pytest

demo: $(STAMP)
	$(BIN)/chronon-airflow plan

clean:
	rm -rf $(VENV) .chronon .pytest_cache
