"""Keyed hashes: HMAC-SHA256 under a key derived from SECRET_KEY for one purpose.

Used wherever a value must be recognisable again (the same input gives the same output) but
not reversible without the server's key: visitor ids and IP hashes on the click path, the
pseudonymous addresses of failed logins. Each purpose has its own key, so a hash made for one
purpose means nothing for another. Changing a purpose string or this derivation changes every
stored hash and signed visitor cookie made with it.
"""

from __future__ import annotations

import hashlib
import hmac
from functools import cache

from django.conf import settings


@cache
def _key(purpose: str, secret: str) -> bytes:
    return hashlib.sha256(f"partner-panel.{purpose}|{secret}".encode()).digest()


def keyed_hmac(purpose: str, message: str) -> hmac.HMAC:
    """HMAC-SHA256 of ``message`` under the key of ``purpose`` (``.digest()``/``.hexdigest()``)."""
    return hmac.new(_key(purpose, settings.SECRET_KEY), message.encode(), hashlib.sha256)
