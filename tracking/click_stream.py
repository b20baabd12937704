"""The Redis stream's client side (``CLICK_BUFFER=redis``): the clients, the redirect's own
connection for ``XADD`` and the entry format. ``tracking.clicks`` decides when to use them."""

from __future__ import annotations

import os
import threading
import uuid
from datetime import UTC, datetime, timedelta

from django.conf import settings

from tracking.click_writes import ClickData

# The redirect waits at most this long for Redis before writing the click directly.
REDIS_TIMEOUT_SECONDS = 0.25

_clients: dict[tuple[str, str], object] = {}

# Guards the lazy creation below: two threads creating a client at once would leave one of them
# unreferenced, and a garbage-collected redis.Redis closes its whole pool — connections other
# threads are using included (they then fail mid-command with "I/O operation on closed file").
_clients_lock = threading.Lock()


def _redis(purpose: str):
    """A client for the redirect (fails fast) or for the consumer (may block on reads)."""
    url = settings.REDIS_URL
    client = _clients.get((url, purpose))
    if client is not None:
        return client
    with _clients_lock:
        client = _clients.get((url, purpose))
        return client if client is not None else _new_client(url, purpose)


def _new_client(url: str, purpose: str):
    """Caller holds ``_clients_lock``."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    timeout = REDIS_TIMEOUT_SECONDS if purpose == "redirect" else 30.0
    client = redis.Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=REDIS_TIMEOUT_SECONDS if purpose == "redirect" else 5.0,
        retry=Retry(NoBackoff(), 0),
    )
    _clients[(url, purpose)] = client
    return client


# The redirect's connection for XADD, one per thread (gthread workers run several threads).
_local = threading.local()


def _drop_stream_connection() -> None:
    conn = getattr(_local, "conn", None)
    _local.conn = None
    if conn is not None and _local.pid == os.getpid():
        conn.disconnect()


def _pack_xadd(key: str, fields: dict[str, str]) -> bytes:
    """``XADD key * field value …`` in the Redis protocol (RESP: an array of bulk strings),
    UTF-8 encoded as redis-py would; about ten times cheaper than ``Connection.pack_command``,
    which encodes argument by argument through its generic encoder."""
    parts = [b"*%d\r\n$4\r\nXADD\r\n" % (3 + 2 * len(fields)), _bulk(key), b"$1\r\n*\r\n"]
    for name, value in fields.items():
        parts.append(_bulk(name))
        parts.append(_bulk(value))
    return b"".join(parts)


def _bulk(text: str) -> bytes:
    data = text.encode()
    return b"$%d\r\n%s\r\n" % (len(data), data)


def _xadd(key: str, fields: dict[str, str]) -> None:
    """``XADD key * field value …`` and wait for Redis's answer (the entry id): the click
    is in Redis before the visitor gets the redirect.

    Sent on a connection this thread keeps from the redirect client's pool, without going
    through ``Redis.execute_command`` (pool checkout and release, retry wrapper, option parsing
    on every call) and packed by ``_pack_xadd``: the same command and reply for a fraction of
    the client CPU, and it is the only Redis command of the hot path. Any error drops the connection (the next click opens a new
    one) and propagates, so the caller falls back to the database as before."""
    pool = _redis("redirect").connection_pool
    conn = getattr(_local, "conn", None)
    if conn is None or _local.pool is not pool or _local.pid != os.getpid():
        if conn is not None and _local.pid == os.getpid():
            conn.disconnect()
        # Kept for the thread's life, never released: the pool counts it as in use.
        conn = pool.get_connection()
        _local.conn, _local.pool, _local.pid = conn, pool, os.getpid()
    try:
        conn.send_packed_command([_pack_xadd(key, fields)], check_health=False)
        conn.read_response()
    except BaseException:
        _local.conn = None
        conn.disconnect()
        raise


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _encode(click: ClickData) -> dict[str, str]:
    micros = (click.created_at - _EPOCH) // timedelta(microseconds=1)
    return {
        "id": click.id.hex,
        "l": str(click.link_id),
        "p": str(click.partner_id),
        "v": click.visitor_id,
        "t": str(micros),
        "ip": click.ip_hash,
        "ua": click.user_agent,
        "rf": click.referer,
        **{
            key: value
            for key, value in (("s1", click.sub1), ("s2", click.sub2), ("s3", click.sub3), ("cc", click.country))
            if value
        },
    }


def _decode(fields: dict) -> ClickData:
    f = {
        (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
        for k, v in fields.items()
    }
    visitor_id = f["v"]
    if not visitor_id or len(visitor_id) > 64:
        raise ValueError("bad visitor id")
    return ClickData(
        id=uuid.UUID(hex=f["id"]),
        link_id=int(f["l"]),
        partner_id=int(f["p"]),
        visitor_id=visitor_id,
        created_at=_EPOCH + timedelta(microseconds=int(f["t"])),
        ip_hash=f.get("ip", "")[:64],
        user_agent=f.get("ua", "")[:512],
        referer=f.get("rf", "")[:1024],
        sub1=f.get("s1", "")[:100],
        sub2=f.get("s2", "")[:100],
        sub3=f.get("s3", "")[:100],
        country=f.get("cc", "")[:2],
    )
