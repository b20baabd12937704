"""The partner dashboard (KPIs, withdrawal button, default link, trend charts).

The page itself carries the KPIs; the charts fetch ``GET /api/v1/partner/trends`` (the same
JSON the API offers) from static/js/dashboard.js for the period the partner picks.
"""

from __future__ import annotations

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
    period = request.GET.get("period", "30d")
    if period not in dict(PERIODS):
        period = "30d"
    start, end = presets.get(period, presets["30d"])
    range_error = ""
    if period == "custom":
        try:
            start, end = parse_date_range(request.GET.get("start"), request.GET.get("end"))
        except DateRangeError as exc:
            range_error = exc.message
            period, (start, end) = "30d", presets["30d"]

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
            "chart_config": {
                "trendsUrl": reverse("api:partner_trends"),
                "currency": settings.PROGRAM_CURRENCY,
                "presets": {name: [s.isoformat(), e.isoformat()] for name, (s, e) in presets.items()},
            },
        },
    )
