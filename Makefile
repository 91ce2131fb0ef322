# fmnist: `make train` runs the whole tutorial workflow, `make test` is what CI runs.
# `make setup` installs what is missing (Debian/Ubuntu) and is safe to run again.

CARGO ?= cargo
# The binary cargo builds, wherever CARGO_TARGET_DIR puts it.
FMNIST := $(or $(CARGO_TARGET_DIR),target)/release/fmnist
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Mesa prints a harmless XDG_RUNTIME_DIR warning when no session directory exists; give it a private one.
export XDG_RUNTIME_DIR ?= $(shell d=/tmp/fmnist-xdg-$$(id -u); mkdir -p -m 700 $$d; echo $$d)

.PHONY: setup onnxruntime build train test lint shaders wasm web web-build web-tools web-test bench clean-runs

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
	$(CARGO) clippy --workspace --release --all-targets -- -D warnings

# The library also compiles for the browser (wasm32-unknown-unknown, wgpu's WebGPU backend), whose
# target rustup installs when it is missing; without rustup this says so and passes, except in CI.
wasm:
	@if ! rustup target list --installed 2>/dev/null | grep -q '^wasm32-unknown-unknown$$'; then \
	  if command -v rustup >/dev/null 2>&1; then rustup target add wasm32-unknown-unknown; \
	  elif [ -n "$${CI:-}" ]; then echo "wasm: no rustup to install wasm32-unknown-unknown"; exit 1; \
	  else echo "wasm: skipped: no rustup to install wasm32-unknown-unknown"; exit 0; fi; fi; \
	$(CARGO) check --lib --target wasm32-unknown-unknown && \
	$(CARGO) clippy -p fmnist-web --all-targets --target wasm32-unknown-unknown -- -D warnings

# The page (web/): the library compiled to WebAssembly by cargo, bound to JavaScript by wasm-bindgen
# (the CLI of the same version as the wasm-bindgen crate in Cargo.lock, installed with cargo when
# missing), the dataset linked beside it; `make web` then serves it with Python's http.server on
# 127.0.0.1 (a secure context, which WebGPU requires).
WEB_PORT ?= 8000
WASM_TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)/wasm32-unknown-unknown/release
WASM_BINDGEN_VERSION := $(shell sed -n '/^name = "wasm-bindgen"$$/{n;s/version = "\(.*\)"/\1/p;}' Cargo.lock)

web-build: wasm
	@if [ "$$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $(WASM_BINDGEN_VERSION)" ]; then \
	  echo "web: installing wasm-bindgen-cli $(WASM_BINDGEN_VERSION) (matching Cargo.lock)"; \
	  $(CARGO) install --quiet wasm-bindgen-cli --version $(WASM_BINDGEN_VERSION); fi
	CARGO_PROFILE_RELEASE_DEBUG=false $(CARGO) build --release -p fmnist-web --target wasm32-unknown-unknown
	wasm-bindgen --target web --no-typescript --out-dir web/www/pkg $(WASM_TARGET_DIR)/fmnist_web.wasm
	@$(CARGO) build --release --quiet
	@mkdir -p web/www/data; \
	if dir=$$($(FMNIST) info --data-dir-only 2>/dev/null); then \
	  for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do \
	    if [ -e "$$dir/$$f.gz" ]; then ln -sf "$$(cd "$$dir" && pwd)/$$f.gz" web/www/data/; \
	    else gzip -c "$$dir/$$f" > web/www/data/$$f.gz; fi; done; \
	  echo "web: the dataset from $$dir is served as web/www/data/"; \
	else echo "web: no dataset found (make setup installs it); the page can still read the files from disk"; fi

web: web-build
	@echo "web: open http://127.0.0.1:$(WEB_PORT)/ in a browser with WebGPU (Ctrl-C stops the server)"
	python3 -m http.server $(WEB_PORT) --bind 127.0.0.1 --directory web/www

# What the browser tests need: Chromium and its driver (Debian's), the wasm-bindgen test runner, and
# puppeteer-core from npm. Installed when CI=true; elsewhere their absence skips the tests, saying so.
WEB_TOOLS_MISSING = $(strip $(if $(wildcard /usr/bin/chromium),,chromium) $(if $(wildcard /usr/bin/chromedriver),,chromium-driver) \
  $(if $(shell command -v npm),,npm))
web-tools:
	@missing="$(WEB_TOOLS_MISSING)"; \
	if [ -n "$$missing" ]; then \
	  if [ -z "$${CI:-}" ]; then echo "web tests: skipped: missing $$missing (apt-get install chromium chromium-driver npm)"; exit 0; fi; \
	  echo "web: installing $$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; fi

# The kernel selftest inside headless Chromium (web/tests/selftest.rs), then the page end to end
# (web/e2e/train.mjs): one epoch on the served data, the model checked by the CLI.
web-test: web-tools
	@if [ -n "$(WEB_TOOLS_MISSING)" ] && [ -z "$${CI:-}" ]; then exit 0; fi; \
	$(MAKE) --no-print-directory web-build && \
	cd web && CHROMEDRIVER=/usr/bin/chromedriver WASM_BINDGEN_TEST_TIMEOUT=1200 CARGO_PROFILE_RELEASE_DEBUG=false \
	  $(CARGO) test --release --target wasm32-unknown-unknown --test selftest -- --nocapture && \
	cd e2e && npm ci --no-audit --no-fund --silent && \
	FMNIST=$(abspath $(FMNIST)) E2E_OUT=$${E2E_OUT:-out} node train.mjs

# GPU tests fail instead of skipping when no adapter is found: CI has lavapipe.
test: setup lint shaders wasm
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
	  FMNIST_REQUIRE_GPU=1 $(CARGO) nextest run --workspace --release --no-fail-fast; \
	else FMNIST_REQUIRE_GPU=1 $(CARGO) test --workspace --release --no-fail-fast; fi
	@$(MAKE) --no-print-directory web-test

bench:
	$(CARGO) bench

clean-runs:
	rm -rf runs
