# The README's commands. `make test` runs every check and every test; it bootstraps .venv on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: test check lint typecheck layers unit integration browser bench up clean

test: check unit integration browser

check: lint typecheck layers

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python >= 3.11 is required")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $@

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

layers: $(STAMP)
	$(BIN)/lint-imports

# pytest exits 5 when it collects nothing; an empty suite is not a failure.
unit: $(STAMP)
	$(BIN)/pytest tests/unit; rc=$$?; [ $$rc -eq 0 ] || [ $$rc -eq 5 ]

# Real Kafka, Redis and FerretDB from ci/services.py (cached installs, free loopback ports, stopped afterwards).
# No `rc 5` pass here: an integration run that collects no test fails.
integration: $(STAMP)
	$(BIN)/python ci/services.py run -- $(BIN)/pytest -m integration tests/integration

# The dashboard in Debian's headless Chromium (installed by ci/chromium.sh when missing), against `skalds up`
# and an in-process Skalds with 1,000 tasks; screenshots go to artifacts/screenshots/ (the run prints where).
browser: $(STAMP)
	sh ci/chromium.sh
	$(BIN)/pytest -m browser tests/browser

BENCH_SCRIPTS := bench/dispatch_and_monitor.py bench/worker_latency.py bench/api_load.py bench/redis_heartbeats.py bench/kafka_latency.py bench/mongo_transitions.py bench/monitor_real_services.py bench/operator_scenario.py bench/throughput.py bench/chatty_task.py

# One set of real services for every bench script (those that need none ignore them).
bench: $(STAMP)
	$(BIN)/python ci/services.py run -- sh -c 'for script in $(BENCH_SCRIPTS); do echo "== $$script"; $(BIN)/python "$$script" || exit 1; done'

# The README's run command: everything in one process, in memory (PORT=8000 unless given).
up: $(STAMP)
	$(BIN)/skalds up --port $(or $(PORT),8000)

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis
