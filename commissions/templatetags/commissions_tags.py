from django import template

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
def lifecycle_label(value: str) -> str:
    """A commission's lifecycle state in the panel's words (commissions.lifecycle)."""
    from commissions.lifecycle import STATE_LABELS

    return STATE_LABELS.get(value, value)
