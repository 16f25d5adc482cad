# The two commands of the README:
#   make run    start the pool on this machine (installs what it needs first)
#   make test   ruff and the whole test suite (installs what it needs first)
# Both work on a fresh Debian machine as root: Debian packages are installed
# only when missing, Python packages go into .venv.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
STATE_DIR ?= $(CURDIR)/state
PYTEST_ARGS ?=

.PHONY: run test lint sample venv clean

$(INSTALLED): setup.cfg setup.py constraints.txt
	sh tools/install-debian-packages.sh base
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[test]'
	touch $@

venv: $(INSTALLED)

run: $(INSTALLED)
	$(BIN)/orionx-manage --config-file etc/orionx/orionx-dev.conf --state-dir $(STATE_DIR) db sync
	$(BIN)/orionx-api --config-file etc/orionx/orionx-dev.conf --state-dir $(STATE_DIR)

test: $(INSTALLED)
	sh tools/install-debian-packages.sh test
	$(BIN)/ruff check .
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(INSTALLED)
	$(BIN)/ruff check .

# Regenerate the samples after changing options or policies; tests fail
# while either is stale.
sample: $(INSTALLED)
	$(BIN)/oslo-config-generator --config-file etc/orionx/orionx-config-generator.conf
	$(BIN)/oslopolicy-sample-generator --config-file etc/orionx/orionx-policy-generator.conf

clean:
	rm -rf $(VENV) state .pytest_cache .ruff_cache
