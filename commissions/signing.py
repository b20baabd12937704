"""The merchant events signature (docs/reference.md "Merchant events API").

``X-Partner-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(EVENTS_SIGNING_SECRET, "<t>.<raw body>")>``

The timestamp is inside the signed text, so an old request cannot be replayed with a fresh
``t``; the tolerance bounds how long a captured request stays usable. Several ``v1=`` values
may be sent (while the merchant rotates its secret); one matching is enough.
"""

from __future__ import annotations

import hashlib
import hmac
import time

from config.errors import PortalError

HEADER = "X-Partner-Signature"


def _clock() -> float:
    """The server's time in Unix seconds (its own function so tests can freeze it)."""
    return time.time()


class SignatureError(PortalError):
    """The request is not provably from the merchant: answered with 401."""

    code = "invalid_signature"


def compute_signature(*, secret: str, timestamp: int, body: bytes) -> str:
    """Hex HMAC-SHA256 of ``"<timestamp>.<body>"`` under ``secret``."""
    signed = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def signature_header(*, secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The header value a merchant sends (used by tests, the simulator and the docs' example)."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    return f"t={timestamp},v1={compute_signature(secret=secret, timestamp=timestamp, body=body)}"


def _parse(header: str) -> tuple[int, list[str]]:
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            if not value.isascii() or not value.isdigit() or len(value) > 12:
                raise SignatureError("The signature timestamp t must be a Unix time in seconds.")
            timestamp = int(value)
        elif key == "v1":
            signatures.append(value.strip())
    if timestamp is None or not signatures:
        raise SignatureError(f"The {HEADER} header must look like t=<unix seconds>,v1=<hex signature>.")
    return timestamp, signatures


def verify_signature(*, header: str | None, body: bytes, secret: str, tolerance: int, now: float | None = None) -> None:
    """Raise ``SignatureError`` unless ``header`` signs ``body`` with ``secret`` at a time within
    ``tolerance`` seconds of ``now``. Signatures are compared in constant time."""
    if not header:
        raise SignatureError(f"The {HEADER} header is missing.", code="missing_signature")
    timestamp, signatures = _parse(header)
    now = _clock() if now is None else now
    if abs(now - timestamp) > tolerance:
        raise SignatureError(
            f"The signature timestamp is more than {tolerance} seconds from our clock; sign each request when you send it.",
            code="signature_expired",
        )
    expected = compute_signature(secret=secret, timestamp=timestamp, body=body).encode("ascii")
    # Check every candidate (no early exit) so timing says nothing about which one matched.
    matched = False
    for candidate in signatures:
        matched |= hmac.compare_digest(expected, candidate.encode("utf-8", "replace"))
    if not matched:
        raise SignatureError("The signature does not match the body; sign the exact bytes you send.")
