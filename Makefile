# Byzantium node portal: the two commands of the README, and a few helpers.
#
#   make run    install what is missing, prepare, run the node in the foreground
#   make test   install what is missing, run the whole test suite
#
# As root on Debian 12 both install the Debian packages they need. Without
# root nothing is installed (what is missing is listed), the host mode is
# dry-run and there is no lab.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

# Debian's interpreter, not one from a private home (pyenv): the web
# process runs as an unprivileged user and must be able to execute it.
SYSTEM_PYTHON := /usr/bin/python3
VENV := .venv
PYTHON := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
MANAGE := $(PYTHON) manage.py
REQUIREMENTS_STAMP := $(VENV)/.requirements.stamp
# The web chat's browser client (Converse.js, services/catalogue/webchat):
# pinned by vendor/webchat/package-lock.json, installed with npm ci (no
# install scripts, so nothing but the registry's tarballs), and its prebuilt
# files copied into the service's seed. Skipped while the lock is unchanged.
WEBCHAT_DIR := vendor/webchat
WEBCHAT_DIST := $(WEBCHAT_DIR)/node_modules/converse.js/dist
WEBCHAT_SEED := services/catalogue/webchat/seed/converse
WEBCHAT_STAMP := $(WEBCHAT_SEED)/.installed

# Every program the portal may run (portal/host/allowlist.py) and every one
# the tests run must come from one of these, or from a package they depend
# on: portal/tests/test_install_manifest.py checks it. CI's fresh machine
# has none of them.
DEBIAN_PACKAGES := redis-server babeld dnsmasq nftables iproute2 arping gettext \
	openssl isc-dhcp-client conntrack nginx-light chromium curl wrk procps \
	psmisc python3-venv fonts-dejavu-core fonts-dejavu-extra fonts-liberation \
	iputils-ping iw hostapd wpasupplicant batctl kmod systemd tor ca-certificates \
	ngircd mumble-server prosody icecast2 libxml2-utils kiwix-tools squid infinoted \
	iperf3 nodejs npm

ifneq ($(shell id -u),0)
# Not root: nothing may change the machine, and the lab needs root.
export BYZANTIUM_HOST_MODE := dry-run
endif

.PHONY: help run test bench lint deps debian-packages prepare compilemessages clean distclean

help:
	@echo "make run    install, prepare and run the node (Ctrl-C stops it)"
	@echo "make test   install and run the whole test suite"
	@echo "make bench  install, prepare and run the benchmarks"
	@echo "make lint   ruff check and format check"
	@echo "make deps   only install Debian packages, virtualenv and requirements"
	@echo "make clean  remove generated files (keeps the node's state in var/)"

deps: debian-packages $(REQUIREMENTS_STAMP) $(WEBCHAT_STAMP)

$(WEBCHAT_STAMP): $(WEBCHAT_DIR)/package-lock.json $(WEBCHAT_DIR)/package.json
	npm ci --prefix $(WEBCHAT_DIR) --ignore-scripts --no-audit --no-fund --loglevel=error
	rm -rf $(WEBCHAT_SEED)
	mkdir -p $(WEBCHAT_SEED)
	cp -r $(WEBCHAT_DIST)/converse.min.js $(WEBCHAT_DIST)/converse.min.css \
		$(WEBCHAT_DIST)/emoji.json $(WEBCHAT_DIST)/chunkjs \
		$(WEBCHAT_DIST)/webfonts $(WEBCHAT_DIST)/images $(WEBCHAT_DIST)/sounds \
		$(WEBCHAT_DIR)/node_modules/converse.js/LICENSE $(WEBCHAT_SEED)/
	find $(WEBCHAT_SEED) -name '*.map' -delete
	touch $@

debian-packages:
	@deploy/install-debian-packages.sh $(DEBIAN_PACKAGES)

$(PYTHON):
	$(SYSTEM_PYTHON) -m venv $(VENV)

# pip runs again only when requirements.txt changed (or the venv is new).
$(REQUIREMENTS_STAMP): requirements.txt | $(PYTHON)
	$(PIP) install --disable-pip-version-check -q -r requirements.txt
	touch $@

compilemessages: $(REQUIREMENTS_STAMP)
	$(MANAGE) compilemessages --ignore=$(VENV) --ignore=var --ignore=vendor -v 0

# runnode --render-configs first: it creates the state folders (the database
# folder among them) with their owners, so migrate has somewhere to write.
prepare: deps compilemessages
	$(MANAGE) runnode --render-configs -v 0
	$(MANAGE) migrate --noinput -v 0
	$(MANAGE) collectstatic --noinput -v 0
	$(MANAGE) portal_init

run: prepare
	exec $(MANAGE) runnode

test: deps compilemessages
	$(VENV)/bin/pytest -q

bench: deps compilemessages
	$(PYTHON) -m bench

lint: $(REQUIREMENTS_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean:
	rm -rf var/static var/run .pytest_cache .ruff_cache test-artifacts bench/results
	find . -path ./$(VENV) -prune -o -name '*.mo' -type f -print0 | xargs -0 rm -f
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -print0 | xargs -0 rm -rf
	rm -f $(REQUIREMENTS_STAMP)

# Also the node's state (database, secrets, certificate) and the virtualenv.
distclean: clean
	rm -rf var $(VENV)
