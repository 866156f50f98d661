# Everything a newcomer needs: `make demo` and `make test` each build .venv from nothing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
N      ?= 1000000
PARTITION_N ?= 10000000
WORKERS ?= 2

.PHONY: demo test lint fmt typecheck docs bench databases screenshot clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)  ## make the SQLite demo database and print its plan
	$(BIN)/gdpr-sweep demo

test: lint typecheck  ## ruff, ruff format --check, mypy, then the tests (PostgreSQL/MariaDB if their URLs are set)
	$(BIN)/python -m pytest -n $(WORKERS)

lint: $(STAMP)  ## what CI refuses: lint errors and unformatted files (`make fmt` fixes most)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: $(STAMP)
	$(BIN)/mypy gdpr_sweep

docs: $(STAMP)  ## docs/cli.md, the CLI reference, from every command's --help (a test checks it)
	$(BIN)/python -m gdpr_sweep.cli.reference > docs/cli.md

bench: $(STAMP)  ## gdpr-sweep vs hand-written SQL on every reachable engine (N rows); 100 tenants; partitions (PARTITION_N rows, PostgreSQL)
	$(BIN)/python bench/bench.py --rows $(N)
	$(BIN)/python bench/erase_bench.py --rows $(N)
	$(BIN)/python bench/tenants_bench.py
	$(BIN)/python bench/partition_bench.py --rows $(PARTITION_N)

screenshot: $(STAMP)  ## docs/report-demo.png: the demo's `gdpr-sweep report` in headless chromium
	$(BIN)/python docs/screenshots/make-report-screenshot.py

databases:  ## start local PostgreSQL and MariaDB test servers (as root)
	bash .ci/start-databases

clean:
	rm -rf $(VENV) gdpr-sweep-demo .pytest_cache .ruff_cache .mypy_cache .hypothesis
