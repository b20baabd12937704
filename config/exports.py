"""Streaming CSV downloads: rows are produced lazily from an iterator, so a million-row export
keeps constant memory (use ``queryset.iterator(chunk_size=…)`` or ``values_list`` for rows).

Money and dates in the rows come from ``commissions.display`` (``format_money``/``format_date``
with ``for_csv=True``) and the header uses the page's column titles."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Sequence

from django.http import HttpResponse, StreamingHttpResponse


class _Echo:
    def write(self, value: str) -> str:
        return value


_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


def _safe(value: object) -> object:
    # Text starting with =, +, -, @ is a formula to spreadsheet programs (CSV injection);
    # plain numbers such as "-9.80" are left alone.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r") and not _NUMBER.match(value):
        return "'" + value
    return value


def csv_response(filename: str, header: Sequence[str], rows: Iterable[Sequence[object]]) -> StreamingHttpResponse:
    writer = csv.writer(_Echo())

    def generate():
        # A UTF-8 byte-order mark first: without it Excel reads the file as the system's legacy
        # code page and garbles "—", "×" and every accented name.
        yield "\ufeff" + writer.writerow(header)
        for row in rows:
            yield writer.writerow([_safe(v) for v in row])

    response = StreamingHttpResponse(generate(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response


def bad_date_range(form) -> HttpResponse:
    """A CSV download whose date filter is invalid: refused whole with 400 and the form's words
    (never a file of everything, nor a stream that stops half-way)."""
    messages = [str(message) for errors in form.errors.values() for message in errors]
    return HttpResponse(" ".join(messages) + "\n", status=400, content_type="text/plain; charset=utf-8")


def bad_date_range_message(message: str) -> HttpResponse:
    return HttpResponse(message + "\n", status=400, content_type="text/plain; charset=utf-8")
