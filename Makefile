# Two commands on a fresh machine: `make demo` (main job) and `make test` (whole suite).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Offline data root: the shared copy beside the checkout when it exists; otherwise torchvision downloads.
SHARED_DATA := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))../shared/data)
RKHSREG_DATA ?= $(if $(wildcard $(SHARED_DATA)),$(SHARED_DATA),$(CURDIR)/data)
export RKHSREG_DATA
STAMP := $(VENV)/.installed
DOCS_STAMP := $(VENV)/.installed-docs

.PHONY: install demo test bench docs clean

$(STAMP): pyproject.toml plugins/rkhsreg-logit-squeezing/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# torch/torchvision from this machine's disk (pip's configuration caps them at these versions)
	$(PY) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -q -e ".[lightning,eval,models,data,test]" -e plugins/rkhsreg-logit-squeezing
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(PY) recipes/mnist_small_data/demo.py --data-dir "$(RKHSREG_DATA)" --out results/demo

test: install
	$(PY) -m pytest -q

# every benchmark, then every generated table of the docs from their results (benchmarks/docs_tables.py)
bench: install
	OMP_NUM_THREADS=1 $(PY) -m benchmarks --threads 1 --data-dir "$(RKHSREG_DATA)"
	$(PY) -m benchmarks.docs_tables

# The documentation site (mkdocs.yml): any warning fails the build; written to site/.
$(DOCS_STAMP): $(STAMP)
	$(PY) -m pip install -q -e ".[docs]"
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	$(VENV)/bin/mkdocs build --strict -d site

clean:
	rm -rf $(VENV) results .pytest_cache site
