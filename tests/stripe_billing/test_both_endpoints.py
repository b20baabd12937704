"""One payment reported through Stripe and through /api/v1/events earns one commission."""

from __future__ import annotations

import json

import pytest
from django.conf import settings

from commissions.models import CommissionEntry, Payment
from commissions.signing import signature_header
from commissions.stripe_billing.models import StripeEvent
from tests.stripe_billing.conftest import SECRET, T0, at, customer_life
from tests.stripe_billing.stripe_world import post

pytestmark = pytest.mark.django_db


def _events_api(client, body: dict):
    raw = json.dumps(body).encode()
    header = signature_header(secret=settings.EVENTS_SIGNING_SECRET, body=raw)
    return client.post("/api/v1/events", data=raw, content_type="application/json", HTTP_X_PARTNER_SIGNATURE=header)


def _payment_event(customer: str) -> dict:
    return {
        "id": "merchant_evt_1",
        "type": "payment.succeeded",
        "created": at(T0 + 14 * 86400 + 10).isoformat(),
        "data": {
            "payment_id": "in_tfirst",
            "customer_id": customer,
            "amount": "60.00",
            "currency": "USD",
            "plan": "B",
            "seats": 3,
        },
    }


def test_the_events_api_first_then_stripe_earns_once(client, click):
    life = customer_life(str(click.id))
    for name in ("checkout", "sub_created"):
        assert post(client, life.by_name[name], secret=SECRET).status_code == 200
    assert _events_api(client, _payment_event(life.customer)).status_code == 201

    response = post(client, life.by_name["first_invoice"], secret=SECRET)

    assert response.status_code == 200
    assert StripeEvent.objects.get(stripe_id=life.by_name["first_invoice"]["id"]).status == StripeEvent.Status.DUPLICATE
    assert Payment.objects.count() == 1
    assert [e.amount for e in CommissionEntry.objects.all()] == [__import__("decimal").Decimal("12.00")]


def test_stripe_first_then_the_events_api_earns_once(client, click):
    life = customer_life(str(click.id))
    for name in ("checkout", "sub_created", "first_invoice"):
        assert post(client, life.by_name[name], secret=SECRET).status_code == 200

    response = _events_api(client, _payment_event(life.customer))

    assert response.status_code == 200
    assert json.loads(response.content)["commission"] == {"amount": "12.00"}
    assert CommissionEntry.objects.count() == 1
