"""/healthz: the state of every part of the installation, for load balancers and operators.

Each part is ``ok``, ``degraded``, ``down`` or ``not_configured``:

- ``database``: a ``SELECT 1``. Down means the panel cannot answer: the one case answered 503,
  so a load balancer takes this web process out of rotation.
- ``redis``: a ``PING`` (the broker, the cache, the ``redis`` click buffer).
- ``click_backlog``: the age of the oldest click the flusher has not moved into the database
  yet (this host's spool, or the Redis stream); degraded past ``BACKLOG_DEGRADED_SECONDS``, down
  past ``BACKLOG_DOWN_SECONDS`` (the flusher has stopped or cannot keep up).
- ``beat``: the age of beat's last heartbeat (config/beat.py).
- ``workers``: a Celery ``ping`` answered by at least one worker (remembered for
  ``WORKER_PING_CACHE_SECONDS`` per process, so frequent health checks cost one broadcast).

``status`` is ``down`` when the database is, else ``degraded`` when any part is not ``ok`` or
``not_configured``, else ``ok``. The other parts never turn the answer into a 503: a web process
without beat still serves partners; the operator's monitoring alerts on ``status``.
"""

from __future__ import annotations

import logging
import threading
import time

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache

logger = logging.getLogger(__name__)

BACKLOG_DEGRADED_SECONDS = 60.0
BACKLOG_DOWN_SECONDS = 600.0
BEAT_DEGRADED_SECONDS = 60.0
BEAT_DOWN_SECONDS = 300.0
WORKER_PING_TIMEOUT_SECONDS = 1.0
WORKER_PING_CACHE_SECONDS = 10.0

OK, DEGRADED, DOWN, NOT_CONFIGURED = "ok", "degraded", "down", "not_configured"


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except Exception:  # noqa: BLE001 - any failure means "down" to a health check
        return False


def _redis_state() -> str:
    if not settings.REDIS_URL:
        return NOT_CONFIGURED
    import redis

    try:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=0.5, socket_timeout=0.5)
        client.ping()
        return OK
    except Exception:  # noqa: BLE001
        return DOWN


def _by_age(age: float | None, *, degraded: float, down: float) -> str:
    if age is None or age < degraded:
        return OK
    return DEGRADED if age < down else DOWN


def backlog_state() -> dict:
    from tracking.backlog import click_backlog

    try:
        backlog = click_backlog()
    except Exception:
        logger.warning("Could not read the click backlog.", exc_info=True)
        return {"state": DOWN, "oldest_age_seconds": None}
    if backlog.mode is None:
        return {"state": NOT_CONFIGURED, "oldest_age_seconds": None}
    age = None if backlog.oldest_age_seconds is None else round(backlog.oldest_age_seconds, 1)
    state = _by_age(age, degraded=BACKLOG_DEGRADED_SECONDS, down=BACKLOG_DOWN_SECONDS)
    return {"state": state, "oldest_age_seconds": age}


def beat_state() -> dict:
    if not settings.REDIS_URL:
        return {"state": NOT_CONFIGURED, "last_heartbeat_age_seconds": None}
    from config.beat import last_heartbeat

    try:
        last = last_heartbeat()
    except Exception:  # noqa: BLE001 - the cache (Redis) is down
        return {"state": DOWN, "last_heartbeat_age_seconds": None}
    if last is None:
        return {"state": DOWN, "last_heartbeat_age_seconds": None}
    age = round(max(0.0, time.time() - last), 1)
    return {
        "state": _by_age(age, degraded=BEAT_DEGRADED_SECONDS, down=BEAT_DOWN_SECONDS),
        "last_heartbeat_age_seconds": age,
    }


_ping_lock = threading.Lock()
_ping_cache: tuple[float, str] = (0.0, DOWN)


def workers_state() -> str:
    global _ping_cache
    if not settings.REDIS_URL:
        return NOT_CONFIGURED
    with _ping_lock:
        at, state = _ping_cache
        if time.monotonic() - at < WORKER_PING_CACHE_SECONDS:
            return state
        from config.celery_app import app

        try:
            replies = app.control.ping(timeout=WORKER_PING_TIMEOUT_SECONDS, limit=1)
            state = OK if replies else DOWN
        except Exception:  # noqa: BLE001 - the broker is down
            state = DOWN
        _ping_cache = (time.monotonic(), state)
        return state


def reset_worker_ping_cache() -> None:
    global _ping_cache
    _ping_cache = (0.0, DOWN)


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    database = OK if _database_ok() else DOWN
    redis_state = _redis_state()
    # Beat's heartbeat and the worker ping go through Redis: without it they cannot be known,
    # and a broadcast to an unreachable broker would wait on its retries.
    unreachable = {"state": DOWN, "last_heartbeat_age_seconds": None}
    parts = {
        "redis": redis_state,
        "click_backlog": backlog_state(),
        "beat": unreachable if redis_state == DOWN else beat_state(),
        "workers": DOWN if redis_state == DOWN else workers_state(),
    }
    states = [value if isinstance(value, str) else value["state"] for value in parts.values()]
    if database != OK:
        status = DOWN
    elif any(state not in (OK, NOT_CONFIGURED) for state in states):
        status = DEGRADED
    else:
        status = OK
    return JsonResponse({"status": status, "database": database, **parts}, status=200 if database == OK else 503)
