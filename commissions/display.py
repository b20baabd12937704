"""How referrals, money and dates look to a partner (pages, CSV) and to the merchant (API JSON).

Every page and every CSV formats money with ``format_money`` and dates with ``format_date``
(templates through the ``money``, ``amount`` and ``when`` filters, built into every template):
one rule each, so a number reads the same on the dashboard, in a table and in a download.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from django.utils import timezone

from commissions.money import ZERO, cents

# A no-break space between an amount and its currency: "1,493.67 USD" never wraps "USD" alone
# onto the next line.
NBSP = "\u00a0"


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


def format_money(amount: Decimal | int | None, *, currency: str = "", for_csv: bool = False) -> str:
    """Money for people: rounded half-up to the cent (``cents``), two places, thousands
    separated (``1,493.67``), the currency after a no-break space when given.

    ``for_csv`` writes the same amount without separators (``1493.67``), which spreadsheets
    read as a number in every locale; the currency then has its own column or header."""
    value = cents(Decimal(amount) if amount is not None else ZERO)
    text = f"{value:f}" if for_csv else f"{value:,.2f}"
    return f"{text}{NBSP}{currency}" if currency and not for_csv else text


def format_date(value: date | datetime | None, *, for_csv: bool = False) -> str:
    """A day or a moment for people, in the program's time zone: ``Mar 5, 2026`` and
    ``Mar 5, 2026, 14:03``. ``for_csv`` writes ``2026-03-05`` and ``2026-03-05 14:03:07``
    (whole seconds, no offset: the program's time zone, which spreadsheets read as a date)."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        local = timezone.localtime(value) if timezone.is_aware(value) else value
        if for_csv:
            return local.strftime("%Y-%m-%d %H:%M:%S")
        return f"{local:%b} {local.day}, {local.year}, {local:%H:%M}"
    if for_csv:
        return value.isoformat()
    return f"{value:%b} {value.day}, {value.year}"


def format_day(value: date | datetime | None) -> str:
    """The day of a moment, or a day, for people (``Mar 5, 2026``), in the program's time zone."""
    if isinstance(value, datetime):
        value = timezone.localdate(value) if timezone.is_aware(value) else value.date()
    return format_date(value)
