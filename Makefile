# Two entry points: `make repro` (set up if needed, then `dvc repro` on the default profile) and
# `make test`. Both create .venv on first use; pip takes torch/torchvision from the pinned versions.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(abspath $(BIN)):$(PATH)
export DVC_NO_ANALYTICS := 1

.PHONY: repro test fast-test verify scores env clean-outputs claims-seeds

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

# The fast tier while working (about 2 minutes): everything but the end-to-end DVC runs.
fast-test: env
	$(BIN)/python -m pytest -q -m "not slow"

# The reviewer's command: the committed HEAD rebuilt from scratch in a temporary clone (as long as
# `make repro` from nothing), compared output by output; reports/verify.md, ending in one verdict line.
# VERIFY_ARGS=--workspace rebuilds this workspace instead (dvc repro --force).
verify: env
	$(BIN)/python stages/verify.py $(VERIFY_ARGS)

# The pipeline for seeds 0, 1 and 2 as DVC experiments, then reports/claims-seeds.md: how often each
# of the papers' findings holds, with the commit, numerics and a fingerprint of the code and params the
# runs used (a seed already run for the same code and params is reused); `dvc repro report` then says
# in reports/README.md and claims.md whether the page is current.
claims-seeds: env
	python stages/claims_seeds.py --seeds 0 1 2
	dvc repro report

# Every net's headline scores, one line per net and split (`dvc metrics show` prints them 900 columns wide).
scores: env
	python stages/scores.py
