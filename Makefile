# Cosmo — developer and demo entry points.
#
#   make run     create .venv, install Cosmo, serve the demo (config/cosmo.yaml)
#   make test    create .venv, install Cosmo with test extras and the Debian
#                tools the tests drive (when root), run the whole test suite
#   make check   validate the configuration (CONFIG=path to choose another)
#   make phone   install the softphone extra (pjsua2, pyaudio; Debian's portaudio19-dev
#                when root) and run `cosmo phone` as agent EXT (default 1001) against
#                SERVER (default 127.0.0.1:5060); PHONE_ARGS adds options, e.g. --auto-answer
#   make bench   run the benchmarks in bench/
#   make prompts regenerate media/ (voice prompts, beep, hold music) with espeak-ng and sox
#   make clean   remove the virtualenv, build output and caches (not var/)
#   make distclean  clean, and remove var/ (the demo's database) too
#
# Installs are remembered by stamp files in .venv/, redone when setup.py or
# pyproject.toml change, so a second `make run` or `make test` starts at once.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
CONFIG ?= config/cosmo.yaml
PYTEST_ARGS ?=

# Debian packages the tests drive: SIPp (sip-tester), baresip (a real
# softphone), espeak-ng (speaks prompts), sox (measures audio),
# postgresql (the store tests start a throwaway cluster of their own),
# dovecot-imapd (a throwaway IMAP server for the e-mail tests), and chromium
# (the browser tests drive it headless through Playwright).
DEBIAN_TEST_PACKAGES := sip-tester baresip espeak-ng sox postgresql dovecot-imapd chromium

BUILD_FILES := setup.py pyproject.toml

# The agent softphone (`make phone`): pyaudio builds against PortAudio's headers.
DEBIAN_PHONE_PACKAGES := portaudio19-dev
EXT ?= 1001
PASSWORD ?= secret$(EXT)
SERVER ?= 127.0.0.1:5060
PHONE_ARGS ?=

.PHONY: help run serve test check bench clean distclean venv install install-test debian-test-deps prompts prompts-check \
	phone install-phone debian-phone-deps

help:
	@sed -n 's/^#   //p' $(firstword $(MAKEFILE_LIST))

# --------------------------------------------------------------------- venv

# Debian's own python3 needs python3-venv for `-m venv`; installed here when root.
$(PY):
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "error: Cosmo needs Python 3.11 or newer ($(PYTHON) is $$($(PYTHON) -V 2>&1))"; exit 1; }
	$(PYTHON) -m venv $(VENV) || { \
		rm -rf $(VENV); \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends python3-venv \
			|| { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends python3-venv; }; \
			$(PYTHON) -m venv $(VENV); \
		else exit 1; fi; }

venv: $(PY)

$(VENV)/.installed: $(BUILD_FILES) | $(PY)
	$(PIP) install -e .
	@touch $@

$(VENV)/.installed-test: $(BUILD_FILES) | $(PY)
	$(PIP) install -e '.[test]'
	@touch $@ $(VENV)/.installed

$(VENV)/.installed-phone: $(BUILD_FILES) | $(PY)
	@$(MAKE) --no-print-directory debian-phone-deps
	$(PIP) install -e '.[phone]'
	@touch $@ $(VENV)/.installed

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

install-phone: $(VENV)/.installed-phone

# Installs the missing packages when running as root (apt-get update only if
# something is missing); otherwise, or if apt-get fails, says what is missing
# and carries on (the tests that need a missing tool cannot run).
debian-test-deps:
	@missing=""; \
	for pkg in $(DEBIAN_TEST_PACKAGES); do \
		dpkg-query -W -f='$${Status}' "$$pkg" 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$pkg"; \
	done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if ! command -v apt-get >/dev/null 2>&1; then \
		echo "note: no apt-get; missing:$$missing (tests that need them cannot run)"; exit 0; \
	fi; \
	if [ "$$(id -u)" != 0 ]; then \
		echo "note: not root; missing:$$missing (install them: tests that need them cannot run)"; exit 0; \
	fi; \
	echo "installing:$$missing"; \
	export DEBIAN_FRONTEND=noninteractive; \
	{ apt-get update -q && apt-get install -y -q --no-install-recommends $$missing; } \
		|| echo "warning: could not install$$missing; tests that need them cannot run"

# Like debian-test-deps, for the softphone's build dependencies.
debian-phone-deps:
	@missing=""; \
	for pkg in $(DEBIAN_PHONE_PACKAGES); do \
		dpkg-query -W -f='$${Status}' "$$pkg" 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$pkg"; \
	done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then \
		echo "note: missing:$$missing (pyaudio cannot build without it: sudo apt-get install$$missing)"; exit 0; \
	fi; \
	echo "installing:$$missing"; \
	export DEBIAN_FRONTEND=noninteractive; \
	{ apt-get update -q && apt-get install -y -q --no-install-recommends $$missing; } \
		|| echo "warning: could not install$$missing; pyaudio cannot build"

# --------------------------------------------------------------------- targets

run: $(VENV)/.installed
	$(VENV)/bin/cosmo serve --config $(CONFIG)

serve: run

test: $(VENV)/.installed-test debian-test-deps
	$(PY) -m pytest $(PYTEST_ARGS)

check: $(VENV)/.installed
	$(VENV)/bin/cosmo check --config $(CONFIG)

phone: $(VENV)/.installed-phone
	$(VENV)/bin/cosmo phone --ext $(EXT) --password $(PASSWORD) --server $(SERVER) $(PHONE_ARGS)

bench: $(VENV)/.installed-test
	@for script in bench/sip_cps.py bench/media_calls.py bench/routing.py bench/speech.py bench/cti.py \
		bench/email_intake.py; do \
		echo "== $$script"; $(PY) "$$script" || exit $$?; \
	done

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .hypothesis test-artifacts
	find . -path ./.git -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf var

# ---------------------------------------------------------------------- media

# Regenerates media/prompts, media/moh and media/README.md; files whose bytes
# did not change are left alone.  Standard library only: no virtualenv needed.
prompts: debian-test-deps
	$(PYTHON) tools/make_prompts.py --out media

# Fails if regenerating would change any committed media file.
prompts-check: debian-test-deps
	$(PYTHON) tools/make_prompts.py --out media --check
