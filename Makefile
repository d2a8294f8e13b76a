# The README's two commands: `make demo` (set up, then segment the bundled T1) and `make test`.
PY ?= python3
PIP = $(PY) -m pip install -q --disable-pip-version-check

.PHONY: setup setup-test demo test

# torch first, pinned, so pip does not pull a multi-GB CUDA build where a CPU build is at hand.
setup:
	$(PY) -c "import torch" 2>/dev/null || $(PIP) torch==2.13.0
	$(PIP) -e ".[demo]"

# The Triton kernel is tested on the CPU through Triton's interpreter; 3.6.0 is the version checked
# (and the one on the GPU machines), so a machine without Triton gets that one.
setup-test: setup
	$(PIP) -e ".[test,slicer-test]"
	$(PY) -c "import triton" 2>/dev/null || $(PIP) triton==3.6.0

demo: setup
	$(PY) -m medsegmamba.cli demo -o demo_out --overwrite

test: setup-test
	$(PY) -m pytest -q Testing
