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
