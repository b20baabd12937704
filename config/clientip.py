"""The client's address, behind as many trusted reverse proxies as TRUSTED_PROXY_COUNT says.

Each proxy appends the address it received the request from to X-Forwarded-For, so the client
is the entry `count` places from the right; anything further left was written by the client
and cannot be trusted. With no proxy (the default), REMOTE_ADDR is the client.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest

from config.keyed import keyed_hmac


def client_ip(request: HttpRequest) -> str:
    remote = request.META.get("REMOTE_ADDR", "") or ""
    count = settings.TRUSTED_PROXY_COUNT
    if count <= 0:
        return remote
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    if not forwarded:
        return remote
    return forwarded[-count] if len(forwarded) >= count else forwarded[0]


def pseudonymous_ip(request: HttpRequest) -> str:
    """The client's address as django-axes stores it (AXES_CLIENT_IP_CALLABLE): a keyed hash
    of it, written as an IPv6 address in the unique-local block fd00::/8, which no client
    address on the Internet has. One client address always gives the same value, so the
    per-address lockout works unchanged, but failed-login records hold no address (axes's
    column is an IP address field, hence the shape). Keyed with SECRET_KEY: without the key
    the whole IPv4 space cannot be hashed to reverse it."""
    digest = keyed_hmac("login-throttle-ip", client_ip(request)).digest()
    return str(ipaddress.IPv6Address(b"\xfd" + digest[:15]))
