"""The Commissions page reads a page deep in the ledger from the day that holds its first row
(the rows per day kept in ``LedgerDay``): every page, with and without dates, shows exactly the
rows the ledger's order puts there, however the days and the page boundaries fall."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.utils import timezone

from commissions.models import CommissionEntry
from commissions.views import PAGE_SIZE
from tests.factories import LinkFactory
from tests.reports import builders as b

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def _ledger(partner) -> None:
    """Busy days and quiet ones: 1 to 7 payments a day, some refunded, so pages start inside a
    day, at a day's first row and at its last."""
    link = LinkFactory(partner=partner)
    now = timezone.now() - timedelta(days=40)  # matured: a page of the newest rows is not all pending
    for n in range(24):
        at = now - timedelta(days=n * 3, hours=n % 5)
        referral = b.signup(b.click(link, f"seek-{n}", at), at + timedelta(minutes=1))
        for i in range(1 + n % 7):
            payment = b.pay(referral, f"{10 + n}.00", at + timedelta(minutes=5 + i))
            if (n + i) % 4 == 0:
                b.refund(payment, "3.00", at + timedelta(minutes=30 + i))


def _page_ids(client, query: dict) -> list[int]:
    response = client.get("/commissions/", query)
    assert response.status_code == 200
    return [entry.pk for entry in response.context["entries"]]


def _expected(partner, start: date | None = None, end: date | None = None) -> list[int]:
    entries = CommissionEntry.objects.filter(partner=partner)
    tz = timezone.get_current_timezone()
    ids = entries.order_by("-earned_at", "-id").values_list("pk", "earned_at")
    return [
        pk
        for pk, at in ids
        if (start is None or at.astimezone(tz).date() >= start) and (end is None or at.astimezone(tz).date() <= end)
    ]


def _every_page(client, query: dict, expected: list[int], *, at_least: int = 3) -> None:
    pages = -(-len(expected) // PAGE_SIZE)
    assert pages >= at_least, "the rows should span several pages"
    for number in range(1, pages + 1):
        want = expected[(number - 1) * PAGE_SIZE : number * PAGE_SIZE]
        assert _page_ids(client, {**query, "page": number}) == want, f"page {number} of {query}"


def test_every_page_of_the_ledger_holds_its_rows(partner_client):
    partner = partner_client.partner
    _ledger(partner)
    _every_page(partner_client, {}, _expected(partner))


def test_every_page_of_a_date_range_holds_its_rows(partner_client):
    partner = partner_client.partner
    _ledger(partner)
    today = timezone.localdate()
    start, end = today - timedelta(days=100), today - timedelta(days=50)
    expected = _expected(partner, start, end)
    _every_page(partner_client, {"start": start.isoformat(), "end": end.isoformat()}, expected)
    # A page past the end shows the last one (Django's paginator), read the same way.
    assert (
        _page_ids(partner_client, {"start": start.isoformat(), "end": end.isoformat(), "page": 9999})
        == (expected[(len(expected) - 1) // PAGE_SIZE * PAGE_SIZE :])
    )


def test_a_new_entry_moves_every_page_by_one_row(partner_client):
    partner = partner_client.partner
    _ledger(partner)
    before = _expected(partner)
    referral = CommissionEntry.objects.filter(partner=partner).first().referral
    b.pay(referral, "99.00", timezone.now() - timedelta(days=1))
    after = _expected(partner)
    assert after[1:] == before
    _every_page(partner_client, {}, after)


@pytest.mark.parametrize("near_end", [0, 200])
def test_every_page_of_the_reversed_state_holds_its_rows(partner_client, monkeypatch, near_end):
    # Without dates, a slice of the reversed ids the states' scan read in order; with dates, two
    # halves merged (the commissions taken from, the debits) on every page (with near_end=0) or
    # all but those near the oldest end, which the filter walks: the same rows, in the same
    # order, as the replay's reversed entries, and as many as the page says.
    from commissions.lifecycle import REVERSED, entry_ids_in_state, partner_lifecycle

    monkeypatch.setattr("commissions.selectors._REVERSED_NEAR_END", near_end)
    partner = partner_client.partner
    _ledger(partner)
    reversed_ids = entry_ids_in_state(partner_lifecycle(partner=partner), REVERSED)
    expected = [pk for pk in _expected(partner) if pk in reversed_ids]
    assert any(
        kind == "commission" for kind in CommissionEntry.objects.filter(pk__in=expected).values_list("kind", flat=True)
    )
    _every_page(partner_client, {"state": "reversed"}, expected, at_least=2)  # read from both ends
    response = partner_client.get("/commissions/", {"state": "reversed"})
    assert response.context["page_obj"].paginator.count == len(expected)
    today = timezone.localdate()
    start, end = today - timedelta(days=90), today - timedelta(days=45)
    in_range = [pk for pk in _expected(partner, start, end) if pk in reversed_ids]
    query = {"state": "reversed", "start": start.isoformat(), "end": end.isoformat()}
    for number in range(1, -(-len(in_range) // PAGE_SIZE) + 1):
        want = in_range[(number - 1) * PAGE_SIZE : number * PAGE_SIZE]
        assert _page_ids(partner_client, {**query, "page": number}) == want
