"""Races on PostgreSQL: concurrent deliveries never double-count (threads, real transactions)."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from django.utils import timezone

from commissions.models import CommissionEntry, MerchantEvent, Payment, Referral, Refund
from commissions.signing import signature_header
from tests.commissions.conftest import paid, refunded, signed_up
from tests.factories import ClickFactory
from tracking.models import DailyLinkStats

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

THREADS = 8


def _post_concurrently(bodies: list[dict]) -> list[tuple[int, dict]]:
    """Post each body from its own thread (own connection), all released at once."""
    barrier = threading.Barrier(len(bodies))
    results: list = [None] * len(bodies)

    def worker(index: int, body: dict) -> None:
        raw = json.dumps(body).encode()
        header = signature_header(secret=settings.EVENTS_SIGNING_SECRET, body=raw)
        client = Client()
        try:
            barrier.wait(timeout=30)
            response = client.post(
                "/api/v1/events", data=raw, content_type="application/json", HTTP_X_PARTNER_SIGNATURE=header
            )
            results[index] = (response.status_code, response.json())
        except Exception as exc:  # surfaced by the assertion below
            results[index] = ("error", repr(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i, body)) for i, body in enumerate(bodies)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert all(r is not None and r[0] != "error" for r in results), results
    return results


def _send(body: dict) -> int:
    return _post_concurrently([body])[0][0]


@pytest.fixture
def referred_customer(db):
    click = ClickFactory(created_at=timezone.now() - timedelta(hours=1))
    assert _send(signed_up("cus_1", click.id)) == 201
    return Referral.objects.get(customer_id="cus_1")


def test_concurrent_replays_of_one_payment_event_make_one_commission(referred_customer):
    body = paid("pay_1", "cus_1", "49.99", event_id="evt_race")
    results = _post_concurrently([body] * THREADS)
    statuses = sorted(status for status, _ in results)
    assert statuses == [200] * (THREADS - 1) + [201]
    assert all(answer == results[0][1] for _, answer in results)
    assert Payment.objects.count() == 1
    assert CommissionEntry.objects.get().amount == Decimal("10.00")
    assert MerchantEvent.objects.filter(event_id="evt_race").count() == 1
    referred_customer.refresh_from_db()
    assert referred_customer.total_commission == Decimal("10.00")
    assert sum(s.commission for s in DailyLinkStats.objects.all()) == Decimal("10.00")
    assert sum(s.new_subscriptions for s in DailyLinkStats.objects.all()) == 1


def test_concurrent_events_with_one_payment_id_under_different_ids_make_one_commission(referred_customer):
    bodies = [paid("pay_1", "cus_1", "49.00", event_id=f"evt_{i}") for i in range(THREADS)]
    results = _post_concurrently(bodies)
    assert sorted(status for status, _ in results) == [200] * (THREADS - 1) + [201]
    assert Payment.objects.count() == 1
    assert CommissionEntry.objects.count() == 1
    assert MerchantEvent.objects.count() == THREADS + 1  # every event logged (plus the sign-up)


def test_concurrent_sign_ups_of_one_customer_make_one_referral(db):
    clicks = [ClickFactory(created_at=timezone.now() - timedelta(hours=1)) for _ in range(THREADS)]
    results = _post_concurrently([signed_up("cus_x", c.id, event_id=f"evt_s{i}") for i, c in enumerate(clicks)])
    assert sorted(status for status, _ in results) == [200] * (THREADS - 1) + [201]
    assert Referral.objects.count() == 1
    referral_ids = {answer["referral"]["id"] for _, answer in results}
    assert referral_ids == {Referral.objects.get().pk}
    assert sum(s.new_trials for s in DailyLinkStats.objects.all()) == 1


def test_concurrent_refunds_never_refund_more_than_was_paid(referred_customer):
    assert _send(paid("pay_1", "cus_1", "10.00")) == 201
    results = _post_concurrently([refunded("pay_1", "3.00", event_id=f"evt_r{i}") for i in range(THREADS)])
    statuses = sorted(status for status, _ in results)
    assert statuses == [201, 201, 201] + [400] * (THREADS - 3)
    payment = Payment.objects.get()
    assert payment.refunded_amount == Decimal("9.00")
    assert Refund.objects.count() == 3
    entries = CommissionEntry.objects.filter(payment=payment)
    assert sum(e.amount for e in entries) == Decimal("0.20")  # 2.00 - 3 × 0.60
