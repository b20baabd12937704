"""The Commissions page's state filters (commissions/entrystates.py) on a history long enough to
have paid, open and reversed runs: each selects exactly the replay's entries, its totals over all
dates are the ledger rows' sums, also from the cache and after more commissions matured, and a
filter costs the same number of queries however many payouts and runs the history has."""

from __future__ import annotations

import itertools
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from commissions.entrystates import PageStates
from commissions.lifecycle import STATE_LABELS, entry_ids_in_state, partner_lifecycle
from commissions.models import CommissionEntry, Refund
from commissions.selectors import commission_list, commission_totals_in_state, commission_totals_of
from payouts.models import Payout
from tests.factories import CommissionEntryFactory, MerchantEventFactory, PartnerFactory

pytestmark = pytest.mark.django_db

HOLD_DAYS = 3
_ids = itertools.count(1)


def _commission(partner, amount: str, at) -> CommissionEntry:
    return CommissionEntryFactory(payment__referral__click__link__partner=partner, amount=Decimal(amount), earned_at=at)


def _refund(entry: CommissionEntry, amount: str, at) -> None:
    refund = Refund.objects.create(
        payment=entry.payment,
        amount=Decimal(amount),
        refunded_at=at,
        event=MerchantEventFactory(event_id=f"evt_state_filter_{next(_ids)}", type="payment.refunded"),
    )
    CommissionEntry.objects.create(
        partner=entry.partner,
        referral=entry.referral,
        payment=entry.payment,
        refund=refund,
        kind="reversal",
        amount=-Decimal(amount),
        earned_at=at,
    )


def _payout(partner, amount: str, status: str, at) -> None:
    payout = Payout.objects.create(
        partner=partner, amount=Decimal(amount), currency="USD", paypal_email="p@example.com"
    )
    Payout.objects.filter(pk=payout.pk).update(requested_at=at, status=status)


def _history(partner, start, rounds: int):
    """Rounds of commissions (one of them 0.00), a refund of a paid one and one of an available
    one, then a payout of part of the balance: paid, except the last round's (approved)."""
    clock = start
    for n in range(rounds):
        entries = [_commission(partner, f"{3 + (n * 7 + i) % 11}.00", clock + timedelta(hours=i)) for i in range(8)]
        _commission(partner, "0.00", clock + timedelta(hours=9))
        clock += timedelta(days=HOLD_DAYS + 1)
        _refund(entries[0], "1.50", clock)  # its own commission, still available: an own take
        if n:
            _refund(entries[1], "2.00", clock)
        _payout(partner, "20.00", "approved" if n == rounds - 1 else "paid", clock + timedelta(hours=1))
        clock += timedelta(days=1)
    _commission(partner, "6.00", clock - timedelta(hours=1))  # pending
    return clock


def _check(partner, now) -> PageStates:
    life = partner_lifecycle(partner=partner, now=now)
    states = PageStates(partner=partner, now=now)
    for state in STATE_LABELS:
        entries = commission_list(partner=partner).filter(states.ids_filter(state))
        assert set(entries.values_list("id", flat=True)) == entry_ids_in_state(life, state), state
        scanned = states.scanned_totals(state)
        if state != "pending":
            assert scanned is not None, state
            assert commission_totals_in_state(entries, scanned=scanned) == commission_totals_of(entries), state
        # The scan's members in the ledger's order (their pages' slices), as many as its totals
        # count, then (available) the entries matured since, which the filter "since" selects.
        found = states.state_ids(state)
        if state == "pending":
            assert found is None
            continue
        members, since = found
        in_order = list(entries.order_by("earned_at", "id").values_list("id", flat=True))
        after = (
            [] if since is None else list(commission_list(partner=partner).filter(since).values_list("id", flat=True))
        )
        assert members + sorted(after, key=in_order.index) == in_order, state
        assert len(members) == scanned[3], state
    return states


@pytest.fixture(params=["runs", "ids"])
def representation(request, monkeypatch):
    """The filters as runs of the ledger's order, or as the entries' ids (the shorter is used)."""
    monkeypatch.setattr("commissions.entrystates._IDS_PER_RUN", 0 if request.param == "runs" else 10**6)


@override_settings(COMMISSION_HOLD_DAYS=HOLD_DAYS)
def test_state_filters_equal_the_replay_fresh_cached_and_after_more_matured(representation):
    partner = PartnerFactory()
    start = timezone.now() - timedelta(days=60)
    clock = _history(partner, start, rounds=8)
    life = partner_lifecycle(partner=partner, now=clock)
    assert all(entry_ids_in_state(life, state) for state in STATE_LABELS), [  # every state has entries
        (state, len(entry_ids_in_state(life, state))) for state in STATE_LABELS
    ]
    first = _check(partner, clock)
    assert first.scanned  # the runs (not the slow filter) selected them
    # A commission pending at the scan: it matures later, and the cached runs still apply.
    _commission(partner, "4.00", clock - timedelta(days=1))
    later = clock + timedelta(days=HOLD_DAYS)
    cached = _check(partner, later)
    if connection.vendor == "postgresql":  # kept in the cache (SQLite scans every time)
        assert cached.scanned.cutoff == first.scanned.cutoff
    # A refund changes the history: a new scan.
    _refund(CommissionEntry.objects.filter(partner=partner, kind="commission").last(), "1.00", later)
    assert _check(partner, later).scanned.cutoff > first.scanned.cutoff


