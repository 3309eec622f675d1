# Fresh machine to running product in one command. Targets re-run fast: the virtual environment
# is only (re)installed when requirements.txt, setup.py, setup.cfg or package.xml change.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DIR ?= out/demo
MODEL ?= models/hybrid_synthetic.pt

.PHONY: setup demo test bench clean

setup: $(STAMP)

$(STAMP): requirements.txt setup.py setup.cfg package.xml
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: set PYTHON=python3.X (3.10-3.12)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check torch==2.13.0
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

# The main job: the depth node with the shipped model on the sample drive, over ROS 2
# (hybrid_depth_ros/demo.py). It owns $(DEMO_DIR) and regenerates it on every run.
demo: setup
	rm -rf $(DEMO_DIR)
	$(BIN)/hybrid-depth demo --out $(DEMO_DIR)

test: setup
	$(BIN)/python -m pytest -q

# Speed figures recorded in docs/benchmarks.md (inference on the GPU too when there is one).
bench: setup
	$(BIN)/python benchmarks/render.py --width 640 --height 192
	$(BIN)/hybrid-depth profile --width 640 --height 192
	$(BIN)/python benchmarks/training_step.py
	$(BIN)/hybrid-depth bench --device cpu --width 640 --height 192
	$(BIN)/hybrid-depth bench --device cpu --width 640 --height 192 --pose-downsample 2 \
		--compile --checkpoint $(MODEL)
	if $(BIN)/python -c "import torch, sys; sys.exit(not torch.cuda.is_available())"; then \
		$(BIN)/hybrid-depth bench --device cuda --width 640 --height 192 --pose-downsample 2 \
			--compile --checkpoint $(MODEL); fi
	$(BIN)/python benchmarks/node_latency.py --width 640 --height 192 --rate 0.3 --frames 30
	$(BIN)/python benchmarks/node_latency.py --width 640 --height 192 --rate 3
	$(BIN)/python benchmarks/node_latency.py --width 640 --height 192 --camera 640x480 --camera-fov 69 --rate 3

clean:
	rm -rf $(VENV) build install log out *.egg-info
