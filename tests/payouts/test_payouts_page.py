"""The partner's payout history on /payouts/ and its CSV export."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from payouts.models import Payout
from tests.factories import PartnerFactory, PayoutFactory

pytestmark = pytest.mark.django_db

PAGE = "/payouts/"
CSV_URL = "/payouts/export.csv"


def _csv(response) -> list[dict]:
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(body)))


def _history(partner, count: int, **kwargs) -> list[Payout]:
    payouts = []
    for i in range(count):
        payouts.append(
            PayoutFactory(partner=partner, amount=Decimal("50.00") + i, status=kwargs.get("status", Payout.Status.PAID))
        )
    return payouts


def test_history_shows_statuses_in_the_partners_words(partner_client):
    partner = partner_client.partner
    now = timezone.now()
    PayoutFactory(
        partner=partner,
        status=Payout.Status.PAID,
        paid_at=now,
        paypal_batch_id="BATCH1PAID",
        paypal_transaction_id="7TX000000000001",
    )
    PayoutFactory(partner=partner, status=Payout.Status.REJECTED, rejection_reason="Traffic from a coupon site")
    PayoutFactory(partner=partner, status=Payout.Status.FAILED, failure_reason="PayPal reports the payment UNCLAIMED.")
    PayoutFactory(partner=partner, status=Payout.Status.SENT, paypal_batch_id="BATCH2OPEN")
    html = partner_client.get(PAGE).content.decode()
    assert '<span class="badge badge-paid">Paid</span>' in html
    assert '<span class="badge badge-rejected">Rejected</span>' in html
    assert "Traffic from a coupon site" in html
    assert '<span class="badge badge-failed">Not paid — returned to balance</span>' in html
    assert "PayPal reports the payment UNCLAIMED. The amount is back in your balance." in html
    assert '<span class="badge badge-pending">Pending</span>' in html
    assert "Processing" not in html and "Approved" not in html
    assert "BATCH1PAID" in html and "7TX000000000001" in html
    assert partner.paypal_email in html


def test_approved_and_processing_payouts_show_as_pending(partner_client):
    for status in (
        Payout.Status.PENDING,
        Payout.Status.APPROVED,
        Payout.Status.SENDING,
        Payout.Status.UNKNOWN,
        Payout.Status.ATTENTION,
        Payout.Status.SENT,
    ):
        Payout.objects.all().delete()
        PayoutFactory(partner=partner_client.partner, status=status)
        html = partner_client.get(PAGE).content.decode()
        assert '<span class="badge badge-pending">Pending</span>' in html


def test_a_partner_never_sees_another_partners_payouts(partner_client):
    other = PartnerFactory(paypal_email="someone.else@example.net")
    PayoutFactory(partner=other, paypal_batch_id="OTHERSBATCH")
    html = partner_client.get(PAGE).content.decode()
    assert "someone.else@example.net" not in html
    assert "OTHERSBATCH" not in html
    rows = _csv(partner_client.get(CSV_URL))
    assert rows == []


def test_history_is_paginated(partner_client):
    _history(partner_client.partner, 25)
    first = partner_client.get(PAGE)
    assert len(first.context["rows"]) == 20
    assert "Page 1 of 2" in first.content.decode()
    second = partner_client.get(PAGE, {"page": 2})
    assert len(second.context["rows"]) == 5


def test_the_page_makes_the_same_number_of_queries_for_3_or_30_payouts(partner_client):
    _history(partner_client.partner, 3)
    partner_client.get(PAGE)  # warm up the session
    with CaptureQueriesContext(connection) as few:
        assert partner_client.get(PAGE).status_code == 200
    _history(partner_client.partner, 27)
    with CaptureQueriesContext(connection) as many:
        assert partner_client.get(PAGE).status_code == 200
    assert len(many) == len(few)


def test_the_page_answers_in_a_bounded_number_of_queries(partner_client, django_assert_max_num_queries):
    _history(partner_client.partner, 30)
    partner_client.get(PAGE)
    with django_assert_max_num_queries(8):
        partner_client.get(PAGE)


def test_csv_export_lists_every_payout_with_money_as_two_place_strings(partner_client):
    partner = partner_client.partner
    paid_at = timezone.now()
    PayoutFactory(
        partner=partner,
        amount=Decimal("50"),
        status=Payout.Status.PAID,
        paid_at=paid_at,
        paypal_batch_id="B1",
        paypal_transaction_id="T1",
    )
    PayoutFactory(
        partner=partner,
        amount=Decimal("72.5"),
        status=Payout.Status.REJECTED,
        rejection_reason='=HYPERLINK("http://x")',
    )
    response = partner_client.get(CSV_URL)
    assert response["Content-Type"].startswith("text/csv")
    assert 'filename="payouts.csv"' in response["Content-Disposition"]
    rows = _csv(response)
    assert [r["Amount"] for r in rows] == ["72.50", "50.00"]
    assert rows[1]["Status"] == "Paid"
    assert rows[1]["PayPal batch"] == "B1" and rows[1]["PayPal transaction"] == "T1"
    # Whole seconds in the program's time zone, as every CSV writes a moment.
    assert rows[1]["Paid"] == timezone.localtime(paid_at).strftime("%Y-%m-%d %H:%M:%S")
    assert rows[0]["Status"] == "Rejected"
    assert rows[0]["Note"].startswith("'=")  # a formula is never handed to a spreadsheet


def test_csv_export_follows_the_date_filter(partner_client):
    partner = partner_client.partner
    old = PayoutFactory(partner=partner, status=Payout.Status.PAID, amount=Decimal("51.00"))
    Payout.objects.filter(pk=old.pk).update(requested_at=timezone.now() - timedelta(days=40))
    PayoutFactory(partner=partner, status=Payout.Status.PAID, amount=Decimal("52.00"))
    start = (timezone.localdate() - timedelta(days=7)).isoformat()
    rows = _csv(partner_client.get(CSV_URL, {"start": start}))
    assert [r["Amount"] for r in rows] == ["52.00"]
    page = partner_client.get(PAGE, {"start": start})
    assert len(page.context["rows"]) == 1
    assert f"export.csv?start={start}" in page.content.decode()


def test_empty_history_says_so(partner_client):
    assert "No withdrawals yet" in partner_client.get(PAGE).content.decode()
