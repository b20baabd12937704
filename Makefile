# Partner Panel. Needs only Python 3.11+ and make; everything else goes into .venv.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
HOST ?= 127.0.0.1
PORT ?= 8000

# Dependencies: pyproject.toml names them (runtime, and the `test` extra); requirements/ locks
# them with hashes. production.txt = runtime only (serve, worker, beat, flusher, up, demo, the
# Dockerfile); ci.txt = runtime + test (test, lint, bench, reliability). After changing
# pyproject.toml -- including after merging branches that add dependencies -- run `make lock`
# and commit both files. It resolves pyproject.toml again, keeping the versions already locked
# for packages it does not need to change; a lock file that a merge left with conflict markers
# is discarded first and resolved afresh, so `make lock` always regenerates cleanly.
LOCK_RUNTIME := requirements/production.txt
LOCK_CI := requirements/ci.txt
UV_VERSION := 0.13.8
RUNTIME_STAMP := $(VENV)/.runtime-$(shell cksum < $(LOCK_RUNTIME) | cut -d' ' -f1)
CI_STAMP := $(VENV)/.ci-$(shell cksum < $(LOCK_CI) | cut -d' ' -f1)
# Celery beat's schedule file (the last run of each periodic task), out of the project folder's
# tracked files; var/ is git-ignored.
BEAT_SCHEDULE ?= var/celerybeat-schedule

.PHONY: help install install-runtime lock demo demo-stripe serve worker beat flusher up test test-e2e lint migrate \
	bench reliability screenshots container-test clean

help:
	@echo "Developing"
	@echo "  make demo            - install, migrate SQLite, load the demo data, serve http://$(HOST):$(PORT) with a fake PayPal"
	@echo "  make demo-stripe     - on top of make demo's data, 45 days of traffic sent as Stripe Billing webhooks"
	@echo "  make test            - install the locked test set, lint, check migrations, run the whole test suite"
	@echo "  make test-e2e        - only the browser tests"
	@echo "  make lint            - ruff check + ruff format --check"
	@echo "  make install         - .venv with the locked runtime + test dependencies (requirements/ci.txt)"
	@echo "  make lock            - re-resolve pyproject.toml into requirements/production.txt and ci.txt (hashes)"
	@echo "  make bench           - benchmarks on PostgreSQL + Redis, writes BENCHMARKS.md (~13 min)"
	@echo "  make reliability     - faults, load, fuzzing, access control; writes docs/reliability.md"
	@echo "  make screenshots     - regenerate docs/screenshots/ from a running demo"
	@echo "  make container-test  - build the image and drive the compose stack (needs dockerd, debootstrap)"
	@echo "  make clean           - remove .venv, collected static files, the SQLite database"
	@echo "Production (runtime dependencies only, requirements/production.txt; see docs/deploy.md)"
	@echo "  make install-runtime - .venv with the locked runtime dependencies only"
	@echo "  make migrate         - apply database migrations"
	@echo "  make serve           - collectstatic + granian on $(HOST):$(PORT)"
	@echo "  make worker          - the Celery worker"
	@echo "  make beat            - Celery beat (exactly one per installation)"
	@echo "  make flusher         - the click-buffer flusher (one per web host with CLICK_BUFFER=spool)"
	@echo "  make up              - web, worker, beat and flusher together (honcho, Procfile)"

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# --no-deps: the lock already lists every package; --require-hashes: nothing else is installed.
$(RUNTIME_STAMP): $(LOCK_RUNTIME) | $(PY)
	$(PIP) install --quiet --require-hashes --no-deps -r $(LOCK_RUNTIME)
	rm -f $(VENV)/.runtime-*
	touch $@

$(CI_STAMP): $(LOCK_CI) | $(PY)
	$(PIP) install --quiet --require-hashes --no-deps -r $(LOCK_CI)
	rm -f $(VENV)/.ci-* $(VENV)/.runtime-*
	touch $@ $(RUNTIME_STAMP)

install-runtime: $(RUNTIME_STAMP)

install: $(CI_STAMP)

# uv resolves (its own pinned copy in .venv); --universal: one lock for every platform and Python >= 3.11.
lock: | $(PY)
	$(PIP) install --quiet uv==$(UV_VERSION)
	mkdir -p requirements
	for lock in $(LOCK_RUNTIME) $(LOCK_CI); do ! grep -qE '^(<<<<<<<|=======|>>>>>>>)' $$lock 2>/dev/null || rm $$lock; done
	$(VENV)/bin/uv pip compile pyproject.toml --quiet --universal --python-version 3.11 --generate-hashes \
		--custom-compile-command "make lock" -o $(LOCK_RUNTIME)
	$(VENV)/bin/uv pip compile pyproject.toml --quiet --universal --python-version 3.11 --generate-hashes \
		--extra test --custom-compile-command "make lock" -o $(LOCK_CI)

migrate: install-runtime
	$(PY) manage.py migrate --noinput

