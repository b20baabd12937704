"""Celery tasks of the tracking app."""

from __future__ import annotations

import logging

from celery import shared_task

from tracking.clicks import flush_click_buffer_all

logger = logging.getLogger(__name__)


@shared_task(name="tracking.tasks.flush_click_buffer_task", ignore_result=True)
def flush_click_buffer_task(max_batches: int = 100) -> int:
    """Move buffered clicks (Redis stream, or this host's click spool) into the database (beat: every few
    seconds). Idempotent and safe to overlap: entries are acknowledged only after their
    transaction commits, and a re-read entry is skipped by its click id."""
    from redis.exceptions import RedisError

    try:
        return flush_click_buffer_all(max_batches=max_batches)
    except (RedisError, OSError) as exc:
        # Nothing is lost: clicks that could not reach Redis were written directly, and
        # entries already in the stream wait for the next run.
        logger.warning("Click buffer flush skipped: Redis unavailable (%s).", exc.__class__.__name__)
        return 0
