from django import template
from django.conf import settings

from commissions import display
from commissions.selectors import STATUS_LABELS

register = template.Library()


@register.filter
def mask_email(value: str | None) -> str:
    return display.mask_email(value)


@register.filter
def status_label(value: str) -> str:
    return STATUS_LABELS.get(value, value)


@register.filter
def money(value) -> str:
    """``1,493.67 USD`` (the program's currency, never wrapped apart from the amount)."""
    return display.format_money(value, currency=settings.PROGRAM_CURRENCY)


@register.filter
def amount(value) -> str:
    """``1,493.67``: money where the column header names the currency."""
    return display.format_money(value)


@register.filter
def when(value) -> str:
    """``Mar 5, 2026`` for a day, ``Mar 5, 2026, 14:03`` for a moment."""
    return display.format_date(value)


@register.filter
def day(value) -> str:
    """The day of a moment (``Mar 5, 2026``), in the program's time zone."""
    return display.format_day(value)
