"""config.cache.RedisCache: Django's Redis cache, reusing one client object per pool."""

from __future__ import annotations

import os

import pytest

from config.cache import RedisCache


@pytest.fixture
def redis_cache():
    url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/1"
    backend = RedisCache(url, {"OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}, "KEY_PREFIX": "t-cb"})
    try:
        backend.get("ping")
    except Exception as exc:  # any connection error means: no Redis here
        pytest.skip(f"Redis is not reachable at {url} ({exc.__class__.__name__})")
    yield backend
    backend.delete_many(["k1", "k2"])


def test_it_behaves_as_djangos_redis_cache(redis_cache):
    assert redis_cache.add("k1", 1, timeout=30) is True
    assert redis_cache.add("k1", 2, timeout=30) is False
    assert redis_cache.get("k1") == 1
    redis_cache.set("k2", {"a": [1, 2]}, timeout=30)
    assert redis_cache.get("k2") == {"a": [1, 2]}
    assert redis_cache.delete("k1") is True
    assert redis_cache.get("k1") is None


def test_one_client_object_serves_every_call(redis_cache):
    client = redis_cache._cache.get_client(write=True)
    redis_cache.add("k1", 1, timeout=30)
    assert redis_cache._cache.get_client(write=True) is client
    assert redis_cache._cache.get_client(write=False) is redis_cache._cache.get_client(write=False)


def test_a_shared_value_is_read_once_per_process_while_the_cache_holds_it():
    from django.core.cache import cache

    from config.cache import cache_get_shared, cache_set_shared

    value = {"history": [1, 2, 3]}
    cache_set_shared("t-shared", value, 30)
    assert cache_get_shared("t-shared") is value  # this process's copy, not unpickled again
    # Another process writes a new value: the stamp changes and the new value is read.
    cache.set("t-shared", ("other-stamp", {"history": [4]}), 30)
    cache.set("t-shared:stamp", "other-stamp", 30)
    assert cache_get_shared("t-shared") == {"history": [4]}
    # The cache lost it (expired, flushed): a miss, whatever this process still holds.
    cache.delete("t-shared:stamp")
    assert cache_get_shared("t-shared", "missing") == "missing"
    cache.delete("t-shared")
