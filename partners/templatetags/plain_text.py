"""Filters for plain-text emails."""

from django import template

from partners.validators import one_line as _one_line

register = template.Library()


@register.filter
def one_line(value: object) -> str:
    """The value with control characters (line breaks included) made spaces: partner-typed text
    in a staff email stays on its line even if a row holds one (partners/validators.py)."""
    return _one_line(value)
