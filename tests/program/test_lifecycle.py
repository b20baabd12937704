"""Issue 22 item 3: each commission's state, the Commissions filter, payout statements, the
dashboard's balance parts and the summary's pending_commission."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from commissions.lifecycle import AVAILABLE, IN_PAYOUT, PAID, PENDING, REVERSED, Part, partner_lifecycle
from payouts.models import Payout
from tests.factories import PartnerFactory, PayoutFactory
from tests.payouts.conftest import add_commission, add_refund

pytestmark = pytest.mark.django_db


def _at(days_ago: float):
    return timezone.now() - timedelta(days=days_ago)


def _payout(partner, amount: str, status: str, days_ago: float) -> Payout:
    payout = PayoutFactory(partner=partner, amount=Decimal(amount), status=status)
    Payout.objects.filter(pk=payout.pk).update(requested_at=_at(days_ago))
    return payout


def test_a_payout_covers_the_oldest_commissions_and_splits_one_to_the_cent():
    partner = PartnerFactory()
    old = add_commission(partner, "30.00", earned_at=_at(10))
    middle = add_commission(partner, "25.55", earned_at=_at(9))
    new = add_commission(partner, "40.00", earned_at=_at(8))
    payout = _payout(partner, "50.00", "paid", 5)
    life = partner_lifecycle(partner=partner)
    assert life.entries[old.pk].parts == [Part(PAID, Decimal("30.00"), payout.pk)]
    assert life.entries[middle.pk].parts == [
        Part(PAID, Decimal("20.00"), payout.pk),
        Part(AVAILABLE, Decimal("5.55")),
    ]
    assert life.entries[new.pk].parts == [Part(AVAILABLE, Decimal("40.00"))]
    assert life.payout_lines[payout.pk] == [(old.pk, Decimal("30.00")), (middle.pk, Decimal("20.00"))]


def test_a_commission_inside_the_hold_is_pending_with_the_date_it_becomes_available(settings):
    settings.COMMISSION_HOLD_DAYS = 30
    partner = PartnerFactory()
    entry = add_commission(partner, "12.00", earned_at=_at(10))
    life = partner_lifecycle(partner=partner)
    assert life.entries[entry.pk].parts == [Part(PENDING, Decimal("12.00"))]
    assert life.entries[entry.pk].available_from == entry.earned_at + timedelta(days=30)


def test_a_refund_reverses_its_own_commission_first():
    partner = PartnerFactory()
    other = add_commission(partner, "10.00", earned_at=_at(10))
    refunded = add_commission(partner, "20.00", earned_at=_at(9))
    reversal = add_refund(refunded, "20.00")
    life = partner_lifecycle(partner=partner)
    assert life.entries[other.pk].parts == [Part(AVAILABLE, Decimal("10.00"))]
    assert life.entries[refunded.pk].parts == [Part(REVERSED, Decimal("20.00"))]
    assert life.entries[reversal.pk].state == REVERSED


def test_a_refund_after_the_payout_comes_out_of_the_next_commission():
    partner = PartnerFactory()
    paid = add_commission(partner, "60.00", earned_at=_at(10))
    _payout(partner, "60.00", "paid", 9)
    add_refund(paid, "15.00")  # now: after the payout
    later = add_commission(partner, "40.00", earned_at=timezone.now() + timedelta(seconds=1))
    life = partner_lifecycle(partner=partner, now=timezone.now() + timedelta(seconds=2))
    assert life.entries[paid.pk].state == PAID
    assert life.entries[later.pk].parts == [Part(REVERSED, Decimal("15.00")), Part(AVAILABLE, Decimal("25.00"))]
    assert life.available == Decimal("25.00")


def test_a_failed_or_rejected_payout_gives_its_commissions_back():
    partner = PartnerFactory()
    entry = add_commission(partner, "70.00", earned_at=_at(10))
    _payout(partner, "70.00", "failed", 5)
    open_payout = _payout(partner, "70.00", "pending", 1)
    life = partner_lifecycle(partner=partner)
    assert life.entries[entry.pk].parts == [Part(IN_PAYOUT, Decimal("70.00"), open_payout.pk)]
    assert life.in_payouts == Decimal("70.00")
    assert life.available == Decimal("0.00")


def test_the_commissions_page_filters_by_state_and_shows_each_state(partner_client, django_assert_max_num_queries):
    partner = partner_client.partner
    paid = add_commission(partner, "30.00", earned_at=_at(10))
    _payout(partner, "30.00", "paid", 9)
    available = add_commission(partner, "11.00", earned_at=_at(5))
    response = partner_client.get(reverse("commissions:commission_list"), {"state": "available"})
    rows = response.context["entries"]
    assert [row.pk for row in rows] == [available.pk]
    response = partner_client.get(reverse("commissions:commission_list"), {"state": "paid"})
    assert [row.pk for row in response.context["entries"]] == [paid.pk]
    assert b"Statement" not in response.content  # the row links to the payout instead
    assert b"payout #" in response.content
    for _ in range(30):
        add_commission(partner, "1.00", earned_at=_at(2))
    with django_assert_max_num_queries(14):
        assert partner_client.get(reverse("commissions:commission_list")).status_code == 200


def test_an_unknown_state_filter_is_ignored(partner_client):
    add_commission(partner_client.partner, "5.00")
    response = partner_client.get(reverse("commissions:commission_list"), {"state": "nonsense"})
    assert response.status_code == 200
    assert len(response.context["entries"]) == 1


def test_the_payout_statement_lists_the_covered_commissions_and_adds_up(partner_client):
    partner = partner_client.partner
    first = add_commission(partner, "33.33", earned_at=_at(10))
    second = add_commission(partner, "33.33", earned_at=_at(9))
    add_commission(partner, "33.34", earned_at=_at(8))
    payout = _payout(partner, "50.00", "paid", 5)
    page = partner_client.get(reverse("payouts:payout_statement", args=[payout.pk]))
    assert page.status_code == 200
    lines = page.context["statement"].lines
    assert [(line.entry.pk, line.covered) for line in lines] == [
        (first.pk, Decimal("33.33")),
        (second.pk, Decimal("16.67")),
    ]
    assert page.context["statement"].total == Decimal("50.00")
    export = partner_client.get(reverse("payouts:payout_statement_export", args=[payout.pk]))
    rows = list(csv.reader(io.StringIO(b"".join(export.streaming_content).decode())))
    assert rows[0][-1] == "covered_by_this_payout"
    assert [row[-1] for row in rows[1:]] == ["33.33", "16.67", "50.00"]


def test_another_partners_statement_is_not_found(partner_client):
    other = PartnerFactory()
    payout = _payout(other, "50.00", "paid", 1)
    assert partner_client.get(reverse("payouts:payout_statement", args=[payout.pk])).status_code == 404
    assert partner_client.get(reverse("payouts:payout_statement_export", args=[payout.pk])).status_code == 404


def test_the_summary_api_answers_pending_commission(partner_client, settings):
    settings.COMMISSION_HOLD_DAYS = 30
    partner = partner_client.partner
    add_commission(partner, "12.50", earned_at=_at(3))
    add_commission(partner, "7.00", earned_at=_at(40))
    body = partner_client.get("/api/v1/partner/summary").json()
    assert body["pending_commission"] == "12.50"


def test_the_dashboard_shows_the_balance_parts(partner_client, settings):
    settings.COMMISSION_HOLD_DAYS = 30
    partner = partner_client.partner
    add_commission(partner, "12.50", earned_at=_at(3))
    add_commission(partner, "90.00", earned_at=_at(40))
    _payout(partner, "60.00", "approved", 1)
    summary = partner_client.get(reverse("partners:dashboard")).context["summary"]
    assert (summary.pending_commission, summary.in_payouts) == (Decimal("12.50"), Decimal("60.00"))
