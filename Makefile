# Two commands on a fresh machine: `make demo` and `make test`.
# Each creates or updates the virtual environment it needs.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev,demo]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/pepper run examples/docsite/workflow.yaml --db examples/docsite/output/pepper.db --gantt examples/docsite/output/run.png

test: $(STAMP) lint
	$(BIN)/python -m pytest -q tests; status=$$?; \
	if [ $$status -eq 5 ]; then echo "no tests were collected"; exit 0; fi; exit $$status

lint: $(STAMP)
	$(BIN)/ruff check pepper tests benchmarks examples
	$(BIN)/ruff format --check pepper tests benchmarks examples
	$(BIN)/lint-imports
	$(BIN)/mypy pepper

bench: $(STAMP)
	$(BIN)/python benchmarks/throughput.py
	$(BIN)/python benchmarks/selection.py
	$(BIN)/python benchmarks/metrics_overhead.py
	$(BIN)/python benchmarks/planning.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .import_linter_cache .mypy_cache examples/docsite/output
