# The two commands: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench lint clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/demo.py

# ruff first (seconds), then the suite (which checks the 800-line budget: tests/test_line_budget.py)
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

# reruns the benchmark behind each README table marked <!-- bench:NAME command --> and rewrites the table
# (benchmarks/readme_tables.py; --check validates them in seconds), then prints the others' figures
bench: $(STAMP)
	$(BIN)/python benchmarks/readme_tables.py
	$(BIN)/python benchmarks/sim_speed.py
	$(BIN)/python benchmarks/kernel_perf.py
	$(BIN)/python benchmarks/wallclock.py

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) build *.egg-info
