# Two entry points, each a single command on a fresh machine:
#   make example   set up .venv and run the example acceptance suite
#   make test      set up .venv and run the project's own tests
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXAMPLE_MODEL ?= example_suite/models/kp-tiny-mod/kpmodel.toml

.PHONY: example test lint setup browser

setup: $(STAMP)

$(STAMP): pyproject.toml requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt -e .
	touch $(STAMP)

example: $(STAMP)
	$(BIN)/python -m pytest --kp-model=$(EXAMPLE_MODEL) example_suite/

# The HTML report's browser check needs Chromium: installed from Debian where this runs as root
# with apt-get (CI); elsewhere the check skips with its reason.
browser:
	@if ! command -v chromium >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing Debian's chromium for the report's browser check"; \
		apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
		|| echo "chromium could not be installed: the browser check will skip"; \
	fi

test: $(STAMP) browser
	$(BIN)/ruff check pytest_kpmodel tests benchmarks tools example_suite
	$(BIN)/ruff format --check pytest_kpmodel tests benchmarks tools example_suite
	$(BIN)/python -m pytest tests -n 2

lint: $(STAMP)
	$(BIN)/ruff check --fix pytest_kpmodel tests benchmarks tools example_suite
	$(BIN)/ruff format pytest_kpmodel tests benchmarks tools example_suite
