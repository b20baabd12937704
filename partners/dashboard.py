"""The partner dashboard (KPIs, withdrawal button, default link, trend charts).

The page itself carries the KPIs; the charts fetch ``GET /api/v1/partner/trends`` (the same
JSON the API offers) from static/js/dashboard.js for the period the partner picks.
"""

from __future__ import annotations

import re
from decimal import Decimal

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from commissions.rates import current_rate, own_rate_now, rate_or_default
from partners.decorators import partner_required
from tracking.models import Link
from tracking.reports import DateRangeError, link_url, parse_date_range, partner_summary, period_presets

PERIODS = (
    ("7d", "Last 7 days"),
    ("30d", "Last 30 days"),
    ("90d", "Last 90 days"),
    ("this_month", "This month"),
    ("last_month", "Last month"),
    ("custom", "Custom range"),
)


_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)


def _range_message(exc: DateRangeError) -> str:
    """The API's wording (``start``/``end``) in the page's words (From/To)."""
    if exc.code == "invalid_date":
        return f"{'From' if exc.field == 'start' else 'To'}: enter a date as YYYY-MM-DD."
    if exc.field == "start":
        return "The From date is after the To date."
    return exc.message


def _rate_percent(rate: Decimal) -> str:
    text = f"{rate * 100:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


@partner_required
def dashboard_view(request: HttpRequest) -> HttpResponse:
    partner = request.partner
    summary = partner_summary(partner)
    # The partner's current commission rate read with the default link (no query of its own).
    default_link = (
        Link.objects.filter(partner=partner, is_default=True)
        .annotate(own_rate=own_rate_now(partner_id=partner.pk))
        .first()
    )
    rate = rate_or_default(default_link.own_rate) if default_link else current_rate(partner_id=partner.pk)

    presets = period_presets()
    raw_start, raw_end = request.GET.get("start"), request.GET.get("end")
    # Dates in the URL without a period are a custom range (a shared or bookmarked link).
    period = request.GET.get("period") or ("custom" if raw_start or raw_end else "30d")
    range_error = ""
    start, end = presets["30d"]
    if period == "custom":
        try:
            start, end = parse_date_range(raw_start, raw_end)
        except DateRangeError as exc:
            # Said, not replaced by a default: the partner asked for these dates.
            range_error = _range_message(exc)
    elif period in presets:
        start, end = presets[period]
    else:
        range_error = "Choose a period from the list."
        period = "30d"
    start_value = (raw_start or "") if range_error and period == "custom" else start.isoformat()
    end_value = (raw_end or "") if range_error and period == "custom" else end.isoformat()

    return render(
        request,
        "partners/dashboard.html",
        {
            "summary": summary,
            "withdrawal": summary.withdrawal,
            "default_link_url": link_url(default_link) if default_link else "",
            # The partner's own rate when staff set one (commissions.rates), else the program's.
            "commission_rate_percent": _rate_percent(rate),
            "payout_minimum": settings.PAYOUT_MINIMUM,
            "periods": PERIODS,
            "period": period,
            "start": start,
            "end": end,
            "range_error": range_error,
            "start_value": start_value if _ISO_DAY.fullmatch(start_value) else "",
            "end_value": end_value if _ISO_DAY.fullmatch(end_value) else "",
            "chart_config": {
                "initialError": range_error,
                "trendsUrl": reverse("api:partner_trends"),
                "currency": settings.PROGRAM_CURRENCY,
                "presets": {name: [s.isoformat(), e.isoformat()] for name, (s, e) in presets.items()},
            },
        },
    )
