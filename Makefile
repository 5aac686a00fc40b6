# Two commands on a fresh machine: `make demo` and `make test`.
# Each creates or updates the virtual environment it needs.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean chromium

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev,demo]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/pepper run examples/docsite/workflow.yaml --db examples/docsite/output/pepper.db --gantt examples/docsite/output/run.png

test: $(STAMP) lint chromium
	$(BIN)/python -m pytest -q tests; status=$$?; \
	if [ $$status -eq 5 ]; then echo "no tests were collected"; exit 0; fi; exit $$status

# The browser tests drive Debian's Chromium (Playwright cannot download a browser here): installed when missing
# and possible (root with apt), else they are skipped and the test run says so in its last line.
chromium:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Debian's chromium for the browser tests"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null || (apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null) \
			|| echo "could not install chromium: the browser tests will be skipped"; \
	else echo "no /usr/bin/chromium and no way to install it (needs root and apt): the browser tests will be skipped"; fi

lint: $(STAMP)
	$(BIN)/ruff check pepper tests benchmarks examples
	$(BIN)/ruff format --check pepper tests benchmarks examples
	$(BIN)/lint-imports
	$(BIN)/mypy pepper

bench: $(STAMP) chromium
	$(BIN)/python benchmarks/throughput.py
	$(BIN)/python benchmarks/selection.py
	$(BIN)/python benchmarks/command_agents.py
	$(BIN)/python benchmarks/agent_scaling.py
	$(BIN)/python benchmarks/startup.py
	$(BIN)/python benchmarks/million.py --tasks 100000
	$(BIN)/python benchmarks/checkpoints.py
	$(BIN)/python benchmarks/metrics_overhead.py
	$(BIN)/python benchmarks/planning.py
	@if [ -x /usr/bin/chromium ]; then $(BIN)/python benchmarks/dashboard.py; \
	else echo "benchmarks/dashboard.py skipped: it needs Chromium at /usr/bin/chromium"; fi

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .import_linter_cache .mypy_cache examples/docsite/output
