"""URLs of many rows reversed once: a page of rows that each link to an object reverses the
pattern once and puts each id in its place (``{% url %}`` per row cost ~0.2 ms: 5 ms on 25 rows,
more on a report of 100 links)."""

from __future__ import annotations

from collections.abc import Callable

from django.urls import reverse

_SENTINEL = 987654321  # an id no pattern's other text contains


def url_with_id(name: str) -> Callable[[int], str]:
    """``url(pk)`` equal to ``reverse(name, args=[pk])``, the pattern reversed once."""
    pattern = reverse(name, args=[_SENTINEL])
    head, tail = pattern.split(str(_SENTINEL), 1)
    return lambda pk: f"{head}{pk}{tail}"
