# The two commands: `make run` and `make test`. Both install what they need.
SHELL := /bin/bash
.ONESHELL:
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
WEB_WORKERS ?= 2
WEB_THREADS ?= 8
# Labelled PneumoniaMNIST validation images uploaded into the demo project on first run (0: none).
DEMO_IMAGES ?= 60
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT := DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends

help:
	@echo "make run   - set up everything and start web + worker on http://$(HOST):$(PORT)/"
	@echo "make test  - run the whole test suite (needs PostgreSQL and Redis on localhost)"

$(VENV)/bin/python:
	python3 -m venv $(VENV) || { $(APT) python3-venv && python3 -m venv $(VENV); }
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.run-deps: requirements.txt | $(VENV)/bin/python
	$(PY) -m pip install -q -r requirements.txt
	touch $@

$(VENV)/.dev-deps: requirements.txt requirements-dev.txt | $(VENV)/bin/python
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@ $(VENV)/.run-deps

# Debian packages; installed only when missing.
apt-updated:
	@if [ ! -f /tmp/.clinic_ai_apt_updated ]; then $(SUDO) apt-get update -q && touch /tmp/.clinic_ai_apt_updated; fi

redis: | apt-updated
	@command -v redis-server >/dev/null || $(APT) redis-server
	@if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then \
	  echo "Starting Redis on 127.0.0.1:6379"; \
	  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
	    --dir /tmp --logfile /tmp/clinic_ai-redis.log; \
	  for i in $$(seq 50); do redis-cli ping >/dev/null 2>&1 && break; sleep 0.1; done; \
	fi

chromium: | apt-updated
	@test -x /usr/bin/chromium || $(APT) chromium

# OCR for burned-in text; the English model comes with the package (nothing is downloaded at run time).
tesseract: | apt-updated
	@command -v tesseract >/dev/null || $(APT) tesseract-ocr tesseract-ocr-eng

# The demo runs with DEBUG off; a secret key is made once and kept in var/.
var/secret_key:
	mkdir -p var
	$(PY) -c 'import secrets; print(secrets.token_urlsafe(50))' > $@
	chmod 600 $@

run: $(VENV)/.run-deps redis tesseract var/secret_key
	@SECRET_KEY=$$(cat var/secret_key); DEBUG=$${DEBUG:-false}; export SECRET_KEY DEBUG
	$(PY) manage.py migrate --noinput -v 0
	$(PY) manage.py demo_setup --images $(DEMO_IMAGES)
	mkdir -p var/log
	# A "cpu" worker (uploads, de-identification, previews) and a "gpu" worker (models loaded once and
	# kept; the GPU when there is one, the CPU cores otherwise): one process each on a 2-core machine.
	# -B: celery beat inside the cpu worker queues housekeeping every HOUSEKEEPING_INTERVAL_MINUTES (10),
	# so a half-sent file's partial bytes leave the quarantine within the hour.
	$(VENV)/bin/celery -A clinic_ai worker -B -s var/celerybeat-schedule -Q cpu --concurrency 1 --loglevel INFO \
	  --logfile var/log/worker-cpu.log --pidfile var/worker-cpu.pid -n cpu@%h >> var/log/worker-cpu.log 2>&1 &
	cpu_worker=$$!
	$(VENV)/bin/celery -A clinic_ai worker -Q gpu --concurrency 1 --loglevel INFO \
	  --logfile var/log/worker-gpu.log --pidfile var/worker-gpu.pid -n gpu@%h >> var/log/worker-gpu.log 2>&1 &
	gpu_worker=$$!
	$(PY) manage.py pipeline_resume
	$(PY) manage.py housekeeping
	trap 'kill $$cpu_worker $$gpu_worker 2>/dev/null; wait $$cpu_worker $$gpu_worker 2>/dev/null || true' EXIT INT TERM
	echo
	echo "clinic_ai is running at http://$(HOST):$(PORT)/  (worker logs: var/log/worker-*.log; Ctrl-C stops all)"
	echo
	# gunicorn, not runserver: two processes, so one CPU-heavy request (a mask preview, a log-in's
	# password hash) does not hold every page behind one GIL; threads, so a request waiting on its
	# client (a slow upload, a far browser) does not hold a whole process. bench/web.py, 20 sessions:
	# threaded p95 was at or below runserver's in every run; sync `-w 2` only on a quiet machine.
	$(VENV)/bin/gunicorn clinic_ai.wsgi:application --workers $(WEB_WORKERS) --threads $(WEB_THREADS) \
	  --bind $(HOST):$(PORT) --timeout 120 --graceful-timeout 10 --no-control-socket \
	  --access-logfile var/log/access.log --error-logfile -

lint: $(VENV)/.dev-deps
	$(VENV)/bin/ruff check .

test: $(VENV)/.dev-deps redis chromium tesseract
	$(VENV)/bin/ruff check .
	DJANGO_SETTINGS_MODULE=tests.settings $(PY) manage.py makemigrations --check --dry-run --skip-checks >/dev/null || { echo "Missing migrations"; exit 1; }
	$(VENV)/bin/pytest $(PYTEST_ARGS)

.PHONY: help run test lint redis chromium tesseract apt-updated
