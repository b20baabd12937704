"""The partner's promo codes on the Resources page (the list with each code's numbers, and the
form asking staff for a new code) and on the Performance page's Promo codes tab (page and CSV)."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from commissions.display import format_money
from commissions.selectors import promo_code_stats
from config.exports import bad_date_range_message, csv_response
from partners.decorators import partner_required
from partners.models import Partner
from tracking.forms import PromoCodeRequestForm
from tracking.models import PromoCode
from tracking.reports import DateRangeError, default_range, parse_date_range
from tracking.selectors import promo_code_list
from tracking.services import PromoCodeError, promo_code_request

PROMO_CODES_PER_PAGE = 20
# The CSV reads the partner's codes this many at a time (three grouped queries per chunk).
EXPORT_CHUNK = 500


@dataclass(frozen=True)
class CodesPage:
    """A page of the partner's codes read without a COUNT (one query): enough to offer
    "previous" and "next" on a report whose query budget is tight."""

    codes: list[PromoCode]
    number: int
    has_next: bool

    @property
    def has_previous(self) -> bool:
        return self.number > 1


def promo_codes_page(*, partner: Partner, page: str | None) -> CodesPage:
    number = int(page) if page and page.isdigit() and 0 < int(page) < 1_000_000 else 1
    offset = (number - 1) * PROMO_CODES_PER_PAGE
    rows = list(promo_code_list(partner=partner)[offset : offset + PROMO_CODES_PER_PAGE + 1])
    return CodesPage(codes=rows[:PROMO_CODES_PER_PAGE], number=number, has_next=len(rows) > PROMO_CODES_PER_PAGE)


def promo_codes_context(request: HttpRequest, partner: Partner, form: PromoCodeRequestForm | None = None) -> dict:
    """What the Resources page shows of the partner's codes (a page of them, all-time numbers)."""
    page = Paginator(promo_code_list(partner=partner), PROMO_CODES_PER_PAGE).get_page(request.GET.get("codes_page"))
    return {
        "promo_codes_page": page,
        "promo_codes": promo_code_stats(partner=partner, codes=list(page.object_list)),
        "promo_code_form": form or PromoCodeRequestForm(initial={"trial_days": 14}),
        "attribution_window_days": settings.ATTRIBUTION_WINDOW_DAYS,
    }


@partner_required
@require_POST
def promo_code_request_view(request: HttpRequest) -> HttpResponse:
    form = PromoCodeRequestForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            promo_code_request(
                partner=request.partner,
                code=data["code"],
                trial_days=data["trial_days"],
                description=data["description"],
            )
        except PromoCodeError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            messages.success(request, "Code requested. We will review it shortly; it works once approved.")
            return redirect(reverse("tracking:resources") + "#promo-codes")
    return render(
        request, "tracking/promo_code_request.html", promo_codes_context(request, request.partner, form), status=400
    )


def performance_columns() -> tuple[str, ...]:
    """The Promo codes tab's column titles: the table's header and the CSV's."""
    return ("Code", "Trial", "Sign-ups", "Subscriptions", f"Commission ({settings.PROGRAM_CURRENCY})")


@partner_required
def promo_code_performance_view(request: HttpRequest) -> HttpResponse:
    """Performance of the partner's promo codes for a date range (a tab of the Performance page,
    which keeps its own query budget)."""
    try:
        start, end = parse_date_range(request.GET.get("start"), request.GET.get("end"))
        range_error = ""
    except DateRangeError as exc:
        start, end = default_range()
        range_error = f"{exc.message} Showing the last 30 days."
    page = promo_codes_page(partner=request.partner, page=request.GET.get("codes_page"))
    return render(
        request,
        "tracking/promo_code_performance.html",
        {
            "promo_codes": promo_code_stats(partner=request.partner, codes=page.codes, start=start, end=end),
            "promo_codes_page": page,
            "start": start,
            "end": end,
            "range_error": range_error,
            "range_query": f"start={start.isoformat()}&end={end.isoformat()}",
            "columns": performance_columns(),
            "attribution_window_days": settings.ATTRIBUTION_WINDOW_DAYS,
        },
    )


@partner_required
def promo_code_performance_export_view(request: HttpRequest) -> HttpResponse:
    """Every one of the partner's codes with its numbers for the range, as CSV: the tab's columns
    and order, streamed (the codes read ``EXPORT_CHUNK`` at a time), money as two-place numbers."""
    try:
        start, end = parse_date_range(request.GET.get("start"), request.GET.get("end"))
    except DateRangeError as exc:
        # A CSV says nothing about a substituted range: refuse it, as the other exports do.
        return bad_date_range_message(exc.message)
    partner = request.partner

    def rows():
        offset = 0
        while True:
            codes = list(promo_code_list(partner=partner)[offset : offset + EXPORT_CHUNK])
            for row in promo_code_stats(partner=partner, codes=codes, start=start, end=end):
                yield (
                    row.code.code,
                    f"{row.code.trial_days} days",
                    row.sign_ups,
                    row.subscriptions,
                    format_money(row.commission, for_csv=True),
                )
            if len(codes) < EXPORT_CHUNK:
                return
            offset += EXPORT_CHUNK

    filename = f"promo-codes-{start.isoformat()}-{end.isoformat()}.csv"
    return csv_response(filename, performance_columns(), rows())
