# Two commands do all the set-up on a fresh machine with Python 3.11 and pip:
#   make study   installs into .venv, runs the shampoo study on the embedded defaults and logs it to MLflow
#                (dvc repro track: fetch to compare, then track), then
#                puts its report together with the other studies' committed sections (dvc repro --single-item report)
#   make test    installs into .venv and runs the test suite
PYTHON ?= python3
# extras to install; CI adds cluster (the Slurm launcher, the team tracking server's packages)
EXTRAS ?= dev
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)

$(BIN)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e ".[$(EXTRAS)]"
	touch $@

.PHONY: install study test lint params
install: $(BIN)/.installed

study: install
	dvc repro track && dvc repro --single-item report

test: install
	pytest

lint: install
	ruff check pipeline tests

params: install
	python -m pipeline.params