# The demo pays through a local fake PayPal (devtools/fake_paypal.py), started after the demo data
# is loaded and stopped when the server stops. Celery runs in-process (no REDIS_URL); the fake's
# poller stands in for beat, so an approved payout shows Paid within seconds.
FAKE_PAYPAL_PORT ?= 8765
demo: export DEBUG ?= true
# The links the demo prints and the panel shows point at the server this target starts.
demo: export SITE_URL ?= http://$(HOST):$(PORT)
demo: export REDIS_URL =
demo: export PAYPAL_API_BASE = http://127.0.0.1:$(FAKE_PAYPAL_PORT)
demo: export PAYPAL_CLIENT_ID = demo-client-id
demo: export PAYPAL_CLIENT_SECRET = demo-client-secret
demo: install-runtime
	$(PY) manage.py migrate --noinput
	$(PY) manage.py demo
	@$(PY) manage.py fake_paypal --port $(FAKE_PAYPAL_PORT) & fake=$$!; \
	trap 'kill $$fake 2>/dev/null; wait $$fake 2>/dev/null' EXIT; \
	trap 'exit 130' INT TERM; \
	$(PY) manage.py runserver $(HOST):$(PORT)

# On top of `make demo`'s data: 45 days of the merchant's traffic sent as Stripe Billing webhooks
# (POST /api/v1/integrations/stripe, docs/stripe.md); see them in the admin's Stripe events log.
demo-stripe: export DEBUG ?= true
demo-stripe: export REDIS_URL =
demo-stripe: install
	$(PY) manage.py simulate --days 45 --via stripe

# granian (WSGI) was measured fastest on the click path; see BENCHMARKS.md. gunicorn remains:
# .venv/bin/gunicorn config.wsgi -c config/gunicorn.conf.py
WEB_CONCURRENCY ?= 2
WEB_THREADS ?= 2
serve: install-runtime
	$(PY) manage.py collectstatic --noinput
	$(VENV)/bin/granian --interface wsgi --host $(HOST) --port $(PORT) --workers $(WEB_CONCURRENCY) \
		--blocking-threads $(WEB_THREADS) --respawn-failed-workers --no-access-log config.wsgi:application

worker: install-runtime
	$(VENV)/bin/celery -A config worker -l info

beat: install-runtime
	mkdir -p $(dir $(BEAT_SCHEDULE))
	$(VENV)/bin/celery -A config beat -l info -s $(BEAT_SCHEDULE)

# The click-buffer consumer: spool files (CLICK_BUFFER=spool; one per web host) or the Redis
# stream (CLICK_BUFFER=redis) -> PostgreSQL in batches.
flusher: install-runtime
	$(PY) manage.py flush_clicks --loop

# Every production process of one host in the foreground (Procfile; honcho): web on $(HOST):$(PORT),
# the Celery worker, beat (run `make up` on ONE host only, or drop beat elsewhere: honcho start web
# worker flusher), the click flusher. Ctrl+C or SIGTERM stops them all gracefully. Needs
# PostgreSQL and Redis (DATABASE_URL, REDIS_URL) and a migrated database (make migrate).
up: export HOST := $(HOST)
up: install-runtime
	$(PY) manage.py collectstatic --noinput -v 0
	mkdir -p var
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/honcho start --port $(PORT)

# The production image and compose.yaml, proved here: a stand-in base image made with
# debootstrap (no image registry is reachable), the app image built with --network host, then
# tests/ops/test_stack.py's flow (click -> event -> payout -> SIGTERM) against the compose
# stack on the host's PostgreSQL and Redis. Needs root, a running dockerd (e.g. `dockerd
# --storage-driver=vfs --iptables=false --bridge=none`), debootstrap and docker-compose 1.29 or
# COMPOSE="docker compose". About 8 min from scratch on vfs (see README); .ci/run installs what it
# needs, starts dockerd and runs it after make test.
# The test process itself runs with the test settings (DEBUG on), as make test; the stack it
# drives runs the image's production settings.
container-test: export DEBUG ?= true
container-test: install
	deploy/container/base-image.sh python:3.11-slim-bookworm
	docker build --network host -t partner-panel:latest .
	CONTAINER_TEST=1 $(PY) -m pytest tests/ops/test_stack.py -k compose -p no:randomly $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: export DEBUG ?= true
test: install lint
	$(PY) manage.py makemigrations --check --dry-run
	$(PY) -m pytest $(PYTEST_ARGS)

test-e2e: export DEBUG ?= true
test-e2e: install
	$(PY) -m pytest -m e2e $(PYTEST_ARGS)

bench: install
	$(PY) bench/run.py

# Faults, load, hostile input, access control, secrets, audit; writes docs/reliability.md.
# Run it as CI does, on PostgreSQL and Redis: DATABASE_URL=postgres://... REDIS_URL=redis://... make reliability
reliability: export DEBUG ?= true
reliability: install
	$(PY) tests/reliability/report.py

screenshots: install
	$(PY) docs/screenshots.py --base-url http://$(HOST):$(PORT)

clean:
	rm -rf $(VENV) staticfiles db.sqlite3* test-artifacts var/celerybeat-schedule*
