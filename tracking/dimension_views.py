"""The Performance report's breakdowns: one link by sub-ID (page and CSV) and the Sources view
(referring site, device, country) for all of a partner's links or one of them, with a chart."""

from __future__ import annotations

from datetime import date

from django.conf import settings
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from commissions.display import format_money
from config.exports import bad_date_range_message, csv_response
from partners.decorators import partner_required
from tracking.dimensions import NONE, SOURCE_DIMENSIONS, SUB_ID_DIMENSIONS, source_breakdown, sub_id_breakdown
from tracking.models import Link
from tracking.reports import DateRangeError, default_range, link_label, parse_date_range, percent
from tracking.sources import DEVICE_LABELS

ROWS_PER_PAGE = 50
SOURCE_TITLES = {"referrer": "Referring site", "device": "Device", "country": "Country"}
NONE_LABELS = {
    "referrer": "Direct or hidden (no referring site)",
    "device": "Unknown",
    "country": "Unknown",
    "sub1": "(none)",
    "sub2": "(none)",
    "sub3": "(none)",
}


def _range(request: HttpRequest) -> tuple[date, date, str]:
    try:
        start, end = parse_date_range(request.GET.get("start"), request.GET.get("end"))
    except DateRangeError as exc:
        start, end = default_range()
        return start, end, f"{exc.message} Showing the last 30 days."
    return start, end, ""


def _label(dimension: str, value: str) -> str:
    if value == NONE:
        return NONE_LABELS[dimension]
    if dimension == "device":
        return DEVICE_LABELS.get(value, value)
    return value


def _own_link(request: HttpRequest, link_id: int | str | None) -> Link | None:
    if link_id is None or not str(link_id).isdigit():
        return None
    link = Link.objects.filter(partner=request.partner, pk=int(link_id)).select_related("partner").first()
    if link is None:
        raise Http404("No such link.")
    return link


@partner_required
def link_sub_ids_view(request: HttpRequest, link_id: int) -> HttpResponse:
    link = _own_link(request, link_id)
    start, end, range_error = _range(request)
    by = request.GET.get("by", "sub1")
    if by not in SUB_ID_DIMENSIONS:
        by = "sub1"
    rows = sub_id_breakdown(link=link, dimension=by, start=start, end=end)
    page = Paginator(rows, ROWS_PER_PAGE).get_page(request.GET.get("page"))
    range_query = f"start={start.isoformat()}&end={end.isoformat()}"
    return render(
        request,
        "tracking/link_sub_ids.html",
        {
            "link": link,
            "label": link_label(link),
            "by": by,
            "dimensions": SUB_ID_DIMENSIONS,
            "page_obj": page,
            "rows": [
                {"row": row, "label": _label(by, row.value), "click_to_trial": percent(row.click_to_trial)}
                for row in page.object_list
            ],
            "start": start,
            "end": end,
            "range_error": range_error,
            "range_query": range_query,
            "query_string": f"{range_query}&by={by}",
            "currency": settings.PROGRAM_CURRENCY,
        },
    )


def sub_id_csv_header() -> tuple[str, ...]:
    """The page's column titles (the sub-ID's name and the link first, one CSV for any of them)."""
    currency = settings.PROGRAM_CURRENCY
    return (
        "Link",
        "Sub-ID",
        "Value",
        "Clicks",
        "Unique clicks",
        "Trials",
        "Subscriptions",
        f"Commission ({currency})",
    )


@partner_required
def link_sub_ids_export_view(request: HttpRequest, link_id: int) -> HttpResponse:
    """Every sub-ID value of the link for the range, as CSV ("(none)" as an empty value)."""
    link = _own_link(request, link_id)
    start, end, range_error = _range(request)
    if range_error:
        return bad_date_range_message(range_error.removesuffix(" Showing the last 30 days."))
    by = request.GET.get("by", "sub1")
    if by not in SUB_ID_DIMENSIONS:
        by = "sub1"
    rows = sub_id_breakdown(link=link, dimension=by, start=start, end=end)
    body = (
        (
            link.code,
            by,
            row.value,
            row.clicks,
            row.unique_clicks,
            row.trials,
            row.subscriptions,
            format_money(row.commission, for_csv=True),
        )
        for row in rows
    )
    return csv_response(f"{link.code}-{by}-{start.isoformat()}-{end.isoformat()}.csv", sub_id_csv_header(), body)


@partner_required
def sources_view(request: HttpRequest) -> HttpResponse:
    start, end, range_error = _range(request)
    by = request.GET.get("by", "referrer")
    if by not in SOURCE_DIMENSIONS:
        by = "referrer"
    link = _own_link(request, request.GET.get("link"))
    rows = source_breakdown(partner=request.partner, dimension=by, start=start, end=end, link=link)
    page = Paginator(rows, ROWS_PER_PAGE).get_page(request.GET.get("page"))
    range_query = f"start={start.isoformat()}&end={end.isoformat()}"
    link_query = f"&link={link.pk}" if link is not None else ""
    labels = [_label(by, row.value) for row in rows]
    return render(
        request,
        "tracking/sources.html",
        {
            "link": link,
            "link_label": link_label(link) if link is not None else "",
            "by": by,
            "titles": SOURCE_TITLES,
            "by_title": SOURCE_TITLES[by],
            "page_obj": page,
            "rows": [{"row": row, "label": _label(by, row.value)} for row in page.object_list],
            "start": start,
            "end": end,
            "range_error": range_error,
            "range_query": range_query,
            "link_query": link_query,
            "query_string": f"{range_query}&by={by}{link_query}",
            "chart_data": {
                "currency": settings.PROGRAM_CURRENCY,
                "noun": SOURCE_TITLES[by].lower() + " values",
                "labels": labels,
                "metrics": {
                    "clicks": [row.clicks for row in rows],
                    "unique_clicks": [row.unique_clicks for row in rows],
                },
            },
        },
    )
