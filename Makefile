# All set-up happens here: `make demo` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# Debian packages the demo and the browser test of the report need.
APT_PACKAGES := chromium dataset-fashion-mnist

.PHONY: test demo bench system-deps clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# Pinned: this version resolves to a local CPU build (an unpinned torch pulls CUDA).
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[test]'
	# Compile and cache the Numba kernels now rather than
	# on first use; should it fail, they still compile when first called.
	$(BIN)/softmaxreg compile --quiet || echo "softmaxreg compile failed: the kernels will compile on first use"
	touch $(STAMP)

# Installs the Debian packages when they are missing and we may (root, or passwordless sudo).
system-deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else \
	    echo "missing Debian packages:$$missing (install them as root: apt-get install$$missing)" >&2; exit 1; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

# Two xdist workers on two cores: one BLAS thread each, or they oversubscribe the machine.
# The kernel tests run a second time with the AVX-512 paths off (code generated for an AVX2 machine), so the
# path of a machine without AVX-512 is tested here too; that build has its own Numba cache.
KERNEL_TESTS := tests/test_functional_kernels.py tests/test_loss_fused.py tests/test_loss_fused_sgd.py

test: $(STAMP) system-deps
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python -m pytest -n 2 -p no:cacheprovider
	SOFTMAXREG_DISABLE_AVX512=1 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 \
	  $(BIN)/python -m pytest -n 2 -p no:cacheprovider -q $(KERNEL_TESTS)

demo: $(STAMP) system-deps
	$(BIN)/softmaxreg demo

bench: $(STAMP) system-deps
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
