# smtp.relay: the two commands are `make test` and `make demo`; everything they need is set up here.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

ROOT := $(CURDIR)
VENV := $(ROOT)/.venv
BIN := $(VENV)/bin
PYTHON_BOOT ?= python3
COLLECTIONS := $(ROOT)/.cache/collections
LINK := $(COLLECTIONS)/ansible_collections/smtp/relay
COPY_ROOT := $(ROOT)/.cache/collection/ansible_collections/smtp/relay
DEB_PACKAGES := podman runc netavark aardvark-dns iptables debootstrap nsd rsync

export CONTAINERS_CONF := $(ROOT)/tests/containers.conf
export ANSIBLE_COLLECTIONS_PATH := $(COLLECTIONS)
export ANSIBLE_CONFIG := $(ROOT)/tests/ansible.cfg
export PATH := $(BIN):$(PATH)

.PHONY: help deps venv link images lint copy sanity units peers-up peers-down integration test demo bench build clean docs

help:
	@echo "make test   - every check, end to end, with its own set-up and clean-up (about an hour)"
	@echo "make demo   - configure, verify, mail through and write allowlist requests for a local fleet"
	@echo "make bench  - benchmarks (see README)"
	@echo "make docs   - the HTML docs site, into .cache/docs/html"
	@echo "make ee     - the execution environment image localhost/smtp-relay-ee:latest"

# Debian packages the tests need on this machine; installed only where missing.
deps:
	@missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

$(BIN)/.stamp: tests/requirements.txt
	$(PYTHON_BOOT) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r tests/requirements.txt
	touch $@

venv: $(BIN)/.stamp link

# Ansible finds the collection under ansible_collections/smtp/relay: link the work tree there.
link:
	@mkdir -p $(dir $(LINK)) && ln -sfn ../../../.. $(LINK)

images: deps
	bash tests/images/build.sh

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/ansible-lint --profile production

# ansible-test wants a real tree at ansible_collections/NS/NAME: copy what the collection ships.
copy: venv
	rm -rf $(COPY_ROOT) && mkdir -p $(COPY_ROOT)
	git ls-files -co --exclude-standard | grep -v -E '^(\.ci|demo|bench|docs|tests/images)/' | rsync -a --files-from=- . $(COPY_ROOT)/
	# The copy sits inside this repository's ignored .cache: give it its own git so ansible-test sees its files.
	cd $(COPY_ROOT) && git init -q && git add -A

# ansible-test downloads a pip bootstrap script from a host these machines cannot reach: give it a stand-in.
sanity: copy
	mkdir -p $(HOME)/.ansible/test/cache && cp tests/sanity/get_pip.py $(HOME)/.ansible/test/cache/get_pip_24_2.py
	cd $(COPY_ROOT) && $(BIN)/ansible-test sanity --venv --python 3.11 --color no

units: venv
	$(BIN)/pytest -m "not peers" tests/unit

peers-up: venv images
	$(BIN)/python -m tests.peers.lab up

peers-down: venv
	$(BIN)/python -m tests.peers.lab down

# Tests against the real relay, DNS server and containers (peers must be up): the one integration harness, pytest
# (marker `peers`); the role's, the modules' and the filters' playbooks run from tests/integration too.
integration: venv
	$(BIN)/pytest -m peers tests/unit tests/integration

# The execution environment, localhost/smtp-relay-ee:latest (ee/build.sh; rebuilt only when what goes into it changes):
# ansible-builder and ansible-runner, pinned in ee/requirements.txt, go into the same venv. The integration pass
# runs jobs in it (tests/integration/ee), so it builds it first.
.PHONY: ee
$(BIN)/.ee-stamp: ee/requirements.txt $(BIN)/.stamp
	$(BIN)/pip install -q -r ee/requirements.txt
	touch $@

ee: venv images $(BIN)/.ee-stamp
	bash ee/build.sh

integration: ee

# The whole suite; the trap stops the peers whatever happens.
test: deps venv images
	$(MAKE) lint
	$(MAKE) units
	$(MAKE) sanity
	$(MAKE) docs
	$(BIN)/python -m tests.peers.lab up
	trap '$(BIN)/python -m tests.peers.lab down' EXIT; $(MAKE) integration

demo: deps venv images
	$(BIN)/python -m tests.peers.lab up
	bash demo/run.sh

# BENCH_HOSTS: fleet sizes measured in full (both transports, every playbook); BENCH_GROWTH: sizes measured for
# the first converge, the floor and the rerun only, to show growth (comma separated).
BENCH_HOSTS ?= 10
BENCH_GROWTH ?= 1,30
bench: deps venv images link
	$(BIN)/python -m tests.peers.lab up
	trap '$(BIN)/python -m tests.peers.lab down' EXIT; \
	  $(BIN)/python bench/sender_check.py --domains 500 --runs 3 && \
	  $(BIN)/python bench/fleet.py --hosts $(BENCH_HOSTS) --growth $(BENCH_GROWTH) --runs 3

# The tarball holds the files git tracks, as they are in the work tree (uncommitted edits included), and nothing
# else: they are copied to a temporary tree and built there, so caches, venvs, lab state and outputs never ship
# (build_ignore in galaxy.yml is the second line of defence). A tracked file deleted from the work tree is left out.
# BUILD_OUTPUT: the directory for smtp-relay-VERSION.tar.gz (default: the repository root).
build: BUILD_OUTPUT ?= $(ROOT)
build: venv
	mkdir -p "$(BUILD_OUTPUT)" && rm -f "$(BUILD_OUTPUT)"/smtp-relay-*.tar.gz
	@untracked=$$(git -C "$(ROOT)" ls-files -o --exclude-standard -- galaxy.yml meta plugins roles playbooks \
	  changelogs README.md LICENSE); \
	  if [ -n "$$untracked" ]; then echo "warning: not tracked by git, so not in the tarball:"; echo "$$untracked"; fi
	tree=$$(mktemp -d); trap 'rm -rf "$$tree"' EXIT; \
	  git -C "$(ROOT)" ls-files -z --cached | while IFS= read -r -d '' f; do \
	    if [ -e "$(ROOT)/$$f" ] || [ -L "$(ROOT)/$$f" ]; then printf '%s\0' "$$f"; fi; done \
	  | tar -C "$(ROOT)" --null --no-recursion -T - -cf - | tar -C "$$tree" -xf -; \
	  cd "$$tree" && $(BIN)/ansible-galaxy collection build --force --output-path "$(abspath $(BUILD_OUTPUT))" .

# The docs site (docs/build.sh): antsibull-docs and Sphinx, pinned in docs/requirements.txt, go into the same venv.
$(BIN)/.docs-stamp: docs/requirements.txt $(BIN)/.stamp
	$(BIN)/pip install -q -r docs/requirements.txt
	touch $@

docs: venv $(BIN)/.docs-stamp
	bash docs/build.sh

clean:
	-$(BIN)/python -m tests.peers.lab down
	rm -rf .cache .peers tests/output smtp-relay-*.tar.gz
