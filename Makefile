# Two entry points: `make repro` (set up if needed, then `dvc repro` on the default profile) and
# `make test`. Both create .venv on first use; pip takes torch/torchvision from the pinned versions.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(abspath $(BIN)):$(PATH)
export DVC_NO_ANALYTICS := 1

.PHONY: repro test env clean-outputs claims-seeds

$(BIN)/dvc: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

env: $(BIN)/dvc

repro: env
	dvc repro

test: env
	$(BIN)/python -m pytest -q

# The pipeline for seeds 0, 1 and 2 as DVC experiments, then reports/claims-seeds.md: how often each
# of the papers' findings holds (segcore/report/claims.py). A seed already run for this commit is reused.
claims-seeds: env
	python stages/claims_seeds.py --seeds 0 1 2
