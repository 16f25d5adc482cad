# The two commands of the README:
#   make run    start the pool on this machine (installs what it needs first)
#   make test   ruff and the whole test suite (installs what it needs first)
#   make test-openstack   only the tests inside Nova's functional framework
#   make test-vm   only the KVM guest tests, the QEMU end-to-end test among them
# Both work on a fresh Debian machine as root: Debian packages are installed
# only when missing, Python packages go into .venv.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
OPENSTACK_INSTALLED := $(VENV)/.installed-openstack
LIBVIRT_INSTALLED := $(VENV)/.installed-libvirt
STATE_DIR ?= $(CURDIR)/state
PYTEST_ARGS ?=

.PHONY: run test test-openstack test-vm lint sample venv clean libcuda

$(INSTALLED): setup.cfg setup.py constraints.txt
	sh tools/install-debian-packages.sh base
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[test]'
	touch $@

venv: $(INSTALLED)

# The C client library (libcuda.so.1, docs/libcuda.md). The install builds
# it too; this rebuilds it when its sources changed since.
LIBCUDA := guest_runtime/lib/libcuda.so.1
LIBCUDA_SOURCES := $(wildcard guest_runtime/libcuda/src/*.[ch] guest_runtime/libcuda/generated/* \
	guest_runtime/libcuda/include/orionx/*.h) guest_runtime/libcuda/build.py

$(LIBCUDA): $(INSTALLED) $(LIBCUDA_SOURCES)
	$(BIN)/python guest_runtime/libcuda/build.py

libcuda: $(LIBCUDA)

# A second release of NVIDIA's cuda-bindings, the 12.9 line, beside the 13.x
# one in the venv: the C library is tested under both (tests/libcuda). One
# constraints file pins one version per package, so this one has its own; it
# goes into a directory of its own that the tests put first on PYTHONPATH.
CUDA_BINDINGS_12 := $(VENV)/cuda-bindings-12
CUDA_BINDINGS_12_INSTALLED := $(CUDA_BINDINGS_12)/.installed

$(CUDA_BINDINGS_12_INSTALLED): $(INSTALLED) constraints-cuda-bindings-12.txt
	rm -rf $(CUDA_BINDINGS_12)
	$(BIN)/python -m pip install -q --no-deps --target $(CUDA_BINDINGS_12) \
		-r constraints-cuda-bindings-12.txt
	touch $@

# Placement and Nova (with its functional test framework) for the OpenStack
# tests; kept out of the base install that `make run` needs.
$(OPENSTACK_INSTALLED): $(INSTALLED)
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[test,openstack-test]'
	touch $@

# libvirt-python builds against the libvirt headers (a test Debian package).
$(LIBVIRT_INSTALLED): $(INSTALLED)
	sh tools/install-debian-packages.sh test
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[test,libvirt-test]'
	touch $@

DEV_CONFIG := --config-file etc/orionx/orionx-dev.conf --config-file $(STATE_DIR)/secret.conf \
	--state-dir $(STATE_DIR)

# The all-in-one pool on this machine with the demo; it keeps running after
# the demo until Ctrl-C. DEMO_ARGS=--exit-after-demo stops it after the demo
# (tests and CI); SIM_GPUS sets the simulated GPUs where NVML finds none.
SIM_GPUS ?= 1x16384
DEMO_ARGS ?=

run: $(INSTALLED) $(STATE_DIR)/secret.conf
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/orionx-allinone $(DEV_CONFIG) \
		--sim-gpus $(SIM_GPUS) --demo $(DEMO_ARGS)

# The session-token secret of this machine's development pool: made once,
# readable by its owner only, never committed.
$(STATE_DIR)/secret.conf:
	mkdir -p $(STATE_DIR)
	umask 077; printf '[DEFAULT]\nsession_secret = %s\n' \
		"$$($(PYTHON) -c 'import secrets; print(secrets.token_hex(32))')" > $@

test: $(INSTALLED) $(OPENSTACK_INSTALLED) $(LIBVIRT_INSTALLED) $(LIBCUDA) \
		$(CUDA_BINDINGS_12_INSTALLED)
	sh tools/install-debian-packages.sh test
	$(BIN)/ruff check .
	ORIONX_TEST_CUDA_BINDINGS_12=$(CURDIR)/$(CUDA_BINDINGS_12) $(BIN)/python -m pytest $(PYTEST_ARGS)
	$(MAKE) test-openstack

# Nova's functional framework cannot share a process with the controller's
# configuration (tests/nova_functional/conftest.py), so it runs alone.
test-openstack: $(OPENSTACK_INSTALLED)
	$(BIN)/python -m pytest $(PYTEST_ARGS) tests/nova_functional

# KVM guests through libvirt; `make test` runs them too (they are under tests/).
# The end-to-end test starts its own libvirtd and a QEMU guest (a few minutes).
test-vm: $(LIBVIRT_INSTALLED)
	$(BIN)/python -m pytest $(PYTEST_ARGS) tests/vm tests/vm_e2e

lint: $(INSTALLED)
	$(BIN)/ruff check .

# Regenerate what is generated after changing options, policies or the
# protocol table (samples, docs/protocol.md's op table, the C library's
# generated files); tests fail while any of them is stale.
sample: $(INSTALLED)
	$(BIN)/oslo-config-generator --config-file etc/orionx/orionx-config-generator.conf
	$(BIN)/oslopolicy-sample-generator --config-file etc/orionx/orionx-policy-generator.conf
	$(BIN)/python -m tools.protocol_doc
	$(BIN)/python tools/gen_libcuda.py

clean:
	rm -rf $(VENV) state .pytest_cache .ruff_cache
