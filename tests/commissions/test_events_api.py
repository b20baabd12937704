"""POST /api/v1/events: signature, validation (400 with field, nothing written), idempotency."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from commissions.models import CommissionEntry, MerchantEvent, Payment
from commissions.signing import compute_signature, signature_header
from tests.commissions.conftest import cancelled, paid, refunded, row_counts, signed_up

pytestmark = pytest.mark.django_db


# --- method ----------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["get", "put", "patch", "delete"])
def test_only_post_is_accepted_and_nothing_is_written(client, method):
    before = row_counts()
    response = getattr(client, method)("/api/v1/events")
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert row_counts() == before


def test_the_events_url_answers_without_a_csrf_token(click):
    csrf_checking = Client(enforce_csrf_checks=True)
    raw = json.dumps(signed_up("cus_1", click.id)).encode()
    header = signature_header(secret=settings.EVENTS_SIGNING_SECRET, body=raw)
    response = csrf_checking.post(
        "/api/v1/events", data=raw, content_type="application/json", HTTP_X_PARTNER_SIGNATURE=header
    )
    assert response.status_code == 201


# --- signature -------------------------------------------------------------------------


def test_a_missing_signature_is_refused_with_401_and_nothing_written(send, click):
    before = row_counts()
    response = send(signed_up("cus_1", click.id), header="")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "missing_signature"
    assert row_counts() == before


def test_a_signature_made_with_another_secret_is_refused(send, click):
    response = send(signed_up("cus_1", click.id), secret="not-the-secret")
    assert response.status_code == 401
    assert response.json() == {
        "error": {"code": "invalid_signature", "message": response.json()["error"]["message"], "field": None}
    }
    assert MerchantEvent.objects.count() == 0


def test_a_signature_of_other_bytes_is_refused(send, settings, click):
    body = json.dumps(signed_up("cus_1", click.id)).encode()
    header = signature_header(secret=settings.EVENTS_SIGNING_SECRET, body=body + b" ")
    assert send(body, header=header).status_code == 401


@pytest.fixture
def server_clock(monkeypatch):
    """The server's clock, frozen (only the signature check reads it)."""
    now = int(time.time())
    monkeypatch.setattr("commissions.signing._clock", lambda: float(now))
    return now


@pytest.mark.parametrize("age", [301, -301, 3600])
def test_a_signature_older_or_newer_than_the_tolerance_is_refused(send, click, server_clock, age):
    response = send(signed_up("cus_1", click.id), timestamp=server_clock - age)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "signature_expired"


@pytest.mark.parametrize("age", [300, -300, 0])
def test_a_signature_within_the_tolerance_is_accepted(send, click, server_clock, age):
    assert send(signed_up("cus_1", click.id), timestamp=server_clock - age).status_code == 201


@pytest.mark.parametrize(
    "header", ["garbage", "t=abc,v1=00", "v1=" + "0" * 64, "t=123", "t=,v1=", "t=1e9,v1=aa", "t=١٢٣,v1=aa"]
)
def test_a_malformed_signature_header_is_refused(send, click, header):
    assert send(signed_up("cus_1", click.id), header=header).status_code == 401


def test_one_matching_signature_among_several_is_enough(send, settings, click):
    body = json.dumps(signed_up("cus_1", click.id)).encode()
    t = int(time.time())
    good = compute_signature(secret=settings.EVENTS_SIGNING_SECRET, timestamp=t, body=body)
    assert send(body, header=f"t={t},v1={'0' * 64},v1={good}").status_code == 201


def test_the_signature_is_checked_before_the_body(send):
    response = send(b"not json", secret="wrong")
    assert response.status_code == 401


# --- malformed bodies: 400, precise field, nothing written -----------------------------


def _payment(**data_overrides):
    body = paid("pay_1", "cus_1")
    body["data"].update(data_overrides)
    return body


def _without(body: dict, key: str, *, in_data: bool = False) -> dict:
    (body["data"] if in_data else body).pop(key)
    return body


