"""Celery beat's scheduler with a heartbeat, so /healthz can tell whether beat is running.

Beat is a single process for the whole installation (docs/deploy.md); nothing else notices when
it stops, and then trials stop expiring and PayPal stops being polled. Every tick (at least every
few seconds, given the schedule in settings) it records the time in the cache, which is Redis
in production, at most once per ``HEARTBEAT_SECONDS``.
"""

from __future__ import annotations

import logging
import time

from celery.beat import PersistentScheduler

logger = logging.getLogger(__name__)

HEARTBEAT_KEY = "ops:beat:heartbeat"
HEARTBEAT_SECONDS = 10.0


def record_heartbeat(now: float | None = None) -> None:
    from django.core.cache import cache

    cache.set(HEARTBEAT_KEY, time.time() if now is None else now, timeout=None)


def last_heartbeat() -> float | None:
    """Unix time of beat's last heartbeat, or None if it never ran (or the cache lost it)."""
    from django.core.cache import cache

    value = cache.get(HEARTBEAT_KEY)
    return float(value) if value is not None else None


class HeartbeatScheduler(PersistentScheduler):
    _last_written = 0.0

    def tick(self, *args, **kwargs):
        now = time.time()
        if now - self._last_written >= HEARTBEAT_SECONDS:
            try:
                record_heartbeat(now)
                self._last_written = now
            except Exception:
                logger.warning("Could not record beat's heartbeat.", exc_info=True)
        return super().tick(*args, **kwargs)
