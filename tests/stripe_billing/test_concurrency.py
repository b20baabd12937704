"""Races on PostgreSQL: Stripe events of one customer delivered at once (threads, real transactions)."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client

from commissions.models import CommissionEntry, Payment
from commissions.stripe_billing.models import StripeEvent
from commissions.stripe_billing.services import stripe_event_receive
from tests.factories import ClickFactory, LinkFactory
from tests.stripe_billing.conftest import SECRET, T0, customer_life
from tests.stripe_billing.stripe_world import WEBHOOK_PATH, sign

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _post_concurrently(events: list[dict]) -> list:
    barrier = threading.Barrier(len(events))
    results: list = [None] * len(events)

    def worker(index: int, event: dict) -> None:
        body = json.dumps(event).encode()
        try:
            barrier.wait(timeout=30)
            response = Client().post(
                WEBHOOK_PATH,
                data=body,
                content_type="application/json",
                HTTP_STRIPE_SIGNATURE=sign(body, secret=SECRET),
            )
            results[index] = response.status_code
        except Exception as exc:  # surfaced by the assertion below
            results[index] = repr(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i, e)) for i, e in enumerate(events)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


@pytest.mark.parametrize("attempt", range(3))
def test_an_invoice_and_its_checkout_at_once_never_leave_the_invoice_held(attempt):
    click = ClickFactory(link=LinkFactory(), created_at=datetime.fromtimestamp(T0 - 3600, tz=UTC))
    life = customer_life(str(click.id), prefix=f"c{attempt}")
    stripe_event_receive(payload=life.by_name["sub_created"])

    results = _post_concurrently([life.by_name["first_invoice"], life.by_name["checkout"]])

    assert results == [200, 200]
    assert not StripeEvent.objects.filter(status=StripeEvent.Status.HELD).exists()
    assert Payment.objects.get(payment_id=f"in_c{attempt}first").amount == Decimal("60.00")


def test_one_event_delivered_eight_times_at_once_earns_once():
    click = ClickFactory(link=LinkFactory(), created_at=datetime.fromtimestamp(T0 - 3600, tz=UTC))
    life = customer_life(str(click.id), prefix="r")
    for name in ("checkout", "sub_created"):
        stripe_event_receive(payload=life.by_name[name])

    results = _post_concurrently([life.by_name["first_invoice"]] * 4 + [life.by_name["first_succeeded"]] * 4)

    assert results == [200] * 8
    assert CommissionEntry.objects.get().amount == Decimal("12.00")


@pytest.mark.parametrize("attempt", range(3))
def test_a_charges_refund_events_all_at_once_end_with_the_in_order_ledger(attempt):
    click = ClickFactory(link=LinkFactory(), created_at=datetime.fromtimestamp(T0 - 3600, tz=UTC))
    life = customer_life(str(click.id), prefix=f"f{attempt}")
    for name in ("checkout", "sub_created", "sub_active", "first_invoice", "first_link"):
        stripe_event_receive(payload=life.by_name[name])
    refunds = ("small_refund", "second_small_refund", "partial_refund", "full_refund")

    results = _post_concurrently([life.by_name[f"{name}{kind}"] for name in refunds for kind in ("", "_object")])

    assert results == [200] * 8
    assert not StripeEvent.objects.filter(status=StripeEvent.Status.HELD).exists()
    reversals = CommissionEntry.objects.filter(kind="reversal").order_by("earned_at")
    assert [e.amount for e in reversals] == [Decimal(x) for x in ("-0.03", "-0.03", "-2.95", "-8.99")]
