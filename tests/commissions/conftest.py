"""Helpers for the merchant events tests: build, sign and post events like a merchant does."""

from __future__ import annotations

import itertools
import json
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.utils import timezone

from commissions.models import CommissionEntry, MerchantEvent, Payment, Referral, Refund
from commissions.signing import signature_header
from tests.factories import ClickFactory, LinkFactory
from tracking.models import DailyLinkStats

_ids = itertools.count(1)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def event(type_: str, data: dict, *, created: datetime | None = None, event_id: str | None = None) -> dict:
    return {
        "id": event_id or f"evt_auto_{next(_ids)}",
        "type": type_,
        "created": iso(created or timezone.now()),
        "data": data,
    }


def signed_up(customer_id: str, click_id, *, email: str | None = None, **kw) -> dict:
    data = {"customer_id": customer_id, "click_id": None if click_id is None else str(click_id)}
    if email is not None:
        data["email"] = email
    return event("customer.signed_up", data, **kw)


def paid(payment_id: str, customer_id: str, amount: str = "49.00", *, plan: str = "A", seats: int = 1, **kw) -> dict:
    data = {
        "payment_id": payment_id,
        "customer_id": customer_id,
        "amount": amount,
        "currency": "USD",
        "plan": plan,
        "seats": seats,
    }
    return event("payment.succeeded", data, **kw)


def refunded(payment_id: str, amount: str, **kw) -> dict:
    return event("payment.refunded", {"payment_id": payment_id, "amount": amount}, **kw)


def cancelled(customer_id: str, **kw) -> dict:
    return event("subscription.cancelled", {"customer_id": customer_id}, **kw)


def row_counts() -> dict[str, int]:
    return {
        model.__name__: model.objects.count()
        for model in (MerchantEvent, Referral, Payment, Refund, CommissionEntry, DailyLinkStats)
    }


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Every factory partner gets a password; the production hasher is slow by design.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def send(client):
    """Post an event (a dict, or raw bytes) signed with the program's secret, like a merchant."""

    def _send(body, *, timestamp: int | None = None, secret: str | None = None, header: str | None = None):
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        if header is None:
            header = signature_header(secret=secret or settings.EVENTS_SIGNING_SECRET, body=raw, timestamp=timestamp)
        extra = {"HTTP_X_PARTNER_SIGNATURE": header} if header else {}
        return client.post("/api/v1/events", data=raw, content_type="application/json", **extra)

    return _send


@pytest.fixture
def click(db):
    """A click made an hour ago on a 14-day link."""
    return ClickFactory(created_at=timezone.now() - timedelta(hours=1), link=LinkFactory(trial_days=14))


@pytest.fixture
def referral_of(send, click):
    """Sign up ``customer_id`` through ``click``; returns the Referral."""

    def _make(customer_id: str = "cus_1", **kw) -> Referral:
        response = send(signed_up(customer_id, click.id, **kw))
        assert response.status_code == 201, response.content
        return Referral.objects.get(customer_id=customer_id)

    return _make


def money(value: str) -> Decimal:
    return Decimal(value)
