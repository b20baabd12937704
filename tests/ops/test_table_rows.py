"""config.rows writes what Django's format_html writes (the long tables' rows use it)."""

from __future__ import annotations

from decimal import Decimal

from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from config import rows

TEMPLATE = '<tr data-label="{l_name}"><td title="{a}">{b}</td><td>{c}</td><td class="num{d}">{e}</td></tr>'
VALUES = {
    "a": "He said \"hi\" & <left> 'quickly'",
    "b": mark_safe("<b>kept</b>"),
    "c": Decimal("-12.50"),
    "d": "",
    "e": 1234,
}


def test_a_row_is_what_format_html_writes():
    expected = format_html(TEMPLATE, l_name="Name <x> & {y}", **VALUES)
    got = rows.row(rows.labelled(TEMPLATE, {"name": "Name <x> & {y}"}), **VALUES)
    assert got == expected
    assert isinstance(got, SafeString)


def test_values_are_escaped_and_safe_ones_kept():
    got = rows.row(
        "<td>{v}</td><td>{w}</td><td>{n}</td>", v="<script>alert('x')</script>", w=format_html("<i>{}</i>", "&"), n=None
    )
    assert got == "<td>&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;</td><td><i>&amp;</i></td><td>None</td>"


def test_a_label_with_braces_stays_text():
    template = rows.labelled("<th>{l_odd}</th><td>{v}</td>", {"odd": "{v} & }{"})
    assert rows.row(template, v="x") == "<th>{v} &amp; }{</th><td>x</td>"
