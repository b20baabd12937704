"""Running a unit of database work without Django's per-request connection health check.

With ``CONN_HEALTH_CHECKS`` Django sends ``SELECT 1`` before a request's first query, so that a
connection PostgreSQL dropped (a restart, a failover, an idle timeout) is replaced instead of
failing the request. On the events API that check is a round trip of its own for every event
(BENCHMARKS.md, "Events API"). ``on_live_connection`` skips it and handles the rare dead connection after the
fact: the work fails on the dead connection, the connection is closed, and the work runs once
more on a new one. That is only right for work that may run twice, which the events API is by
its contract: an event is applied once per event id, and a second run of an applied event
answers as a replay.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from django.db import DatabaseError, connection

logger = logging.getLogger(__name__)
T = TypeVar("T")


def on_live_connection(work: Callable[[], T]) -> T:
    """``work()``, run again once on a new connection if the one it had turns out dead.

    Inside a transaction (a caller's ``atomic``) nothing is skipped or retried: the health
    check, if any, has run, and a retry could not undo the caller's part."""
    if connection.in_atomic_block or not connection.health_check_enabled or connection.connection is None:
        return work()
    connection.health_check_done = True  # this request's SELECT 1: skipped
    try:
        return work()
    except DatabaseError:
        if connection.connection is not None and connection.is_usable():
            raise  # the work's own error, not the connection's
        logger.warning("The database connection was dead; retrying on a new one.")
        connection.close()
        return work()
