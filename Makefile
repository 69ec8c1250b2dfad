# Two entry points: `make repro` (set up if needed, then `dvc repro` on the default profile) and
# `make test`. Both create .venv on first use; pip takes torch/torchvision from the pinned versions.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(abspath $(BIN)):$(PATH)
export DVC_NO_ANALYTICS := 1

.PHONY: repro test env clean-outputs

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
