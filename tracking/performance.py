"""The performance report: one row per link for a date range, read from the daily rollups,
and its CSV export (the same rows, streamed)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from commissions.display import format_money
from commissions.money import money_str
from config import rows as table_rows
from config.exports import bad_date_range_message, csv_response
from config.reverse import url_with_id
from partners.decorators import partner_required
from tracking.link_performance import SORT_KEYS, LinkPerformance, link_performance, normalise_sort
from tracking.reports import (
    DateRangeError,
    default_range,
    link_destination,
    link_label,
    link_url,
    parse_date_range,
    percent,
)

# (sort key, column title, numeric?) in display order; the titles are the CSV's too, money
# columns naming the program's currency ("{currency}").
COLUMNS = (
    ("description", "Link", False),
    ("trial_days", "Trial", True),
    ("clicks", "Clicks", True),
    ("unique_clicks", "Unique clicks", True),
    ("trials", "Trials", True),
    ("subscriptions", "Subscriptions", True),
    ("click_to_trial", "Click → trial", True),
    ("trial_to_paid", "Trial → paid", True),
    ("commission", "Commission ({currency})", True),
    ("earnings_per_click", "Earnings per click ({currency})", True),
)
CREATIVE_TITLE = "Creative"


def column_titles() -> dict[str, str]:
    return {key: title.format(currency=settings.PROGRAM_CURRENCY) for key, title, _ in COLUMNS}


# Text columns sort A→Z first; numbers largest first.
_FIRST_DIRECTION = {key: ("" if not numeric else "-") for key, _, numeric in COLUMNS}
assert set(_FIRST_DIRECTION) <= set(SORT_KEYS)


def _range(request: HttpRequest) -> tuple[date, date, str]:
    try:
        start, end = parse_date_range(request.GET.get("start"), request.GET.get("end"))
    except DateRangeError as exc:
        start, end = default_range()
        return start, end, f"{exc.message} Showing the last 30 days."
    return start, end, ""


def _ratio_str(value: Decimal | None) -> str:
    return "" if value is None else str((value * 100).quantize(Decimal("0.01")))


def _chart_data(rows: list[LinkPerformance]) -> dict:
    return {
        "currency": settings.PROGRAM_CURRENCY,
        "labels": [link_label(row.link) for row in rows],
        "metrics": {
            "commission": [money_str(row.commission) for row in rows],
            "unique_clicks": [row.unique_clicks for row in rows],
            "clicks": [row.clicks for row in rows],
            "trials": [row.trials for row in rows],
            "subscriptions": [row.subscriptions for row in rows],
        },
    }


def row_numbers(row: LinkPerformance) -> dict:
    """The row's numbers formatted once for the page (thousands separators, rates, dashes)."""
    epc = row.earnings_per_click
    return {
        "clicks": f"{row.clicks:,}",
        "unique_clicks": f"{row.unique_clicks:,}",
        "trials": f"{row.trials:,}",
        "subscriptions": f"{row.subscriptions:,}",
        "click_to_trial": percent(row.click_to_trial),
        "trial_to_paid": percent(row.trial_to_paid),
        "commission": format_money(row.commission),
        "negative": row.commission < 0,
        "earnings_per_click": "—" if epc is None else format_money(epc),
    }


_SHORT_DESTINATION = 44  # characters, with the ellipsis (as the truncatechars filter counts)


def _short(text: str, limit: int = _SHORT_DESTINATION) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


_ROW = (
    "<tr>"
    '<td class="perf-link" data-label="">'
    '<span class="perf-link-title">{label}</span>{disabled} '
    '<span class="perf-link-meta" title="{url}"><code>/r/{code}</code></span> '
    '<span class="perf-link-meta" title="Sends visitors to {destination}">→ {destination_short}</span> '
    '<span class="perf-link-meta"><a href="{sub_ids_url}">By sub-ID</a> · <a href="{sources_url}">Sources</a></span>'
    "</td>"
    '<td class="perf-creative-cell" data-label="{t_creative}">{creative}</td>'
    '<td class="num" data-label="{t_trial_days}">{trial_days} days</td>'
    '<td class="num" data-label="{t_clicks}">{clicks}</td>'
    '<td class="num" data-label="{t_unique_clicks}">{unique_clicks}</td>'
    '<td class="num" data-label="{t_trials}">{trials}</td>'
    '<td class="num" data-label="{t_subscriptions}">{subscriptions}</td>'
    '<td class="num" data-label="{t_click_to_trial}">{click_to_trial}</td>'
    '<td class="num" data-label="{t_trial_to_paid}">{trial_to_paid}</td>'
    '<td class="num{negative}" data-label="{t_commission}">{commission}</td>'
    '<td class="num" data-label="{t_earnings_per_click}">{earnings_per_click}</td>'
    "</tr>\n"
)
_DISABLED = mark_safe(' <span class="badge">Disabled</span>')
_TEXT_LINK = mark_safe('<span class="muted">Text link</span>')


