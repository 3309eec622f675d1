# Fresh machine to running product in one command. Targets re-run fast: the virtual environment
# is only (re)installed when requirements.txt, setup.py, setup.cfg or package.xml change.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DIR ?= out/demo

.PHONY: setup demo test bench clean

setup: $(STAMP)

$(STAMP): requirements.txt setup.py setup.cfg package.xml
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: set PYTHON=python3.X (3.10-3.12)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check torch==2.13.0
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

# The main job. Until a trained model ships with it (the next step; docs/benchmarks.md),
# it records the bundled sample drive and says what it wrote. It owns $(DEMO_DIR) and regenerates it on every run.
demo: setup
	rm -rf $(DEMO_DIR)
	$(BIN)/hybrid-depth sample $(DEMO_DIR)/sample_drive --frames 50 --seed 0

test: setup
	$(BIN)/python -m pytest -q

# Speed figures recorded in docs/benchmarks.md.
bench: setup
	$(BIN)/python benchmarks/render.py --width 640 --height 192
	$(BIN)/hybrid-depth profile --width 640 --height 192

clean:
	rm -rf $(VENV) build install log out *.egg-info
