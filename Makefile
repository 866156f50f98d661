# Everything a newcomer needs: `make demo` and `make test` each build .venv from nothing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
N      ?= 1000000
PARTITION_N ?= 10000000
WORKERS ?= 2

.PHONY: demo test lint fmt typecheck docs bench bench-tools databases screenshot clean

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

comma := ,

bench: $(STAMP) bench-tools  ## gdpr-sweep vs hand-written SQL and pt-archiver on every reachable engine (N rows, or N=1000000,10000000); 100 tenants; partitions (PARTITION_N rows, PostgreSQL)
	$(BIN)/python bench/bench.py --rows $(N) $(BENCH_ARGS)
	$(BIN)/python bench/erase_bench.py --rows $(firstword $(subst $(comma), ,$(N)))
	$(BIN)/python bench/tenants_bench.py
	$(BIN)/python bench/partition_bench.py --rows $(PARTITION_N)

bench-tools:  # pt-archiver for the MariaDB comparison: installed when missing if root, else a hint
	@command -v pt-archiver >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get install -y percona-toolkit || echo "bench: could not install percona-toolkit; pt-archiver is skipped"; \
	  else \
	    echo "bench: pt-archiver missing, its MariaDB rows are skipped; install it with: apt-get install -y percona-toolkit"; \
	  fi; }

screenshot: $(STAMP)  ## docs/report-demo.png: the demo's `gdpr-sweep report` in headless chromium
	$(BIN)/python docs/screenshots/make-report-screenshot.py

databases:  ## start local PostgreSQL and MariaDB test servers (as root)
	bash .ci/start-databases

clean:
	rm -rf $(VENV) gdpr-sweep-demo .pytest_cache .ruff_cache .mypy_cache .hypothesis
