"""Refunds of one charge: each Stripe refund applied on its own, in Stripe's order, at its time."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from commissions.models import CommissionEntry, Payment, Refund
from commissions.signing import signature_header
from commissions.stripe_billing.models import StripeEvent
from commissions.stripe_billing.services import stripe_event_receive, stripe_refunds_waited
from tests.stripe_billing.conftest import DAY, T0, at, customer_life, ledger_state
from tests.stripe_billing.fake_stripe import FakeStripe

pytestmark = pytest.mark.django_db

Status = StripeEvent.Status
BEFORE_REFUNDS = (
    "checkout",
    "sub_created",
    "sub_active",
    "first_invoice",
    "first_link",
    "sub_seats",
    "proration_invoice",
    "proration_link",
)
REFUNDS = ("small_refund", "second_small_refund", "partial_refund", "full_refund")


def _deliver(life, names):
    for name in names:
        stripe_event_receive(payload=life.by_name[name])


def _reversals() -> list[tuple[Decimal, object]]:
    return list(
        CommissionEntry.objects.filter(kind="reversal").order_by("earned_at", "id").values_list("amount", "earned_at")
    )


IN_ORDER = [
    (Decimal("-0.03"), at(T0 + 23 * DAY)),
    (Decimal("-0.03"), at(T0 + 24 * DAY)),
    (Decimal("-2.95"), at(T0 + 25 * DAY)),
    (Decimal("-8.99"), at(T0 + 26 * DAY)),
]


def test_refunds_delivered_backwards_end_with_the_in_order_ledger(click):
    life = customer_life(str(click.id))
    _deliver(life, BEFORE_REFUNDS)

    # The charge's events newest first, then the refund objects newest first.
    _deliver(life, reversed(REFUNDS))
    assert not Refund.objects.exists()  # no refund can be placed before its earlier ones are known
    _deliver(life, [f"{name}_object" for name in reversed(REFUNDS)])

    assert _reversals() == IN_ORDER
    assert list(Refund.objects.order_by("refunded_at").values_list("amount", flat=True)) == [
        Decimal("0.13"),
        Decimal("0.13"),
        Decimal("14.74"),
        Decimal("45.00"),
    ]
    assert set(
        StripeEvent.objects.filter(type__in=("charge.refunded", "refund.created")).values_list("status", flat=True)
    ) == {Status.APPLIED}


def test_a_later_refund_known_before_an_earlier_one_waits_for_it(click):
    life = customer_life(str(click.id))
    _deliver(life, BEFORE_REFUNDS)
    # The second refund and its charge.refunded (cumulative 0.26), and the first charge.refunded
    # (0.13): the first refund's own object is still missing.
    _deliver(life, ["second_small_refund_object", "second_small_refund", "small_refund"])
    assert not Refund.objects.exists()

    _deliver(life, ["small_refund_object"])

    assert _reversals() == IN_ORDER[:2]


def test_a_redelivered_refund_event_changes_nothing(click):
    life = customer_life(str(click.id))
    _deliver(life, [*BEFORE_REFUNDS, "small_refund_object", "small_refund"])
    before = ledger_state(life.customer)

    _deliver(life, ["small_refund_object", "small_refund"])

    assert ledger_state(life.customer) == before
    assert _reversals() == IN_ORDER[:1]


def test_without_refund_events_a_charge_refunded_waits_then_applies_the_growth_on_its_day(click, settings):
    settings.STRIPE_REFUND_WAIT_SECONDS = 3600
    life = customer_life(str(click.id))
    _deliver(life, [*BEFORE_REFUNDS, "second_small_refund"])  # cumulative 0.26, no refund event
    held = StripeEvent.objects.get(stripe_id=life.by_name["second_small_refund"]["id"])
    assert (held.status, held.waiting_for) == (Status.HELD, "refunds:ch_tfirst")

    assert stripe_refunds_waited(now=timezone.now() + timedelta(minutes=30)) == 0
    assert stripe_refunds_waited(now=timezone.now() + timedelta(minutes=61)) == 1

    held.refresh_from_db()
    assert held.status == Status.APPLIED
    # The contract's cumulative rule: the growth, rounded once, on the event's day.
    assert _reversals() == [(Decimal("-0.05"), at(T0 + 24 * DAY))]
    # Refund events arriving later add nothing: the payment already had its 0.26 refunded.
    _deliver(life, ["small_refund_object", "second_small_refund_object", "small_refund"])
    assert Payment.objects.get(payment_id="in_tfirst").refunded_amount == Decimal("0.26")
    assert len(_reversals()) == 1


def test_with_an_api_key_the_charges_refunds_are_listed(click, settings):
    fake = FakeStripe(api_key="sk_test_fake")
    settings.STRIPE_API_BASE = fake.start()
    settings.STRIPE_API_KEY = "sk_test_fake"
    try:
        life = customer_life(str(click.id))
        for name in REFUNDS:
            fake.add("refunds", life.by_name[f"{name}_object"]["data"]["object"])
        _deliver(life, BEFORE_REFUNDS)

        _deliver(life, reversed(REFUNDS))  # charge.refunded only, newest first

        assert _reversals() == IN_ORDER
        assert any("/v1/refunds?charge=ch_tfirst" in path for path in fake.requests)
    finally:
        fake.stop()


def test_refunds_stripe_will_not_list_hold_the_charge_refunded_with_a_note(click, settings):
    fake = FakeStripe(api_key="sk_test_fake")
    settings.STRIPE_API_BASE = fake.start()
    settings.STRIPE_API_KEY = "sk_test_revoked"  # Stripe answers 401
    try:
        life = customer_life(str(click.id))
        _deliver(life, [*BEFORE_REFUNDS, "small_refund"])
    finally:
        fake.stop()
    held = StripeEvent.objects.get(stripe_id=life.by_name["small_refund"]["id"])
    assert (held.status, held.waiting_for) == (Status.HELD, "refunds:ch_tfirst")
    assert held.note.startswith("The refunds of ch_tfirst could not be listed in Stripe (AuthenticationError: ")
    assert held.note.endswith("handle this event again once Stripe answers.")
    assert _reversals() == []


def test_a_refund_also_reported_through_the_events_api_reverses_once(client, click):
    life = customer_life(str(click.id))
    _deliver(life, BEFORE_REFUNDS)
    body = {
        "id": "merchant_refund_1",
        "type": "payment.refunded",
        "created": at(T0 + 23 * DAY).isoformat(),
        "data": {"payment_id": "in_tfirst", "amount": "0.13"},
    }
    raw = json.dumps(body).encode()
    header = signature_header(secret=django_settings.EVENTS_SIGNING_SECRET, body=raw)
    response = client.post("/api/v1/events", data=raw, content_type="application/json", HTTP_X_PARTNER_SIGNATURE=header)
    assert response.status_code == 201

    _deliver(life, ["small_refund_object", "small_refund"])

    assert Payment.objects.get(payment_id="in_tfirst").refunded_amount == Decimal("0.13")
    assert _reversals() == IN_ORDER[:1]


def test_a_refund_event_whose_charge_refunded_never_comes_is_applied_after_the_wait(click, settings):
    settings.STRIPE_REFUND_WAIT_SECONDS = 3600
    life = customer_life(str(click.id))
    _deliver(life, [*BEFORE_REFUNDS, "small_refund_object", "second_small_refund_object"])
    assert set(StripeEvent.objects.filter(type="refund.created").values_list("status", flat=True)) == {Status.HELD}

    assert stripe_refunds_waited(now=timezone.now() + timedelta(minutes=61)) == 2

    assert _reversals() == IN_ORDER[:2]
    assert set(StripeEvent.objects.filter(type="refund.created").values_list("status", flat=True)) == {Status.APPLIED}
