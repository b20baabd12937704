"""How referrals and money look to a partner (pages, CSV) and to the merchant (API JSON)."""

from __future__ import annotations

from datetime import UTC, datetime


def mask_email(email: str | None) -> str:
    """``john@example.com`` → ``j***@example.com``: partners see whom they referred without
    learning their customers' addresses."""
    if not email:
        return ""
    local, at, domain = email.partition("@")
    if not at:
        return local[:1] + "***"
    return f"{local[:1]}***@{domain}"


def iso_utc(moment: datetime | None) -> str | None:
    """A timestamp in API JSON: ISO 8601 in UTC with a ``Z``."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
