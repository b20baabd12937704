"""gunicorn settings: the alternative to granian (`make serve` uses granian, see BENCHMARKS.md
for the measurements behind that choice). Tunable from the environment:

    .venv/bin/gunicorn config.wsgi -c config/gunicorn.conf.py

Defaults are the best gunicorn configuration measured on 2 cores: gthread workers (HTTP
keep-alive, and a thread can serve while another waits for Redis or PostgreSQL), one worker per
core, 4 threads each. Stock sync workers close every connection (a TCP handshake per click) and
idle while the click waits for Redis.
"""

import multiprocessing
import os

bind = os.environ.get("BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count()))
threads = int(os.environ.get("WEB_THREADS", "4"))
worker_class = os.environ.get("WORKER_CLASS", "gthread")
keepalive = 5
timeout = 30
graceful_timeout = 20
# Recycles workers against slow leaks. The app is preloaded, so a new worker is a fork of a
# warm master (no re-import), and the jitter keeps workers from restarting together.
max_requests = int(os.environ.get("MAX_REQUESTS", "50000"))
max_requests_jitter = 5_000
preload_app = True
accesslog = os.environ.get("ACCESS_LOG") or None
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")


def when_ready(server):
    """Before any worker is forked: import the URLconf (every view module) and build the crawler
    matcher, so no visitor's click pays for them. Touches no database or Redis (nothing opened
    here may be shared with the forked workers)."""
    from django.urls import get_resolver

    from tracking.bots import crawler_matcher

    get_resolver().url_patterns  # noqa: B018 - imports every view module
    crawler_matcher()
