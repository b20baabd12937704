"""How far the click flusher is behind: the age of the oldest click not yet in the database.

Read by /healthz and /metrics. With ``CLICK_BUFFER=spool`` it covers this host's spool (each
web host has its own, and its own flusher); with ``redis``, the shared stream. The age comes
from the click itself (its ``created_at`` in the spool line, its entry id in the stream), so a
flusher that stopped shows as a backlog that keeps growing, even when no new click arrives.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

from tracking import spool
from tracking.click_stream import _redis
from tracking.clicks import STREAM_KEY, buffer_mode


@dataclass(frozen=True)
class Backlog:
    mode: str | None  # "spool", "redis", or None (clicks written directly: never a backlog)
    oldest_age_seconds: float | None  # None: nothing waiting
    pending: int  # bytes (spool) or entries (redis) waiting


def click_backlog() -> Backlog:
    """Raises ``OSError`` (spool) or ``redis.RedisError`` (stream) when it cannot be read."""
    mode = buffer_mode()
    if mode == "spool":
        return _spool_backlog()
    if mode == "redis":
        return _stream_backlog()
    return Backlog(mode=None, oldest_age_seconds=None, pending=0)


def _spool_backlog() -> Backlog:
    directory = spool.spool_dir()
    offsets = spool._load_offsets(directory)
    pending = 0
    oldest: float | None = None
    for path in spool._spool_files(directory):
        with contextlib.suppress(FileNotFoundError):
            start = offsets.get(path.name, 0)
            size = path.stat().st_size
            if size <= start:
                continue
            pending += size - start
            if oldest is None:
                with path.open("rb") as handle:
                    handle.seek(start)
                    line = handle.readline()
                try:
                    oldest = spool.decode(line).created_at.timestamp()
                except (ValueError, TypeError, UnicodeDecodeError):
                    # A line cut short or malformed: the file's name holds its creation time.
                    oldest = int(path.name.split("-", 1)[0]) / 1e9
    age = None if oldest is None else max(0.0, time.time() - oldest)
    return Backlog(mode="spool", oldest_age_seconds=age, pending=pending)


def _stream_backlog() -> Backlog:
    client = _redis("consumer")
    # Flushed entries are deleted (XDEL after XACK), so the stream's first entry is the oldest
    # click not yet in the database; its id starts with its Unix time in milliseconds.
    first = client.xrange(STREAM_KEY, count=1)
    pending = client.xlen(STREAM_KEY)
    if not first:
        return Backlog(mode="redis", oldest_age_seconds=None, pending=pending)
    millis = int(first[0][0].split(b"-")[0])
    return Backlog(mode="redis", oldest_age_seconds=max(0.0, time.time() - millis / 1000), pending=pending)
