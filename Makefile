# Two commands do the whole set-up on a fresh machine:
#   make demo   - virtualenv + install + the default job (short SRMT training + evaluation on Bottleneck)
#   make test   - virtualenv + install + the test suite, lint (ruff) and type check (mypy on srmt/)
# TORCH picks the torch wheel: the default is the CPU build used in CI; on a GPU box use `make TORCH=torch demo`.
PYTHON ?= python3
VENV   ?= .venv
TORCH  ?= torch==2.13.0
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: venv demo demo-check test lint format clean

# pogema-toolbox's own loader reads our result folders in tests; --no-deps keeps wandb 0.18 (its pin is <= 0.13.4)
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -e ".[dev,dask,fast]"
	$(BIN)/python -m pip install -q --no-deps "pogema-toolbox==0.1.1"
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/srmt demo

# the default job as a check: exit code 1 unless the trained CSR is >= 0.9 at every test length
demo-check: $(STAMP)
	$(BIN)/srmt demo --min-csr 0.9

test: $(STAMP)
	$(BIN)/python -m pytest
	$(BIN)/ruff check .
	$(BIN)/mypy

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) train_dir results .pytest_cache .ruff_cache
