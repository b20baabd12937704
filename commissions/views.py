"""The referrals and commissions pages, their CSV exports, and a referral's timeline."""

from __future__ import annotations

from django.conf import settings
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from commissions import lifecycle
from commissions.forms import DateRangeForm, ReferralFilterForm
from commissions.models import Referral
from commissions.selectors import (
    COMMISSION_CSV_HEADER,
    REFERRAL_CSV_HEADER,
    commission_csv_rows,
    commission_list,
    commission_totals,
    referral_csv_rows,
    referral_get,
    referral_list,
    referral_timeline,
)
from config.exports import csv_response
from partners.decorators import partner_required

PAGE_SIZE = 25
# Columns of the referrals table that sort, and their default direction on first click.
_SORTABLE = {"signed_up": "-signed_up", "status": "status", "paid": "-paid", "commission": "-commission"}


def _query_string(request: HttpRequest, **override: str | None) -> str:
    params = request.GET.copy()
    params.pop("page", None)
    for key, value in override.items():
        if value is None:
            params.pop(key, None)
        else:
            params[key] = value
    return params.urlencode()


def _sort_links(request: HttpRequest, current: str) -> dict[str, dict[str, str]]:
    links = {}
    for column, first in _SORTABLE.items():
        if current.lstrip("-") == column:
            target = column if current.startswith("-") else f"-{column}"
            direction = "descending" if current.startswith("-") else "ascending"
        else:
            target, direction = first, ""
        links[column] = {"query": _query_string(request, sort=target), "direction": direction}
    return links


def _filename(stem: str, start, end) -> str:
    if start or end:
        return f"{stem}-{start or 'start'}-to-{end or timezone.localdate()}.csv"
    return f"{stem}.csv"


def _referral_filters(request: HttpRequest) -> tuple[ReferralFilterForm, DateRangeForm, dict]:
    form = ReferralFilterForm(request.GET, partner=request.partner)
    dates = DateRangeForm(request.GET)
    start, end = dates.range()
    return form, dates, {**form.filters(), "start": start, "end": end}


@partner_required
def referral_list_view(request: HttpRequest) -> HttpResponse:
    form, dates, filters = _referral_filters(request)
    page = Paginator(referral_list(partner=request.partner, **filters), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "commissions/referral_list.html",
        {
            "form": form,
            "dates": dates,
            "page_obj": page,
            "referrals": page.object_list,
            "query_string": _query_string(request),
            "sort_links": _sort_links(request, filters["sort"]),
            "filtered": any(request.GET.get(key) for key in ("status", "link", "start", "end")),
        },
    )


@partner_required
def referral_export_view(request: HttpRequest) -> HttpResponse:
    _form, _dates, filters = _referral_filters(request)
    queryset = referral_list(partner=request.partner, **filters)
    return csv_response(
        _filename("referrals", filters["start"], filters["end"]), REFERRAL_CSV_HEADER, referral_csv_rows(queryset)
    )


@partner_required
def referral_detail_view(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        referral = referral_get(partner=request.partner, pk=pk)
    except Referral.DoesNotExist:
        raise Http404("No such referral.") from None
    return render(
        request,
        "commissions/referral_detail.html",
        {"referral": referral, "timeline": referral_timeline(referral=referral)},
    )


def _state_filter(request: HttpRequest) -> str:
    state = request.GET.get("state", "")
    return state if state in lifecycle.STATE_LABELS else ""


@partner_required
def commission_list_view(request: HttpRequest) -> HttpResponse:
    dates = DateRangeForm(request.GET)
    start, end = dates.range()
    state = _state_filter(request)
    entries = commission_list(partner=request.partner, start=start, end=end)
    # Every entry's state comes from replaying the partner's ledger and payouts (two queries).
    states = lifecycle.partner_lifecycle(partner=request.partner)
    if state:
        entries = entries.filter(pk__in=sorted(lifecycle.entry_ids_in_state(states, state)))
    # A staff void shows its reason (fraud.CommissionVoid) beside the entry.
    page = Paginator(entries.select_related("void_record"), PAGE_SIZE).get_page(request.GET.get("page"))
    rows = list(page.object_list)
    for entry in rows:
        entry.lifecycle = states.entries.get(entry.pk)
    return render(
        request,
        "commissions/commission_list.html",
        {
            "dates": dates,
            "page_obj": page,
            "entries": rows,
            "state": state,
            "state_choices": lifecycle.STATE_LABELS.items(),
            "totals": commission_totals(entries),
            "query_string": _query_string(request),
            "start": start,
            "end": end,
            "commission_percent": f"{(settings.COMMISSION_RATE * 100).normalize():f} %",
        },
    )


@partner_required
def commission_export_view(request: HttpRequest) -> HttpResponse:
    dates = DateRangeForm(request.GET)
    start, end = dates.range()
    entries = commission_list(partner=request.partner, start=start, end=end)
    return csv_response(_filename("commissions", start, end), COMMISSION_CSV_HEADER, commission_csv_rows(entries))