def _creative_cell(creative) -> SafeString:
    if creative is None:
        return _TEXT_LINK
    thumbnail = ""
    if creative.is_image and creative.image:
        size = format_html(' width="{}" height="{}"', creative.width, creative.height) if creative.width else ""
        thumbnail = format_html('<img class="thumb" src="{}" alt=""{} loading="lazy"> ', creative.image.url, size)
    return format_html('{}<span class="perf-creative">{}</span>', thumbnail, creative.title)


def _display(
    row: LinkPerformance, *, template: str, sub_ids_url: Callable[[int], str], sources_url: str, range_query: str
) -> SafeString:
    """One link's ``<tr>``, every value escaped (``config.rows``; the column titles are in
    ``template`` already): the template engine took some 35 lookups a row, ``format_html`` a
    ``conditional_escape`` per value (a report can have hundreds of links)."""
    link = row.link
    destination = link_destination(link)
    numbers = row_numbers(row)
    return table_rows.row(
        template,
        label=link_label(link),
        disabled="" if link.is_active else _DISABLED,
        url=link_url(link),
        code=link.code,
        destination=destination,
        destination_short=_short(destination.split("://", 1)[-1].rstrip("/")),
        sub_ids_url=f"{sub_ids_url(link.pk)}?{range_query}",
        sources_url=f"{sources_url}?{range_query}&link={link.pk}",
        creative=_creative_cell(link.creative),
        trial_days=link.trial_days,
        **{**numbers, "negative": " negative" if numbers["negative"] else ""},
    )


@partner_required
def performance_view(request: HttpRequest) -> HttpResponse:
    start, end, range_error = _range(request)
    sort = normalise_sort(request.GET.get("sort"))
    report = link_performance(request.partner, start, end, sort)
    base_query = f"start={start.isoformat()}&end={end.isoformat()}"
    columns = []
    titles = column_titles()
    for key, _title, numeric in COLUMNS:
        if sort.removeprefix("-") == key:
            next_sort = key if sort.startswith("-") else f"-{key}"
            direction = "descending" if sort.startswith("-") else "ascending"
        else:
            next_sort, direction = _FIRST_DIRECTION[key] + key, "none"
        columns.append(
            {
                "key": key,
                "title": titles[key],
                "numeric": numeric,
                "query": f"{base_query}&sort={next_sort}",
                "aria": direction,
            }
        )
    sub_ids_url = url_with_id("tracking:link_sub_ids")  # reversed once per page, not per link
    sources_url = reverse("tracking:sources")
    template = table_rows.labelled(_ROW, {**titles, "creative": CREATIVE_TITLE}, prefix="t_")
    rows = [
        _display(row, template=template, sub_ids_url=sub_ids_url, sources_url=sources_url, range_query=base_query)
        for row in report.rows
    ]
    totals = report.totals
    return render(
        request,
        "tracking/performance.html",
        {
            "report": report,
            "rows": rows,
            "totals": row_numbers(totals),
            "columns": columns,
            "start": start,
            "end": end,
            "range_error": range_error,
            "export_query": f"{base_query}&sort={sort}" if sort else base_query,
            "chart_data": _chart_data(report.rows),
            "currency": settings.PROGRAM_CURRENCY,
            "titles": titles,
            "creative_title": CREATIVE_TITLE,
            "range_query": base_query,  # the tabs' links
        },
    )


def csv_header() -> list[str]:
    """The page's column titles (the link's label first), then what only the CSV carries."""
    titles = column_titles()
    return [
        titles["description"],
        "Link code",
        "Link URL",
        "Lands on",
        CREATIVE_TITLE,
        titles["trial_days"],
        titles["clicks"],
        titles["unique_clicks"],
        titles["trials"],
        titles["subscriptions"],
        titles["click_to_trial"],
        titles["trial_to_paid"],
        titles["commission"],
        titles["earnings_per_click"],
    ]


@partner_required
def performance_export_view(request: HttpRequest) -> HttpResponse:
    """The report's rows for the same range and order, as CSV (money as two-place strings,
    conversion rates as percentages with two places, empty when undefined)."""
    start, end, range_error = _range(request)
    if range_error:
        # A CSV says nothing about a substituted range: refuse it (issue 17, far dates).
        return bad_date_range_message(range_error.removesuffix(" Showing the last 30 days."))
    report = link_performance(request.partner, start, end, normalise_sort(request.GET.get("sort")))

    def rows():
        for row in report.rows:
            link = row.link
            epc = row.earnings_per_click
            yield (
                link_label(link),
                link.code,
                link_url(link),
                link_destination(link),
                link.creative.title if link.creative else "",
                f"{link.trial_days} days",
                row.clicks,
                row.unique_clicks,
                row.trials,
                row.subscriptions,
                _ratio_str(row.click_to_trial),
                _ratio_str(row.trial_to_paid),
                format_money(row.commission, for_csv=True),
                "" if epc is None else format_money(epc, for_csv=True),
            )

    filename = f"performance-{start.isoformat()}-{end.isoformat()}.csv"
    return csv_response(filename, csv_header(), rows())
