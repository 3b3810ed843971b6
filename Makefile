# All set-up lives here: `make run` and `make test` install what they need (apt packages,
# the virtual environment at .venv) on a fresh Debian 12 machine, and do nothing again
# when it is already done.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.stamps

# Running: fonts that draw Chinese (Kivy and reportlab), PC/SC runtime, CUPS client,
# what pip needs to build pyscard and evdev (C and kernel headers, named since apt leaves
# recommends out), espeak-ng (offline speech, Mandarin and English) and the icon set the
# home screen draws its tiles with (Font Awesome 4.7: font OFL-1.1, names MIT).
APT_RUN := python3-venv python3-dev gcc swig pkg-config libpcsclite-dev libpcsclite1 \
           fonts-wqy-microhei fonts-wqy-zenhei cups-client libcups2-dev libgl1 libegl1 libmtdev1 \
           espeak-ng fonts-font-awesome libc6-dev linux-libc-dev
# Testing adds the real local services the tests start: pcscd + vpcd, CUPS + cups-pdf,
# poppler for reading PDFs back, zbar for reading their QR codes off a render, Prometheus and
# Alertmanager (promtool, amtool) for the monitoring files, chromium for the fleet page.
APT_TEST := $(APT_RUN) pcscd vsmartcard-vpcd cups printer-driver-cups-pdf libcups2-dev \
            poppler-utils ghostscript systemd cage prometheus prometheus-alertmanager chromium zbar-tools

KIVY_ENV := KIVY_NO_ARGS=1 KIVY_NO_FILELOG=1 KIVY_NO_CONFIG=1 KIVY_LOG_MODE=PYTHON

.PHONY: run test bench soak demo deps-run deps-test clean
.DEFAULT_GOAL := run

define apt_ensure
	@missing=$$(for p in $(1); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "apt: installing$$(printf ' %s' $$missing)"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
endef

$(STAMP)/apt-run: Makefile
	$(call apt_ensure,$(APT_RUN))
	@mkdir -p $(STAMP) && touch $@

$(STAMP)/apt-test: $(STAMP)/apt-run Makefile
	$(call apt_ensure,$(APT_TEST))
	@touch $@

$(PY): | $(STAMP)/apt-run
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel

$(STAMP)/pip-run: setup.cfg pyproject.toml | $(PY) $(STAMP)/apt-run
	$(PY) -m pip install -q -e .
	@touch $@

$(STAMP)/pip-test: setup.cfg pyproject.toml | $(PY) $(STAMP)/apt-test
	$(PY) -m pip install -q -e '.[test]'
	@touch $@

deps-run: $(STAMP)/apt-run $(STAMP)/pip-run
deps-test: $(STAMP)/apt-test $(STAMP)/pip-test

## run: the kiosk on its embedded default (demo profile); headless machines run the scripted demo. Python's objects
## on glibc's heap, as kiosk.service runs the kiosk (kiosk.services.heap).
run: deps-run
	$(KIVY_ENV) PYTHONMALLOC=malloc $(VENV)/bin/kiosk run

## test: the whole suite, starting the local services it needs (pcscd, cupsd, backend simulator), on TEST_WORKERS
## pytest-xdist workers (0: in this process). Whole files go to a worker (loadfile), so a module's fixtures are set
## up once; no reordering by test count, so the modules marked slow (handed out first, tests/conftest.py) do not end
## the run alone. Each worker starts its own services and its own offscreen kiosk.
TEST_WORKERS ?= 4
test: deps-test
	$(KIVY_ENV) $(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder --durations=30

## bench: speed and memory figures (never asserted in tests)
bench: deps-test
	$(KIVY_ENV) $(PY) -m benchmarks

## soak: endurance (not part of `make test`): SESSIONS UI sessions in one kiosk process, then ENGINE_SESSIONS
## engine-only sessions in another; writes soak-out/soak.json and soak-out/engine-soak.json, fails when a target
## is missed (both run either way). `make soak SESSIONS=100` for a shorter UI run. Each soak runs on the kiosk's
## production allocator (PYTHONMALLOC=malloc; it starts itself again under it when started without).
SESSIONS ?= 1000
ENGINE_SESSIONS ?= 10000
SOAK_OUT ?= soak-out
soak: deps-test
	@status=0; \
	$(KIVY_ENV) $(PY) -m kiosk.soak ui --sessions $(SESSIONS) --out $(SOAK_OUT) || status=1; \
	$(KIVY_ENV) $(PY) -m kiosk.soak engine --sessions $(ENGINE_SESSIONS) --out $(SOAK_OUT) || status=1; \
	exit $$status

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .hypothesis