BAD_BODIES = [
    # (case, body or raw bytes, expected code, expected field)
    ("not json", b"{not json", "invalid_json", None),
    ("not utf-8", b'{"id": "\xff"}', "invalid_json", None),
    ("a json array", b"[]", "invalid_type", None),
    ("NaN", b'{"id": NaN}', "invalid_json", None),
    ("duplicate key", b'{"id": "a", "id": "b"}', "invalid_json", None),
    ("unknown type", {**paid("pay_1", "cus_1"), "type": "payment.failed"}, "unknown_event_type", "type"),
    ("type not a string", {**paid("pay_1", "cus_1"), "type": 7}, "unknown_event_type", "type"),
    ("missing type", _without(paid("pay_1", "cus_1"), "type"), "missing_field", "type"),
    ("missing id", _without(paid("pay_1", "cus_1"), "id"), "missing_field", "id"),
    ("empty id", {**paid("pay_1", "cus_1"), "id": ""}, "invalid_value", "id"),
    ("blank id", {**paid("pay_1", "cus_1"), "id": "   "}, "invalid_value", "id"),
    ("numeric id", {**paid("pay_1", "cus_1"), "id": 12}, "invalid_type", "id"),
    ("extra top-level field", {**paid("pay_1", "cus_1"), "livemode": True}, "unknown_field", "livemode"),
    ("missing created", _without(paid("pay_1", "cus_1"), "created"), "missing_field", "created"),
    (
        "created without time zone",
        {**paid("pay_1", "cus_1"), "created": "2025-01-01T10:00:00"},
        "invalid_datetime",
        "created",
    ),
    ("created not a date", {**paid("pay_1", "cus_1"), "created": "yesterday"}, "invalid_datetime", "created"),
    ("created as a number", {**paid("pay_1", "cus_1"), "created": 1735725600}, "invalid_datetime", "created"),
    ("data not an object", {**paid("pay_1", "cus_1"), "data": []}, "invalid_type", "data"),
    ("missing data", _without(paid("pay_1", "cus_1"), "data"), "missing_field", "data"),
    ("amount as a number", _payment(amount=49.0), "invalid_amount", "data.amount"),
    ("amount with 3 decimals", _payment(amount="49.999"), "invalid_amount", "data.amount"),
    ("negative amount", _payment(amount="-5.00"), "invalid_amount", "data.amount"),
    ("zero amount", _payment(amount="0.00"), "invalid_amount", "data.amount"),
    ("amount in words", _payment(amount="ten"), "invalid_amount", "data.amount"),
    ("amount with exponent", _payment(amount="1e3"), "invalid_amount", "data.amount"),
    ("amount too large", _payment(amount="12345678901.00"), "invalid_amount", "data.amount"),
    ("other currency", _payment(currency="EUR"), "invalid_currency", "data.currency"),
    ("lower-case currency", _payment(currency="usd"), "invalid_currency", "data.currency"),
    ("unknown plan", _payment(plan="D"), "invalid_value", "data.plan"),
    ("zero seats", _payment(seats=0), "invalid_value", "data.seats"),
    ("seats as a string", _payment(seats="3"), "invalid_type", "data.seats"),
    ("seats as a float", _payment(seats=2.5), "invalid_type", "data.seats"),
    ("seats as a boolean", _payment(seats=True), "invalid_type", "data.seats"),
    (
        "missing payment_id",
        _without(paid("pay_1", "cus_1"), "payment_id", in_data=True),
        "missing_field",
        "data.payment_id",
    ),
    ("extra data field", _payment(coupon="X"), "unknown_field", "data.coupon"),
    ("customer_id a number", _payment(customer_id=5), "invalid_type", "data.customer_id"),
    (
        "sign-up without click_id",
        _without(signed_up("cus_1", None), "click_id", in_data=True),
        "missing_field",
        "data.click_id",
    ),
    ("sign-up with a bad email", signed_up("cus_1", None, email="not-an-email"), "invalid_email", "data.email"),
    ("refund amount negative", refunded("pay_1", "-1.00"), "invalid_amount", "data.amount"),
    (
        "refund without amount",
        _without(refunded("pay_1", "1.00"), "amount", in_data=True),
        "missing_field",
        "data.amount",
    ),
    (
        "payment fields on a cancellation",
        {**cancelled("cus_1"), "data": {"customer_id": "c", "amount": "1.00"}},
        "unknown_field",
        "data.amount",
    ),
]


