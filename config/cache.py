"""The Redis cache backend: Django's, with one client object per connection pool.

Django's ``RedisCacheClient.get_client`` builds a new ``redis.Redis`` for every cache call, and
redis-py's constructor registers ~170 response callbacks each time: about half a millisecond of
CPU per ``cache.add`` on this project's bench machine, paid by every money event (the balance
refresh dedupe key, commissions/handling.py). The client object holds no connection of its own
(the pool does, and it is reused either way), so building it once per pool changes nothing
else. Django gives each thread its own backend instance.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import threading
from collections import OrderedDict

from django.core.cache import cache
from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient


class ReusingRedisCacheClient(RedisCacheClient):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, object] = {}

    def get_client(self, key=None, *, write=False):
        index = self._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            client = self._clients[index] = super().get_client(key, write=write)
        return client


class RedisCache(DjangoRedisCache):
    def __init__(self, server, params) -> None:
        super().__init__(server, params)
        self._class = ReusingRedisCacheClient


# --- a cache that may be down ----------------------------------------------------------------
# Pages read the cache only to skip work: with Redis down they do the work (the database still
# answers) instead of failing. Writes that cannot reach the cache are dropped.

_log = logging.getLogger(__name__)


def cache_get(key: str, default=None):
    """``cache.get``, or ``default`` when the cache does not answer."""
    try:
        return cache.get(key, default)
    except Exception as exc:  # noqa: BLE001 - Redis down or unreachable: same as a miss
        _log.warning("cache unavailable, reading %s from the database: %s", key, exc)
        return default


def cache_set(key: str, value, timeout: float | None) -> None:
    """``cache.set``; nothing when the cache does not answer."""
    with contextlib.suppress(Exception):
        cache.set(key, value, timeout)


def cache_delete(key: str) -> None:
    """``cache.delete``; nothing when the cache does not answer (the entry expires on its own)."""
    with contextlib.suppress(Exception):
        cache.delete(key)


# --- large values many requests read --------------------------------------------------------
# A value of a few hundred kilobytes (a partner's lifecycle history: thousands of Decimals) costs
# more to move and unpickle than the page's queries. Each process keeps the last copies it read
# with the stamp they were written under, and reads the stamp (a few bytes) to know its copy is
# still the cache's. The stamp is written after the value, so a stamp read first never names a
# value newer than the one read after it.

_SHARED_SIZE = 64  # keys held per process
_shared: OrderedDict[str, tuple[str, object]] = OrderedDict()
_shared_lock = threading.Lock()


def _remember(key: str, stamp: str, value) -> None:
    with _shared_lock:
        _shared[key] = (stamp, value)
        _shared.move_to_end(key)
        while len(_shared) > _SHARED_SIZE:
            _shared.popitem(last=False)


def cache_get_shared(key: str, default=None):
    """``cache_get`` of a value written by ``cache_set_shared``, from this process's copy while
    the cache holds the same one. The value is shared between requests: never change it."""
    stamp = cache_get(f"{key}:stamp")
    if stamp is None:
        return default
    with _shared_lock:
        held = _shared.get(key)
    if held is not None and held[0] == stamp:
        return held[1]
    stored = cache_get(key)
    if not (isinstance(stored, tuple) and len(stored) == 2):
        return default
    _remember(key, *stored)
    return stored[1]


def cache_set_shared(key: str, value, timeout: float | None) -> None:
    """``cache_set`` for ``cache_get_shared``: the value under a new stamp."""
    stamp = secrets.token_hex(8)
    cache_set(key, (stamp, value), timeout)
    cache_set(f"{key}:stamp", stamp, timeout)
    _remember(key, stamp, value)
