# Every target creates the virtualenv it needs when it is missing.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: demo test lint bench fuzz soak cluster-fault clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)  ## ccrouter + the PBX simulator: a day in DURATION seconds (default 300); DEMO_ARGS=... for more
	$(BIN)/ccrouter demo $(if $(DURATION),--duration $(DURATION),) $(DEMO_ARGS)

test: $(STAMP)
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check ccrouter tests
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(STAMP)  ## every benchmark: says how long at the start, then progress with an ETA
	$(BIN)/python -m bench

fuzz: $(STAMP)  ## every fuzz property with 10 000 generated cases (FUZZ_EXAMPLES=N to change)
	$(BIN)/python -m fuzz $(or $(FUZZ_EXAMPLES),10000)

soak: $(STAMP)  ## the simulator at 50 calls/s against ccrouter for DURATION seconds (default 3600)
	$(BIN)/python -m bench.soak --duration $(or $(DURATION),3600)

cluster-fault: $(STAMP)  ## 2 nodes, 3 instances, PostgreSQL: SIGKILL the lease holders at 50 calls/s for 60 s (RATE=, DURATION=)
	CCROUTER_CLUSTER_RATE=$(or $(RATE),50) CCROUTER_CLUSTER_S=$(or $(DURATION),60) \
		$(BIN)/pytest -p no:cacheprovider -q -s -o log_cli=false tests/test_cluster_fault.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