def _queries(partner, now, state: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        states = PageStates(partner=partner, now=now)
        entries = commission_list(partner=partner).filter(states.ids_filter(state))
        commission_totals_in_state(entries, scanned=states.scanned_totals(state))
        list(entries.values_list("id", flat=True)[:25])
    return len(queries)


@override_settings(COMMISSION_HOLD_DAYS=HOLD_DAYS)
@pytest.mark.parametrize("state", ["available", "paid", "in_payout", "reversed"])
def test_a_state_filter_costs_the_same_queries_however_long_the_history(state):
    small, large = PartnerFactory(), PartnerFactory()
    start = timezone.now() - timedelta(days=90)
    small_now = _history(small, start, rounds=2)
    large_now = _history(large, start, rounds=12)
    counts = []
    for partner, now in ((small, small_now), (large, large_now)):
        counts.append((_queries(partner, now, state), _queries(partner, now, state)))  # a scan, then the cache
    assert counts[0] == counts[1]
    assert counts[0][1] <= counts[0][0]


@override_settings(COMMISSION_HOLD_DAYS=HOLD_DAYS)
@pytest.mark.postgres
def test_every_page_of_each_state_filter_holds_the_replays_entries_newest_first(partner_client):
    """The pages without dates: for paid, in a payout and reversed, slices of the scan's members;
    every page shows exactly the replay's entries of the state in the ledger's order, newest
    first, and the page count says how many there are."""
    from commissions.views import PAGE_SIZE

    partner = partner_client.partner
    _history(partner, timezone.now() - timedelta(days=150), rounds=24)
    life = partner_lifecycle(partner=partner, now=timezone.now())
    order = dict(CommissionEntry.objects.filter(partner=partner).values_list("id", "earned_at"))
    for state in ("available", "paid", "in_payout", "reversed"):
        expected = sorted(entry_ids_in_state(life, state), key=lambda pk: (order[pk], pk), reverse=True)
        pages = -(-len(expected) // PAGE_SIZE)
        assert pages >= (1 if state == "in_payout" else 2), (state, len(expected))
        for number in range(1, pages + 1):
            response = partner_client.get("/commissions/", {"state": state, "page": number})
            assert response.context["page_obj"].paginator.count == len(expected), state
            want = expected[(number - 1) * PAGE_SIZE : number * PAGE_SIZE]
            assert [entry.pk for entry in response.context["entries"]] == want, (state, number)


@override_settings(COMMISSION_HOLD_DAYS=HOLD_DAYS)
@pytest.mark.postgres
def test_available_pages_put_the_commissions_matured_since_the_scan_first(partner_client, monkeypatch):
    """The cached scan still applies two days on: the commissions that matured since come first
    (newest first), then the scan's members; every page equals the replay's at that time."""
    from commissions.views import PAGE_SIZE

    partner = partner_client.partner
    _history(partner, timezone.now() - timedelta(days=150), rounds=24)
    t0 = timezone.now()
    monkeypatch.setattr("django.utils.timezone.now", lambda: t0)
    partner_client.get("/commissions/", {"state": "available"})  # the scan, cut off at t0 - hold
    for hours in (30, 31, 40):  # after the cutoff's day, matured by t1
        _commission(partner, f"{hours}.00", t0 - timedelta(days=HOLD_DAYS) + timedelta(hours=hours))
    t1 = t0 + timedelta(days=2)
    monkeypatch.setattr("django.utils.timezone.now", lambda: t1)
    states = PageStates(partner=partner, now=t1)
    _members, since = states.state_ids("available")
    assert states.scan().cutoff == t0 - timedelta(days=HOLD_DAYS)  # the cached one
    assert commission_list(partner=partner).filter(since).count() == 3
    life = partner_lifecycle(partner=partner, now=t1)
    order = dict(CommissionEntry.objects.filter(partner=partner).values_list("id", "earned_at"))
    expected = sorted(entry_ids_in_state(life, "available"), key=lambda pk: (order[pk], pk), reverse=True)
    assert len(expected) > PAGE_SIZE
    for number in range(1, -(-len(expected) // PAGE_SIZE) + 1):
        response = partner_client.get("/commissions/", {"state": "available", "page": number})
        assert response.context["page_obj"].paginator.count == len(expected)
        assert [entry.pk for entry in response.context["entries"]] == expected[
            (number - 1) * PAGE_SIZE : number * PAGE_SIZE
        ], number
