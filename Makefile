# `make run`: set up .venv and run the default workflow (config/config.yaml).  `make test`: set up .venv and run the tests.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1

.PHONY: setup run test bench clean

$(BIN)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,local]'
	touch $@

setup: $(BIN)/.installed

run: setup
	$(BIN)/snakemake --cores all

bench: setup
	$(BIN)/adaptive-retention bench --repeats 3 --out results/efficiency-cpu/throughput.tsv

test: setup
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
