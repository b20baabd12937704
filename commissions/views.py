"""The referrals and commissions pages, their CSV exports, and a referral's timeline."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import render
from django.utils import timezone

from commissions import lifecycle
from commissions.entrystates import PageStates
from commissions.forms import DateRangeForm, ReferralFilterForm
from commissions.models import Referral
from commissions.pagerows import commission_rows, referral_rows
from commissions.rates import current_rate
from commissions.selectors import (
    amount_sort_keys,
    commission_csv_header,
    commission_csv_rows,
    commission_labels,
    commission_list,
    commission_totals,
    commission_totals_in_state,
    commission_totals_of,
    commission_totals_of_days,
    ledger_days_in,
    ledger_page_keys,
    link_name,
    referral_count,
    referral_csv_header,
    referral_csv_rows,
    referral_get,
    referral_labels,
    referral_list,
    referral_timeline,
    reversed_page_keys,
    status_sort_keys,
)
from config.exports import bad_date_range, csv_response
from config.paging import SeekPaginator
from partners.decorators import partner_required

PAGE_SIZE = 25
TIMELINE_PAGE_SIZE = 50
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


# The list's own parameters, carried to a referral's page so its back link returns to the same
# filtered, sorted page of the list (and only these: the back link is never an open redirect).
_LIST_PARAMS = ("status", "link", "start", "end", "sort", "page")


def _list_query(request: HttpRequest) -> str:
    params = QueryDict(mutable=True)
    for key in _LIST_PARAMS:
        value = request.GET.get(key)
        if value:
            params[key] = value[:100]
    return params.urlencode()


def _referral_filters(request: HttpRequest) -> tuple[ReferralFilterForm, DateRangeForm, dict]:
    form = ReferralFilterForm(request.GET, partner=request.partner)
    dates = DateRangeForm(request.GET)
    start, end = dates.range()
    return form, dates, {**form.filters(), "start": start, "end": end}


# What referral_rows reads of a page's referrals and their links.
_REFERRAL_ROW_COLUMNS = (
    "email",
    "is_self_referral",
    "status",
    "signed_up_at",
    "trial_ends_at",
    "plan",
    "seats",
    "total_paid",
    "total_commission",
    "link__code",
    "link__description",
    "link__is_default",
)


@partner_required
def referral_list_view(request: HttpRequest) -> HttpResponse:
    form, dates, filters = _referral_filters(request)
    referrals = referral_list(partner=request.partner, **filters)
    keys = None
    if dates.errors:
        # Dates that cannot be a range show the error and no rows, never "all referrals".
        referrals, count = referrals.none(), 0
    elif (by_status := status_sort_keys(partner=request.partner, **filters)) is not None:
        # Sorted by status: the page's ids read status by status (PostgreSQL), not by sorting them all.
        count, keys = by_status
    elif (by_amount := amount_sort_keys(partner=request.partner, **filters)) is not None:
        # Sorted by paid or commission: the page's ids read from the 0.00 rows or the amounts'.
        count, keys = by_amount
    else:
        # The count from the day counts the referrals' triggers keep (None: the paginator counts).
        count = referral_count(
            partner=request.partner,
            status=filters["status"],
            link_id=filters["link_id"],
            start=filters["start"],
            end=filters["end"],
        )
    # The page's rows by id with the columns they show only (the ids already went through the filters).
    rows = referral_list(partner=request.partner).only(*_REFERRAL_ROW_COLUMNS)
    page = SeekPaginator(referrals, PAGE_SIZE, count=count, keys=keys, rows=rows).get_page(request.GET.get("page"))
    list_query = _list_query(request)
    return render(
        request,
        "commissions/referral_list.html",
        {
            "form": form,
            "dates": dates,
            "page_obj": page,
            "referrals": page.object_list,
            "rows": referral_rows(list(page.object_list), list_query=list_query),
            "query_string": _query_string(request),
            "sort_links": _sort_links(request, filters["sort"]),
            "filtered": any(request.GET.get(key) for key in ("status", "link", "start", "end")),
            "labels": referral_labels(),
            "list_query": list_query,
        },
    )


@partner_required
def referral_export_view(request: HttpRequest) -> HttpResponse:
    _form, dates, filters = _referral_filters(request)
    if not dates.is_valid():
        return bad_date_range(dates)
    queryset = referral_list(partner=request.partner, **filters)
    return csv_response(
        _filename("referrals", filters["start"], filters["end"]), referral_csv_header(), referral_csv_rows(queryset)
    )


@partner_required
def referral_detail_view(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        referral = referral_get(partner=request.partner, pk=pk)
    except Referral.DoesNotExist:
        raise Http404("No such referral.") from None
    # Hundreds of payments: the timeline is shown TIMELINE_PAGE_SIZE items at a time.
    page = Paginator(referral_timeline(referral=referral), TIMELINE_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "commissions/referral_detail.html",
        {
            "referral": referral,
            "link_name": link_name(referral.link.code, referral.link.description, referral.link.is_default),
            "timeline": page.object_list,
            "page_obj": page,
            "query_string": "",
            "back_query": _list_query(request),
        },
    )


def _state_filter(request: HttpRequest) -> str:
    state = request.GET.get("state", "")
    return state if state in lifecycle.STATE_LABELS else ""


def _in_state(entries: QuerySet, states: PageStates, state: str) -> QuerySet:
    """The entries in ``state`` (the list's filter; its CSV download applies the same)."""
    return entries.filter(states.ids_filter(state))


# What commission_rows and the entries' states read of a page's rows and their joins.
_ROW_COLUMNS = (
    "kind",
    "amount",
    "earned_at",
    "partner_id",
    "referral__email",
    "referral__is_self_referral",
    "payment__plan",
    "payment__seats",
    "payment__amount",
    "refund__amount",
    "void_record__reason",
)


def _newest_first_slices(members: list[int], after: QuerySet, n_after: int):
    """``SeekPaginator``'s ``keys`` for a state filter without dates: the ``n_after`` rows of
    ``after`` (newer than the scan's), then ``members`` (the scan's, in the ledger's order)."""

    def keys(bottom: int, top: int) -> list[int]:
        ids = []
        if bottom < n_after:
            ids = list(after.order_by("-earned_at", "-id").values_list("pk", flat=True)[bottom : min(top, n_after)])
        n, low, high = len(members), max(bottom - n_after, 0), top - n_after
        if high > low:
            ids += members[max(n - high, 0) : max(n - low, 0)][::-1]
        return ids

    return keys


@partner_required
def commission_list_view(request: HttpRequest) -> HttpResponse:
    dates = DateRangeForm(request.GET)
    start, end = dates.range()
    state = _state_filter(request)
    listed = commission_list(partner=request.partner, start=start, end=end)
    # Dates that are no range show the error and no rows.
    entries = listed.none() if dates.errors else listed
    # The states of the page's entries only (commissions/entrystates.py), not a replay.
    states = PageStates(partner=request.partner)
    # LedgerDay's rows in the dates (PostgreSQL), read for the states: the totals and the seek.
    days = None if (all_days := states.ledger_days()) is None else ledger_days_in(all_days, start, end)
    undated = start is None and end is None and not dates.errors
    # A state filter without dates (PostgreSQL, no replay): the entries the states' scan read in
    # the state came with it in order, and a page is a slice of them, after the state's rows
    # newer than the scan (the commissions matured since, for "available"; none for the others):
    # the filter itself is never built.
    found = states.state_ids(state) if state and undated and days is not None else None
    if found is not None:
        members, since = found
        entries = entries.none() if since is None else entries.filter(since)
    elif state:
        entries = _in_state(entries, states, state)
    if state:
        # All dates: the state's totals kept with its runs, plus the rows matured since.
        scanned = states.scanned_totals(state) if undated else None
        totals = (
            commission_totals_of(entries) if scanned is None else commission_totals_in_state(entries, scanned=scanned)
        )
    elif days is not None:  # the day rows PageStates read, no query of their own
        totals = commission_totals_of_days(days)
    else:
        totals = commission_totals(partner=request.partner, start=start, end=end)
    # The count is the totals' row count (a rollup without a state filter): no COUNT(*) over the ledger.
    count = 0 if dates.errors else totals.rows
    keys = None
    if days is not None and not dates.errors:  # PostgreSQL, no replay
        if not state:
            # A page deep in the ledger starts at its day (the rows per day).
            keys = ledger_page_keys(entries, days)
        elif found is not None:
            keys = _newest_first_slices(members, entries, count - len(members))
        elif state == lifecycle.REVERSED and (parts := states.reversed_parts()) is not None:
            # With dates: the commissions taken from (by id) and the debits (their own index),
            # merged, instead of walking the ledger's index past every commission not reversed.
            keys = reversed_page_keys(listed, *parts, count=count)
    # A staff void shows its reason (fraud.CommissionVoid) beside the entry. The page's rows are
    # read by id from the partner's whole ledger (a state filter's id arrays are applied once),
    # with the columns the rows show only (2 of 6 ms of 25 rows' models on the loadbench account).
    rows = commission_list(partner=request.partner).select_related("void_record").only(*_ROW_COLUMNS)
    page = SeekPaginator(entries, PAGE_SIZE, count=count, keys=keys, rows=rows).get_page(request.GET.get("page"))
    entries = list(page.object_list)
    return render(
        request,
        "commissions/commission_list.html",
        {
            "dates": dates,
            "page_obj": page,
            "entries": entries,
            "rows": commission_rows(entries, states.states(entries)),
            "state": state,
            "state_choices": lifecycle.STATE_LABELS.items(),
            "totals": totals,
            "query_string": _query_string(request),
            "start": start,
            "end": end,
            "commission_percent": f"{(current_rate(partner_id=request.partner.pk) * 100).normalize():f} %",
            "labels": commission_labels(),
        },
    )


@partner_required
def commission_export_view(request: HttpRequest) -> HttpResponse:
    dates = DateRangeForm(request.GET)
    if not dates.is_valid():
        return bad_date_range(dates)
    start, end = dates.range()
    entries = commission_list(partner=request.partner, start=start, end=end)
    states = PageStates(partner=request.partner)
    state = _state_filter(request)
    if state:  # the page's "Download CSV" carries its state filter
        entries = _in_state(entries, states, state)
    return csv_response(
        _filename("commissions", start, end),
        commission_csv_header(),
        commission_csv_rows(entries, states=lambda rows: lifecycle.texts_of(states.states_of(rows))),
    )
