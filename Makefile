# Two commands a fresh machine needs (Python 3.11 and pip only):
#   make demo   - create .venv if missing, install the pinned requirements, run the offline demo DAG
#   make test   - create .venv if missing, run the test suite
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt pyproject.toml | cksum | cut -d' ' -f1)
# Rules call `mmjsd`, `snakemake` and `dvc` by name: put the venv first on PATH for every recipe.
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: install demo demo-report test verify paper dryrun lint dvc-demo dvc-remote bench clean-demo

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found -- fix: install Python 3.11 or run 'make PYTHON=/path/to/python3.11 ...'"; exit 2; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP)

demo: $(STAMP)
	snakemake all --config scale=demo

demo-report: $(STAMP)
	snakemake --report results/demo/report.html --config scale=demo

# Test files run in TEST_WORKERS processes (pytest-xdist), each file whole in one process: a module's
# shared pipeline run stays in one place. CI's 2 cores: 2.
TEST_WORKERS ?= 2
test: $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

# Re-check every committed repro number from its weights (src/mmjsd/pipeline/verify.py): one line per run and table.
verify: $(STAMP)
	mmjsd --scale repro verify

paper: $(STAMP)
	snakemake all --cores 8 --resources gpu=2

dryrun: $(STAMP)
	snakemake -n all

lint: $(STAMP)
	$(BIN)/python workflow/lint.py

dvc-demo: $(STAMP)
	dvc repro

# The default DVC remote: a folder outside the checkout (override: make dvc-remote DVC_REMOTE=/path).
# Written to .dvc/config.local (not committed), so each machine names its own folder.
DVC_REMOTE ?= $(abspath $(CURDIR)/../mmjsd-dvc-remote)
dvc-remote: $(STAMP)
	mkdir -p "$(DVC_REMOTE)"
	dvc remote add --local --default --force local "$(DVC_REMOTE)"
	@echo "DVC remote 'local' -> $(DVC_REMOTE): dvc push (after dvc repro) / dvc pull (in another clone)"

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_render.py
	$(BIN)/python benchmarks/bench_models.py
	$(BIN)/python benchmarks/bench_train.py

clean-demo:
	rm -rf data/demo results/demo logs/demo