@pytest.mark.parametrize(("case", "body", "code", "field"), BAD_BODIES, ids=[c[0] for c in BAD_BODIES])
def test_a_malformed_event_is_refused_with_400_naming_the_field_and_nothing_is_written(send, case, body, code, field):
    before = row_counts()
    response = send(body)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert (error["code"], error["field"]) == (code, field)
    assert error["message"]
    assert set(response.json()) == {"error"}
    assert row_counts() == before


def test_a_refund_above_what_is_left_is_refused_and_nothing_is_written(send, referral_of):
    referral_of("cus_1")
    assert send(paid("pay_1", "cus_1", "49.00")).status_code == 201
    assert send(refunded("pay_1", "40.00")).status_code == 201
    before = row_counts()
    response = send(refunded("pay_1", "9.01"))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "refund_exceeds_payment"
    assert response.json()["error"]["field"] == "data.amount"
    assert row_counts() == before
    assert Payment.objects.get().refunded_amount == pytest.approx(40)


def test_a_refused_refund_may_be_sent_again_corrected_under_the_same_id(send, referral_of):
    referral_of("cus_1")
    send(paid("pay_1", "cus_1", "49.00"))
    assert send(refunded("pay_1", "50.00", event_id="evt_r")).status_code == 400
    assert send(refunded("pay_1", "49.00", event_id="evt_r")).status_code == 201


# --- idempotency -----------------------------------------------------------------------


def test_a_replay_answers_200_with_the_first_response_and_changes_nothing(
    send, referral_of, django_capture_on_commit_callbacks
):
    referral_of("cus_1")
    body = paid("pay_1", "cus_1", "49.99")
    first = send(body)
    before = row_counts()
    with django_capture_on_commit_callbacks() as callbacks:
        replay = send(body)
    assert (first.status_code, replay.status_code) == (201, 200)
    assert replay.json() == first.json()
    assert row_counts() == before
    assert CommissionEntry.objects.get().amount == pytest.approx(10)
    assert callbacks == []  # no balance recalculation for a replay


def test_a_replay_reformatted_by_the_merchant_is_still_the_same_event(send, referral_of):
    referral_of("cus_1")
    body = paid("pay_1", "cus_1", "49.00")
    first = send(json.dumps(body).encode())
    reformatted = json.dumps(dict(reversed(list(body.items()))), indent=2).encode()
    replay = send(reformatted)
    assert replay.status_code == 200
    assert replay.json() == first.json()


def test_the_same_id_with_a_different_body_is_a_409_and_changes_nothing(send, referral_of):
    referral_of("cus_1")
    body = paid("pay_1", "cus_1", "49.00", event_id="evt_same")
    assert send(body).status_code == 201
    before = row_counts()
    changed = paid("pay_1", "cus_1", "59.00", event_id="evt_same")
    response = send(changed)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "event_id_conflict"
    assert response.json()["error"]["field"] == "id"
    assert row_counts() == before


def test_an_event_id_is_unique_across_types(send, referral_of):
    referral_of("cus_1")
    send(paid("pay_1", "cus_1", event_id="evt_x"))
    assert send(cancelled("cus_1", event_id="evt_x")).status_code == 409


def test_every_accepted_event_is_logged_with_its_raw_body_and_response(send, click):
    raw = json.dumps(signed_up("cus_1", click.id, event_id="evt_log")).encode()
    response = send(raw)
    logged = MerchantEvent.objects.get(event_id="evt_log")
    assert logged.body == raw.decode()
    assert logged.type == "customer.signed_up"
    assert logged.outcome == MerchantEvent.Outcome.APPLIED
    assert logged.response_status == 201
    assert logged.response_body == response.json()
    assert logged.referral is not None


def test_an_event_for_a_stranger_is_logged_as_not_referred(send):
    response = send(cancelled("cus_nobody", event_id="evt_stranger"))
    assert response.status_code == 201
    assert response.json() == {"referral": None}
    logged = MerchantEvent.objects.get(event_id="evt_stranger")
    assert logged.outcome == MerchantEvent.Outcome.NOT_REFERRED


def test_answers_are_not_cached(send, click):
    assert send(signed_up("cus_1", click.id))["Cache-Control"] == "no-store"


def test_the_event_time_is_the_merchants_created_not_the_arrival(send, click):
    created = timezone.now() - timedelta(minutes=30)
    send(signed_up("cus_1", click.id, created=created, event_id="evt_t"))
    assert MerchantEvent.objects.get(event_id="evt_t").created == created
