"""The client's address, behind as many trusted reverse proxies as TRUSTED_PROXY_COUNT says.

Each proxy appends the address it received the request from to X-Forwarded-For, so the client
is the entry `count` places from the right; anything further left was written by the client
and cannot be trusted. With no proxy (the default), REMOTE_ADDR is the client.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str:
    remote = request.META.get("REMOTE_ADDR", "") or ""
    count = settings.TRUSTED_PROXY_COUNT
    if count <= 0:
        return remote
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    if not forwarded:
        return remote
    return forwarded[-count] if len(forwarded) >= count else forwarded[0]
