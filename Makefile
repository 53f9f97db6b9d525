# EstateHub developer entry points. Everything runs from a local virtualenv in .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/estatehub demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	deploy/ensure-services.sh
	$(BIN)/pytest -q

bench: $(STAMP)
	deploy/ensure-services.sh
	$(BIN)/python -m tests.bench.run_all

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis bench-results
