"""gunicorn settings: the alternative to granian (`make serve` uses granian, see BENCHMARKS.md
for the measurements behind that choice). Tunable from the environment:

    .venv/bin/gunicorn config.wsgi -c config/gunicorn.conf.py

Defaults follow the measurements in BENCHMARKS.md (2 cores): stock sync workers, one per core,
were ahead on the click path (about 3,100 req/s against about 1,500 for 2 gthread workers x 4
threads, whose click rate also varied most between rounds). Sync workers close every connection
and hold one request each, so put a buffering proxy (nginx) in front of them; WORKER_CLASS=gthread
with WEB_THREADS=4 remains available where clients are slow and no such proxy buffers them.
"""

import multiprocessing
import os

bind = os.environ.get("BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count()))
threads = int(os.environ.get("WEB_THREADS", "1"))
worker_class = os.environ.get("WORKER_CLASS", "sync")
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
