"""Fixed-window request counters in the shared cache, for the forms that send email or reveal
whether an account exists (password reset, sign-up, the confirmation link's resend).

The counters live in the default cache, which production requires to be shared by every web
process (config/settings.py refuses to start on a per-process cache): a limit counted per worker
is that limit times the workers. Keys hold digests, never a raw email or address.
"""

from __future__ import annotations

import hashlib
import logging

from django.core.cache import cache

logger = logging.getLogger(__name__)


class ThrottleUnavailable(Exception):
    """The cache holding the counters is unreachable: the limit cannot be enforced."""


def throttle_hit(*, scope: str, key: str, limit: int, window_seconds: int = 3600) -> bool:
    """Count one request of ``key`` in ``scope``; True when it is over ``limit`` in the window.
    Raises ``ThrottleUnavailable`` when the cache cannot count (callers fail closed)."""
    digest = hashlib.sha256(f"{scope}\0{key}".encode()).hexdigest()
    cache_key = f"throttle:{scope}:{digest}"
    try:
        cache.add(cache_key, 0, timeout=window_seconds)
        try:
            count = cache.incr(cache_key)
        except ValueError:  # expired between add and incr
            cache.add(cache_key, 1, timeout=window_seconds)
            count = 1
    except Exception as exc:
        logger.warning("Throttle %s unavailable: %s", scope, exc.__class__.__name__)
        raise ThrottleUnavailable(scope) from exc
    return count > limit
