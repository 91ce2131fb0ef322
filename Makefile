# fmnist: `make train` runs the whole tutorial workflow, `make test` is what CI runs.
# `make setup` installs what is missing (Debian/Ubuntu) and is safe to run again.

CARGO ?= cargo
# The binary cargo builds, wherever CARGO_TARGET_DIR puts it.
FMNIST := $(or $(CARGO_TARGET_DIR),target)/release/fmnist
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Mesa prints a harmless XDG_RUNTIME_DIR warning when no session directory exists; give it a private one.
export XDG_RUNTIME_DIR ?= $(shell d=/tmp/fmnist-xdg-$$(id -u); mkdir -p -m 700 $$d; echo $$d)

.PHONY: setup onnxruntime build train test lint shaders wasm bench clean-runs

# Installs the Debian packages that are missing: the dataset, and a software Vulkan driver (lavapipe)
# when no Vulkan driver is installed at all. Runs apt-get only when something is missing. Whether the
# data is there is asked of fmnist itself (`info --data-dir-only`), which searches every place it reads
# from ($$FMNIST_DATA, ./data, the Keras and torchvision folders, Debian's package).
setup:
	@$(CARGO) build --release --quiet
	@missing=""; \
	if dir=$$($(FMNIST) info --data-dir-only 2>/dev/null); then echo "setup: data found in $$dir"; \
	else missing="$$missing dataset-fashion-mnist"; fi; \
	if ! { ls /usr/share/vulkan/icd.d/*.json || ls /etc/vulkan/icd.d/*.json; } >/dev/null 2>&1 || ! ldconfig -p 2>/dev/null | grep -q 'libvulkan.so.1'; then \
	  missing="$$missing mesa-vulkan-drivers libvulkan1"; fi; \
	if [ -z "$$missing" ]; then echo "setup: nothing to install"; exit 0; fi; \
	if ! command -v apt-get >/dev/null 2>&1; then \
	  echo "setup: please install:$$missing (or download Fashion-MNIST into ./data/fashion-mnist and install a Vulkan driver)"; exit 1; fi; \
	echo "setup: installing$$missing"; \
	$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing
	@$(MAKE) --no-print-directory onnxruntime

# onnxruntime and numpy in a cached Python environment, for the ONNX export test (tests/onnx_export.rs)
# and the numpy float64 reference of the optimizers and dropout (tests/optimizer_parity.rs), which
# skip without it and fail in CI: ~/.cache/fmnist-onnx, from PyPI.
ONNX_VENV := $(HOME)/.cache/fmnist-onnx
onnxruntime:
	@if "$(ONNX_VENV)/bin/python" -c 'import onnxruntime, numpy' 2>/dev/null; then echo "setup: onnxruntime found in $(ONNX_VENV)"; \
	elif ! command -v python3 >/dev/null 2>&1; then echo "setup: no python3, so no onnxruntime: the ONNX export test will skip"; \
	else \
	  if ! python3 -c 'import ensurepip' 2>/dev/null && command -v apt-get >/dev/null 2>&1; then \
	    echo "setup: installing python3-venv"; \
	    $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq python3-venv; fi; \
	  rm -rf "$(ONNX_VENV)"; \
	  if python3 -m venv "$(ONNX_VENV)" && "$(ONNX_VENV)/bin/pip" install -q onnxruntime numpy; then \
	    echo "setup: onnxruntime installed in $(ONNX_VENV)"; \
	  else echo "setup: could not install onnxruntime into $(ONNX_VENV): the ONNX export test will skip (and fail in CI)"; fi; \
	fi

build:
	$(CARGO) build --release

# The tutorial end to end: train 10 epochs (evaluating the test set at the end), save the model and
# figures.
train: setup build
	$(FMNIST) train --out runs/tutorial
	$(FMNIST) predict --model runs/tutorial/model.safetensors --index 0 --index 12

shaders:
	@if command -v naga >/dev/null 2>&1; then for s in shaders/*.wgsl; do [ -e "$$s" ] || continue; naga "$$s" >/dev/null || exit 1; done; echo "shaders: naga validated shaders/*.wgsl"; \
	else echo "shaders: naga not on PATH; the tests validate them through wgpu"; fi

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --release --all-targets -- -D warnings

# The library also compiles for the browser (wasm32-unknown-unknown, wgpu's WebGPU backend), whose
# target rustup installs when it is missing; without rustup this says so and passes, except in CI.
wasm:
	@if ! rustup target list --installed 2>/dev/null | grep -q '^wasm32-unknown-unknown$$'; then \
	  if command -v rustup >/dev/null 2>&1; then rustup target add wasm32-unknown-unknown; \
	  elif [ -n "$${CI:-}" ]; then echo "wasm: no rustup to install wasm32-unknown-unknown"; exit 1; \
	  else echo "wasm: skipped: no rustup to install wasm32-unknown-unknown"; exit 0; fi; fi; \
	$(CARGO) check --lib --target wasm32-unknown-unknown

# GPU tests fail instead of skipping when no adapter is found: CI has lavapipe.
test: setup lint shaders wasm
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
	  FMNIST_REQUIRE_GPU=1 $(CARGO) nextest run --release --no-fail-fast; \
	else FMNIST_REQUIRE_GPU=1 $(CARGO) test --release --no-fail-fast; fi

bench:
	$(CARGO) bench

clean-runs:
	rm -rf runs
