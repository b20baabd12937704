# Partner Panel. Needs only Python 3.11+ and make; everything else goes into .venv.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: help install demo serve test test-e2e lint migrate bench worker beat flusher screenshots reliability clean

help:
	@echo "make demo      - install, migrate, load the demo data and serve on http://$(HOST):$(PORT)"
	@echo "make test      - lint and run the whole test suite"
	@echo "make test-e2e  - only the browser tests"
	@echo "make bench     - benchmarks on PostgreSQL + Redis, writes BENCHMARKS.md"
	@echo "make reliability - faults, load, fuzzing, access control; writes docs/reliability.md"

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

migrate: install
	$(PY) manage.py migrate --noinput

# The demo pays through a local fake PayPal (payouts/fake_paypal.py), started after the demo data
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
demo: install
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
serve: install
	$(PY) manage.py collectstatic --noinput
	$(VENV)/bin/granian --interface wsgi --host $(HOST) --port $(PORT) --workers $(WEB_CONCURRENCY) \
		--blocking-threads $(WEB_THREADS) --respawn-failed-workers --no-access-log config.wsgi:application

worker: install
	$(VENV)/bin/celery -A config worker -l info

beat: install
	$(VENV)/bin/celery -A config beat -l info

# The click-buffer consumer: spool files (CLICK_BUFFER=spool; one per web host) or the Redis
# stream (CLICK_BUFFER=redis) -> PostgreSQL in batches.
flusher: install
	$(PY) manage.py flush_clicks --loop

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: export DEBUG ?= true
test: lint
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
	rm -rf $(VENV) staticfiles db.sqlite3* test-artifacts
