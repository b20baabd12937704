"""Who clicked: a visitor id and a hashed IP, both keyed with the project's SECRET_KEY.

A visitor keeps the id in the ``aff_vid`` cookie. Without the cookie (first click, or a
browser that refuses cookies) the id is a keyed hash of IP + user agent, and that same value
becomes the cookie, so a visitor refusing cookies still has one stable id per browser and
network. The cookie carries a short signature: a forged ``aff_vid`` (to inflate unique
clicks by sending a new value each time) is ignored and the keyed hash is used instead.

The IP address itself is never stored, only a keyed hash of it (not reversible by hashing
the whole IPv4 space without the key).
"""

from __future__ import annotations

import hmac
import re

from config.keyed import keyed_hmac

VISITOR_COOKIE = "aff_vid"
VISITOR_COOKIE_MAX_AGE = 2 * 365 * 86400
_ID_HEX = 32
_SIG_HEX = 16
_COOKIE_RE = re.compile(rf"^[0-9a-f]{{{_ID_HEX}}}\.[0-9a-f]{{{_SIG_HEX}}}$")


def _mac(purpose: str, message: str) -> str:
    return keyed_hmac(f"tracking.{purpose}", message).hexdigest()


def _sign(visitor_id: str) -> str:
    return f"{visitor_id}.{_mac('visitor-cookie', visitor_id)[:_SIG_HEX]}"


def visitor_from_cookie(value: str | None) -> str | None:
    """The visitor id in a well-formed, correctly signed ``aff_vid`` cookie, else None."""
    if not value or len(value) != _ID_HEX + 1 + _SIG_HEX or not _COOKIE_RE.match(value):
        return None
    visitor_id = value[:_ID_HEX]
    if not hmac.compare_digest(value, _sign(visitor_id)):
        return None
    return visitor_id


def visitor_from_request(ip: str, user_agent: str) -> str:
    """The cookie-less visitor id: a keyed hash of IP + user agent."""
    return _mac("visitor", f"{ip}\n{user_agent}")[:_ID_HEX]


def visitor_cookie_value(visitor_id: str) -> str:
    return _sign(visitor_id)


def hash_ip(ip: str) -> str:
    return _mac("ip", ip) if ip else ""
