"""Recording counted clicks: straight into the database, through a local spool file, or through
a Redis stream (``CLICK_BUFFER``: off, spool, redis); moving buffered clicks into the database;
finding the click a sign-up names.

Spool (``tracking.spool``, the production choice): the redirect appends the click to its
process's spool file; the host's flusher moves the lines into the database with
``write_clicks`` (``tracking.click_writes``). No network round trip on the redirect, and Redis
may be down.

Direct path (``CLICK_BUFFER`` off, or a buffer that cannot take the click): ``write_clicks`` in
the request.

Buffered path (``CLICK_BUFFER`` and ``REDIS_URL``): the redirect only ``XADD``s the click to a
stream (short socket timeout; any Redis error falls back to the direct path, so a click is
never lost and the redirect never fails). ``flush_click_buffer`` reads batches with a consumer
group, writes them exactly like the direct path (uniqueness still decided by the database)
and acknowledges them only after the transaction committed. Entries left pending by a dead
consumer are reclaimed with ``XAUTOCLAIM``.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterable

from django.conf import settings
from django.db import transaction

from tracking import spool
from tracking.click_stream import _clients, _decode, _drop_stream_connection, _encode, _redis, _xadd
from tracking.click_writes import ClickData, record_click_direct, write_buffered_clicks
from tracking.ids import issued_here
from tracking.models import Click, Link

logger = logging.getLogger(__name__)

STREAM_KEY = "tracking:clicks"
GROUP = "click-flushers"
# After a Redis failure the redirect writes directly for this long without trying Redis.
REDIS_RETRY_AFTER_SECONDS = 5.0
# A pending entry idle this long belongs to a consumer that died (or failed): reclaim it.
RECLAIM_IDLE_MS = 60_000
DEFAULT_BATCH = 1000


# --- the Redis stream ----------------------------------------------------------------------

# (REDIS_URL, monotonic time until which the redirect does not try Redis).
_redis_down: tuple[str, float] = ("", 0.0)


def buffer_mode() -> str | None:
    """ "spool", "redis" or None (clicks written directly): ``CLICK_BUFFER`` (a Redis stream
    needs ``REDIS_URL``; ``True``, as tests set it, means the stream)."""
    mode = settings.CLICK_BUFFER
    if mode == "spool":
        return "spool"
    if mode in (True, "redis") and settings.REDIS_URL:
        return "redis"
    return None


def buffer_enabled() -> bool:
    return buffer_mode() is not None


def reset_buffer_state() -> None:
    """Forget clients and a remembered Redis outage (tests; after changing REDIS_URL)."""
    global _redis_down
    _clients.clear()
    _groups_ready.clear()
    _redis_down = ("", 0.0)
    _drop_stream_connection()
    spool.close_current()


def record_click(click: ClickData) -> str:
    """Record a counted click: into the spool file or the stream when a buffer is on and takes
    it, otherwise straight into the database. Returns ``"buffered"`` or ``"direct"``."""
    global _redis_down
    mode = buffer_mode()
    if mode == "spool":
        try:
            spool.append(click)
        except OSError as exc:
            logger.warning("Click spool unavailable (%s); writing the click directly.", exc)
        else:
            return "buffered"
    elif mode == "redis":
        url = settings.REDIS_URL
        if not (_redis_down[0] == url and time.monotonic() < _redis_down[1]):
            from redis.exceptions import RedisError

            try:
                _xadd(STREAM_KEY, _encode(click))
            except (RedisError, OSError) as exc:
                _redis_down = (url, time.monotonic() + REDIS_RETRY_AFTER_SECONDS)
                logger.warning("Click buffer unavailable (%s); writing clicks directly.", exc.__class__.__name__)
            else:
                return "buffered"
    record_click_direct(click)
    return "direct"


def _consumer_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


# (REDIS_URL, stream) pairs whose consumer group this process has created or found.
_groups_ready: set[tuple[str, str]] = set()


def _ensure_group(client) -> None:
    from redis.exceptions import ResponseError

    key = (settings.REDIS_URL, STREAM_KEY)
    if key in _groups_ready:
        return
    try:
        client.xgroup_create(STREAM_KEY, GROUP, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise
    _groups_ready.add(key)


def flush_click_buffer(max_batch: int = DEFAULT_BATCH, *, block_ms: int | None = None, reclaim: bool = True) -> int:
    """Move one batch of buffered clicks into the database; return how many stream entries
    were handled (0 when the buffer is off or empty).

    With ``reclaim``, entries a consumer left pending for ``RECLAIM_IDLE_MS`` (it died, or its
    transaction failed) are claimed first (a daemon asks for it now and then, not on every
    batch). Entries are acknowledged and deleted from the stream only once the database
    transaction has committed (``on_commit``: inside a caller's transaction, at its commit;
    never if it rolls back, and then they are reclaimed later). Redis errors propagate to the
    caller.
    """
    mode = buffer_mode()
    if mode is None:
        return 0
    if mode == "spool":
        return spool.flush_spool(max_batch)
    from redis.exceptions import ResponseError

    client = _redis("consumer")
    try:
        return _flush_batch(client, max_batch, block_ms=block_ms, reclaim=reclaim)
    except ResponseError as exc:
        if "NOGROUP" not in str(exc):
            raise
        # The stream or its group was deleted since this process created it: create it again.
        _groups_ready.discard((settings.REDIS_URL, STREAM_KEY))
        return _flush_batch(client, max_batch, block_ms=block_ms, reclaim=reclaim)


def _flush_batch(client, max_batch: int, *, block_ms: int | None, reclaim: bool) -> int:
    consumer = _consumer_name()
    _ensure_group(client)
    entries: list[tuple[bytes, dict]] = []
    if reclaim:
        claimed = client.xautoclaim(
            STREAM_KEY, GROUP, consumer, min_idle_time=RECLAIM_IDLE_MS, start_id="0-0", count=max_batch
        )
        entries.extend((entry_id, fields) for entry_id, fields in claimed[1] if fields)
    if len(entries) < max_batch:
        response = client.xreadgroup(GROUP, consumer, {STREAM_KEY: ">"}, count=max_batch - len(entries), block=block_ms)
        for _stream, items in response or []:
            entries.extend(items)
    if not entries:
        return 0

    clicks: list[ClickData] = []
    for entry_id, fields in entries:
        try:
            clicks.append(_decode(fields))
        except (KeyError, ValueError, TypeError, UnicodeDecodeError):
            logger.error("Dropping malformed click buffer entry %r.", entry_id)
    clicks = drop_clicks_of_deleted_links(clicks)
    write_buffered_clicks(clicks)
    entry_ids = [entry_id for entry_id, _ in entries]
    transaction.on_commit(lambda: _acknowledge(client, entry_ids))
    return len(entries)


# Measured with bench/run.py: under a steady stream of clicks, batches of a few entries cost the
# consumer and PostgreSQL about four times as much per click as batches of hundreds (each batch
# is a few statements and Redis commands whatever its size, and an upsert per link and day it
# touches). The daemon's batches are larger again: at ~6,000 clicks/s on the bench machine, 2,000
# clicks and 400 ms lowered the click's p99 from 17.4 and 16.7 ms to 14.7 and 15.3 ms in two
# interleaved series (BENCHMARKS.md, 2026-12-06), at no cost in throughput; clicks reach the
# database at most ~0.5 s after they were made, and a sign-up never waits for that.
LINGER_MS = 400
LOOP_BATCH = 2000


def consume_click_buffer(
    *,
    batch: int = LOOP_BATCH,
    block_ms: int = 1000,
    linger_ms: int = LINGER_MS,
    stop: Callable[[], bool],
    errors: Callable[[str], object] = logger.warning,
) -> int:
    """The consumer daemon (``manage.py flush_clicks --loop``): flush batches until ``stop()``.

    After a batch smaller than ``batch`` it pauses ``linger_ms`` so that the next one is larger
    (a sign-up never waits for it: the events API flushes a click it cannot find). Entries of a
    dead consumer become claimable after ``RECLAIM_IDLE_MS``; they are looked for twice as often
    as that rather than on every batch. A Redis or database error is reported and retried after
    a second (unacknowledged entries stay pending and are reclaimed). Returns the entries handled."""
    from django.db import DatabaseError, close_old_connections
    from redis.exceptions import RedisError

    total = 0
    next_reclaim = 0.0
    # A stream read blocks until clicks come; the spool is looked at again after the linger.
    spool_mode = buffer_mode() == "spool"
    while not stop():
        close_old_connections()
        try:
            reclaim = time.monotonic() >= next_reclaim
            handled = flush_click_buffer(batch, block_ms=block_ms, reclaim=reclaim)
            if reclaim:
                next_reclaim = time.monotonic() + RECLAIM_IDLE_MS / 2000
            total += handled
            if handled < batch and linger_ms > 0 and (handled or spool_mode):
                _pause(linger_ms / 1000, stop)
        except (RedisError, DatabaseError, OSError) as exc:
            errors(f"Flush failed ({exc.__class__.__name__}: {exc}); retrying in 1 s.")
            close_old_connections()
            _pause(1.0, stop)
    return total


def _pause(seconds: float, stop: Callable[[], bool]) -> None:
    """Sleep, but wake within 50 ms of ``stop()`` turning true (a long linger must not hold up a
    SIGTERM: ``time.sleep`` resumes after a signal handler returns)."""
    deadline = time.monotonic() + seconds
    while not stop():
        left = deadline - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(left, 0.05))


def drain_click_buffer(
    *,
    batch: int = DEFAULT_BATCH,
    seconds: float,
    abort: Callable[[], bool] = lambda: False,
    errors: Callable[[str], object] = logger.warning,
) -> tuple[int, bool]:
    """The daemon's last act on SIGTERM: flush until the buffer is empty, for at most ``seconds``
    (or until ``abort()``: a second signal). With the spool, "empty" means no file left: a file
    whose writer is still alive (a web process not stopped yet) is read as it grows and deleted
    once its writer has gone, so a host stopping all its processes at once leaves nothing on
    disk. Returns (clicks flushed, whether the buffer was emptied). What is left when time runs
    out is not lost: the next flusher reads it."""
    from django.db import DatabaseError, close_old_connections
    from redis.exceptions import RedisError

    deadline = time.monotonic() + seconds
    spool_mode = buffer_mode() == "spool"
    total = 0

    def out_of_time() -> bool:
        return abort() or time.monotonic() >= deadline

    while not out_of_time():
        close_old_connections()
        try:
            # No blocking read (block_ms None), no reclaiming: only what is there now.
            handled = flush_click_buffer(batch, block_ms=None, reclaim=False)
        except (RedisError, DatabaseError, OSError) as exc:
            errors(f"Flush failed while draining ({exc.__class__.__name__}: {exc}); retrying.")
            _pause(0.2, out_of_time)
            continue
        total += handled
        if handled:
            continue
        if not spool_mode or not spool.files_left():
            return total, True
        _pause(0.05, out_of_time)  # a writer still has its file: wait for its lines or its exit
    return total, False


def drop_clicks_of_deleted_links(clicks: list[ClickData]) -> list[ClickData]:
    # A link can be deleted while clicks on it wait in the stream (deletion checks stored
    # clicks only); such clicks can never be stored and must not block the stream forever.
    link_ids = {click.link_id for click in clicks}
    if not link_ids:
        return clicks
    existing = set(Link.objects.filter(pk__in=link_ids).values_list("pk", flat=True))
    if existing == link_ids:
        return clicks
    kept = [click for click in clicks if click.link_id in existing]
    logger.warning("Dropping %d buffered clicks of deleted links.", len(clicks) - len(kept))
    return kept


def _acknowledge(client, entry_ids: Iterable[bytes]) -> None:
    from redis.exceptions import RedisError

    ids = list(entry_ids)
    try:
        pipe = client.pipeline(transaction=False)
        pipe.xack(STREAM_KEY, GROUP, *ids)
        pipe.xdel(STREAM_KEY, *ids)
        pipe.execute()
    except RedisError:
        # Stored but not acknowledged: the entries are reclaimed later and skipped as replays.
        logger.warning("Could not acknowledge %d flushed click entries; they will be re-read.", len(ids))


def flush_click_buffer_all(*, max_batch: int = DEFAULT_BATCH, max_batches: int = 100) -> int:
    """Flush batches until the stream is drained (bounded). Returns the entries handled."""
    total = 0
    for _ in range(max_batches):
        handled = flush_click_buffer(max_batch)
        total += handled
        if handled < max_batch:
            break
    return total


# --- reading ---------------------------------------------------------------------------------


def parse_click_id(value: object) -> uuid.UUID | None:
    if isinstance(value, uuid.UUID):
        return value
    if not isinstance(value, str) or not 32 <= len(value) <= 36:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def click_for_attribution(click_id: str) -> Click | None:
    """The click named by an ``aff_click`` value, with its link, the link's partner and the
    partner's user (what a sign-up needs), or None for garbage or an unknown id. When the id is
    one this server issued, the buffer is flushed (as far as ``flush_for_lookup`` goes) and the
    click looked for again, so a sign-up that arrives right after the click usually finds it;
    one that still does not waits for it (commissions ``AwaitingClick``)."""
    parsed = parse_click_id(click_id)
    if parsed is None:
        return None
    click = click_stored(parsed)
    if click is None and issued_here(parsed) and flush_for_lookup():
        click = click_stored(parsed)
    return click


def click_stored(click_id: uuid.UUID) -> Click | None:
    """The click if it is in the database (no flush), with its link, partner and user."""
    return _click_with_owner(click_id)


def flush_for_lookup() -> bool:
    """Before a second look for a click that was not found: move the buffered clicks into the
    database. False when there is no buffer, or it cannot be read (the click is then
    unknown: the sign-up is unattributed)."""
    if not buffer_enabled():
        return False
    from redis.exceptions import RedisError

    try:
        flush_click_buffer_all(max_batches=10)
    except (RedisError, OSError):
        logger.warning("Click buffer unreachable while looking up a click.")
        return False
    return True


def _click_with_owner(click_id: uuid.UUID) -> Click | None:
    lookup = Click.objects.select_related("link__partner__user").filter(pk=click_id)[:1]  # no ORDER BY
    return next(iter(lookup), None)
