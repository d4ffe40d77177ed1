# The two commands of the README: `make demo` (set up, then the whole pipeline on the sample class)
# and `make test` (set up, then the test suite). Set-up is idempotent and installs into .venv/.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(abspath $(BIN)):$(PATH)
# the offline data copy beside the repository, when there is one (students and real courses set their own)
export EEP590_DATA ?= $(if $(wildcard ../shared/data),$(abspath ../shared/data),)

.PHONY: setup demo test test-fast
setup: $(VENV)/.installed

# torch first and pinned: the CPU wheels on the course machines (an unpinned torch downloads gigabytes)
$(VENV)/.installed: pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install --quiet -e '.[dev]'
	@command -v bwrap >/dev/null || echo "WARNING: bubblewrap is not installed: autograding will run student code UNSANDBOXED (apt-get install bubblewrap)"
	touch $@

demo: setup
	$(BIN)/eep590 demo

test: setup
	$(BIN)/python -m pytest -n 2 --dist loadfile

# contributors' loop: everything but the tests marked slow (notebooks graded, clusters, browsers)
test-fast: setup
	$(BIN)/python -m pytest -n 2 --dist loadfile -m "not slow"
