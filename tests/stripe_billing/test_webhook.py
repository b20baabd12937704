"""POST /api/v1/integrations/stripe: verification, the event log, and a referred customer's life."""

from __future__ import annotations

import json
import time
from decimal import Decimal

import pytest

from commissions.models import CommissionEntry, MerchantEvent, Payment, Referral
from commissions.stripe_billing.health import stripe_health
from commissions.stripe_billing.models import StripeEvent
from tests.stripe_billing.conftest import DAY, SECRET, T0, at, customer_life, ledger_state
from tests.stripe_billing.stripe_world import StripeWorld, fixture, post

pytestmark = pytest.mark.django_db

Status = StripeEvent.Status


def _post_all(client, events):
    answers = [post(client, event, secret=SECRET) for event in events]
    assert [a.status_code for a in answers] == [200] * len(events), [a.content for a in answers]
    return answers


def test_a_whole_customer_life_signed_as_stripe_signs_it(client, click):
    life = customer_life(str(click.id))
    answers = _post_all(client, life.events)

    statuses = {name: StripeEvent.objects.get(stripe_id=e["id"]).status for name, e in life.by_name.items()}
    assert statuses == {
        "checkout": Status.APPLIED,
        "sub_created": Status.APPLIED,
        "trial_invoice": Status.IGNORED,
        "sub_active": Status.APPLIED,
        "first_invoice": Status.APPLIED,
        "first_link": Status.APPLIED,
        "first_succeeded": Status.DUPLICATE,
        "sub_seats": Status.APPLIED,
        "proration_invoice": Status.APPLIED,
        "proration_link": Status.APPLIED,
        **{
            f"{name}{kind}": Status.APPLIED
            for name in ("small_refund", "second_small_refund", "partial_refund", "full_refund")
            for kind in ("", "_object")
        },
        "sub_deleted": Status.APPLIED,
    }
    assert json.loads(answers[0].content)["status"] == "applied"
    referral = Referral.objects.get(customer_id=life.customer)
    assert referral.partner_id == click.link.partner_id
    assert (referral.status, referral.plan, referral.seats) == ("cancelled", "B", 5)
    assert referral.cancelled_at == at(T0 + 27 * DAY)
    assert referral.trial_ends_at == at(T0 + 14 * DAY)
    first = Payment.objects.get(payment_id="in_tfirst")
    assert (first.amount, first.refunded_amount, first.plan, first.seats, first.currency) == (
        Decimal("60.00"),
        Decimal("60.00"),
        "B",
        3,
        "USD",
    )
    assert first.paid_at == at(T0 + 14 * DAY + 10)
    prorated = Payment.objects.get(payment_id="in_tprorate")
    assert (prorated.amount, prorated.seats) == (Decimal("16.00"), 5)
    entries = list(
        CommissionEntry.objects.order_by("earned_at", "id").values_list("payment__payment_id", "amount", "earned_at")
    )
    # Each refund reverses its own part, half-up, on its own day; the last one what is left.
    assert entries == [
        ("in_tfirst", Decimal("12.00"), at(T0 + 14 * DAY + 10)),
        ("in_tprorate", Decimal("3.20"), at(T0 + 20 * DAY + 5)),
        ("in_tfirst", Decimal("-0.03"), at(T0 + 23 * DAY)),
        ("in_tfirst", Decimal("-0.03"), at(T0 + 24 * DAY)),
        ("in_tfirst", Decimal("-2.95"), at(T0 + 25 * DAY)),
        ("in_tfirst", Decimal("-8.99"), at(T0 + 26 * DAY)),
    ]
    assert (referral.total_paid, referral.total_commission) == (Decimal("16.00"), Decimal("3.20"))
    # The merchant event log shows what each Stripe event was applied as.
    assert MerchantEvent.objects.filter(event_id__startswith="stripe:").count() == 9


def test_an_event_redelivered_changes_nothing(client, click):
    life = customer_life(str(click.id))
    _post_all(client, life.events)
    before = ledger_state(life.customer), StripeEvent.objects.count(), MerchantEvent.objects.count()

    again = _post_all(client, life.events)

    assert (ledger_state(life.customer), StripeEvent.objects.count(), MerchantEvent.objects.count()) == before
    assert json.loads(again[4].content)["status"] == "applied"  # the first answer's outcome


def test_an_invoice_before_its_checkout_is_held_then_applied(client, click):
    life = customer_life(str(click.id))
    named = life.by_name
    _post_all(client, [named["sub_created"], named["first_invoice"]])
    held = StripeEvent.objects.get(stripe_id=named["first_invoice"]["id"])
    assert (held.status, held.waiting_for) == (Status.HELD, f"customer:{life.customer}")
    assert stripe_health().held == 1
    assert not Payment.objects.exists()

    _post_all(client, [named["checkout"]])

    held.refresh_from_db()
    assert held.status == Status.APPLIED
    assert Payment.objects.get(payment_id="in_tfirst").amount == Decimal("60.00")
    assert stripe_health().held == 0


def test_an_invoice_naming_its_price_by_id_waits_for_the_subscription_that_names_the_plan(client, click):
    life = customer_life(str(click.id))
    named = life.by_name
    _post_all(client, [named["checkout"], named["first_invoice"]])
    held = StripeEvent.objects.get(stripe_id=named["first_invoice"]["id"])
    assert (held.status, held.waiting_for) == (Status.HELD, "subscription:sub_tlife")

    _post_all(client, [named["sub_created"]])

    held.refresh_from_db()
    assert held.status == Status.APPLIED
    assert Payment.objects.get(payment_id="in_tfirst").plan == "B"


def test_a_refund_before_its_payment_is_held_until_the_payment_its_link_and_its_refund_arrive(client, click):
    life = customer_life(str(click.id))
    named = life.by_name
    _post_all(client, [named["checkout"], named["sub_created"], named["small_refund"]])
    refund = StripeEvent.objects.get(stripe_id=named["small_refund"]["id"])
    assert (refund.status, refund.waiting_for) == (Status.HELD, "payment:pi_tfirst")

    _post_all(client, [named["first_link"]])
    refund.refresh_from_db()
    assert (refund.status, refund.waiting_for) == (Status.HELD, "invoice:in_tfirst")

    _post_all(client, [named["first_invoice"]])
    refund.refresh_from_db()
    # The charge says 0.13 is refunded, but not by which refund (of when): it waits for it.
    assert (refund.status, refund.waiting_for) == (Status.HELD, "refunds:ch_tfirst")
    assert Payment.objects.get(payment_id="in_tfirst").refunded_amount == Decimal("0.00")

    _post_all(client, [named["small_refund_object"]])
    refund.refresh_from_db()
    assert refund.status == Status.APPLIED
    assert Payment.objects.get(payment_id="in_tfirst").refunded_amount == Decimal("0.13")


def test_a_cancellation_delivered_before_a_payment_still_ends_cancelled(client, click):
    life = customer_life(str(click.id))
    named = life.by_name
    _post_all(client, [named["checkout"], named["sub_created"], named["sub_deleted"], named["first_invoice"]])

    referral = Referral.objects.get(customer_id=life.customer)
    assert referral.status == "cancelled"
    assert referral.cancelled_at == at(T0 + 27 * DAY)
    assert referral.first_paid_at == at(T0 + 14 * DAY + 10)


def test_older_api_shapes_top_level_subscription_expanded_price_and_charge_invoice(client, click):
    w = StripeWorld(prefix="o")
    _post_all(client, [w.checkout(customer="cus_old", click_id=str(click.id), at=T0)])
    invoice = w.invoice(
        "invoice.paid",
        invoice="in_old",
        customer="cus_old",
        sub="sub_old",
        lines=[(4900, "price_plan_C", 2, False)],
        at=T0 + 10,
        shape="older",
    )
    assert "parent" not in invoice["data"]["object"]
    refund = w.charge_refunded(
        charge="ch_old",
        customer="cus_old",
        payment_intent=None,
        amount=4900,
        amount_refunded=900,
        at=T0 + 20,
        invoice="in_old",
        refunds=[w.refund_object(refund="re_old", charge="ch_old", payment_intent=None, amount=900, at=T0 + 20)],
    )

    _post_all(client, [invoice, refund])

    payment = Payment.objects.get(payment_id="in_old")
    assert (payment.amount, payment.plan, payment.seats, payment.refunded_amount) == (
        Decimal("49.00"),
        "C",
        2,
        Decimal("9.00"),
    )


@pytest.mark.parametrize(
    ("currency", "minor", "major", "commission"),
    [("jpy", 4900, "4900.00", "980.00"), ("kwd", 12340, "12.34", "2.47"), ("usd", 4999, "49.99", "10.00")],
)
def test_amounts_are_read_with_the_currency_exponent(client, click, settings, currency, minor, major, commission):
    settings.PROGRAM_CURRENCY = currency.upper()
    w = StripeWorld(currency=currency, prefix="z")
    price = w.price(plan="A", unit_amount=minor)
    events = [
        w.checkout(customer="cus_z", click_id=str(click.id), at=T0),
        w.subscription(
            "customer.subscription.created",
            sub="sub_z",
            customer="cus_z",
            price=price,
            quantity=1,
            status="active",
            at=T0 + 1,
        ),
        w.invoice(
            "invoice.paid",
            invoice="in_z",
            customer="cus_z",
            sub="sub_z",
            lines=[(minor, price["id"], 1, False)],
            at=T0 + 2,
        ),
    ]
    _post_all(client, events)

    payment = Payment.objects.get(payment_id="in_z")
    assert (payment.amount, payment.currency) == (Decimal(major), currency.upper())
    assert CommissionEntry.objects.get(payment=payment).amount == Decimal(commission)


def test_a_payment_in_another_currency_is_logged_and_earns_nothing(client, click):
    w = StripeWorld(currency="eur", prefix="e")
    price = w.price(plan="A", unit_amount=4900)
    events = [
        w.checkout(customer="cus_e", click_id=str(click.id), at=T0),
        w.subscription(
            "customer.subscription.created",
            sub="sub_e",
            customer="cus_e",
            price=price,
            quantity=1,
            status="active",
            at=T0 + 1,
        ),
        w.invoice(
            "invoice.paid",
            invoice="in_e",
            customer="cus_e",
            sub="sub_e",
            lines=[(4900, price["id"], 1, False)],
            at=T0 + 2,
        ),
    ]
    answers = _post_all(client, events)

    row = StripeEvent.objects.get(stripe_id=events[2]["id"])
    assert row.status == Status.REJECTED
    assert "EUR" in row.note and "USD" in row.note
    assert json.loads(answers[2].content)["note"] == row.note
    assert not Payment.objects.exists()


def test_a_wrong_secret_answers_400_and_writes_nothing(client, click):
    life = customer_life(str(click.id))
    response = post(client, life.events[0], secret="whsec_someone_else")

    assert response.status_code == 400
    assert json.loads(response.content)["error"]["code"] == "invalid_signature"
    assert not StripeEvent.objects.exists()
    assert not Referral.objects.exists()
    health = stripe_health()
    assert (health.failures_today, health.last_event) == (1, None)
    assert "invalid_signature" in health.last_failure_reason


def test_a_stale_timestamp_answers_400_and_writes_nothing(client, click):
    life = customer_life(str(click.id))
    response = post(client, life.events[0], secret=SECRET, timestamp=int(time.time()) - 301)

    assert response.status_code == 400
    assert not StripeEvent.objects.exists()


def test_a_missing_signature_answers_400(client):
    response = client.post("/api/v1/integrations/stripe", data=b"{}", content_type="application/json")
    assert response.status_code == 400
    assert json.loads(response.content)["error"]["code"] == "missing_signature"


def test_a_body_changed_after_signing_answers_400(client, click):
    life = customer_life(str(click.id))
    body = json.dumps(life.events[0]).encode()
    from tests.stripe_billing.stripe_world import sign

    response = client.post(
        "/api/v1/integrations/stripe",
        data=body.replace(b"cus_tlife", b"cus_other"),
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=sign(body, secret=SECRET),
    )
    assert response.status_code == 400
    assert not StripeEvent.objects.exists()


def test_an_event_type_we_do_not_use_is_kept_in_the_log(client):
    event = fixture("event")  # Stripe's own example: a plan.created

    response = post(client, event, secret=SECRET)

    assert response.status_code == 200
    row = StripeEvent.objects.get(stripe_id=event["id"])
    assert (row.type, row.status) == ("plan.created", Status.IGNORED)
    assert stripe_health().last_event == row


def test_a_signed_body_that_is_not_an_event_answers_400_and_writes_nothing(client):
    response = post(client, {"id": "evt_x"}, secret=SECRET)
    assert response.status_code == 400
    assert not StripeEvent.objects.exists()


def test_a_checkout_with_the_click_in_metadata_refers_the_customer(client, click):
    w = StripeWorld(prefix="m")
    _post_all(client, [w.checkout(customer="cus_meta", click_id=str(click.id), at=T0, via_metadata=True)])
    assert Referral.objects.get(customer_id="cus_meta").click_id == click.id


@pytest.mark.parametrize("type_", ["customer.created", "customer.updated"])
def test_a_customer_created_with_aff_click_metadata_refers_the_customer(client, click, type_):
    w = StripeWorld(prefix="c")
    _post_all(client, [w.customer_created(customer="cus_created", click_id=str(click.id), at=T0, type_=type_)])
    assert Referral.objects.get(customer_id="cus_created").link_id == click.link_id


def test_payments_of_a_customer_seen_without_a_click_are_not_referred(client, click):
    w = StripeWorld(prefix="n")
    price = w.price(plan="A", unit_amount=4900)
    events = [
        w.checkout(customer="cus_n", click_id=None, at=T0),
        w.subscription(
            "customer.subscription.created",
            sub="sub_n",
            customer="cus_n",
            price=price,
            quantity=1,
            status="active",
            at=T0 + 1,
        ),
        w.invoice(
            "invoice.paid",
            invoice="in_n",
            customer="cus_n",
            sub="sub_n",
            lines=[(4900, price["id"], 1, False)],
            at=T0 + 2,
        ),
    ]
    _post_all(client, events)
    assert StripeEvent.objects.get(stripe_id=events[0]["id"]).status == Status.IGNORED
    assert StripeEvent.objects.get(stripe_id=events[2]["id"]).status == Status.NOT_REFERRED
    assert stripe_health().held == 0
    assert not Payment.objects.exists()


def test_a_later_invoice_delivered_first_leaves_the_first_invoice_as_the_new_subscription(client, click):
    from tracking.models import DailyLinkStats

    life = customer_life(str(click.id))
    named = life.by_name
    _post_all(client, [named["checkout"], named["sub_created"], named["proration_invoice"], named["first_invoice"]])

    referral = Referral.objects.get(customer_id=life.customer)
    assert referral.first_paid_at == at(T0 + 14 * DAY + 10)
    counted = dict(
        DailyLinkStats.objects.filter(link_id=click.link_id, new_subscriptions__gt=0).values_list(
            "day", "new_subscriptions"
        )
    )
    assert counted == {at(T0 + 14 * DAY).date(): 1}


def test_the_openapi_document_lists_the_stripe_webhook_with_its_answers(client):
    document = client.get("/api/v1/openapi.json").json()

    operation = document["paths"]["/api/v1/integrations/stripe"]["post"]
    assert set(operation["responses"]) == {"200", "400"}
    assert any(p["name"] == "Stripe-Signature" and p["in"] == "header" for p in operation["parameters"])
    assert set(operation["requestBody"]["content"]["application/json"]["schema"]["required"]) == {
        "id",
        "type",
        "created",
        "data",
    }
    ok = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert set(document["components"]["schemas"][ok]["properties"]) == {
        "received",
        "id",
        "status",
        "note",
        "applied_as",
    }


def test_the_webhook_still_verifies_the_raw_body_behind_the_published_operation(client, click):
    life = customer_life(str(click.id))
    event = life.by_name["checkout"]
    body = json.dumps(event).encode()
    spaced = json.dumps(event, indent=2).encode()  # the same JSON, other bytes: its signature fails
    from tests.stripe_billing.stripe_world import WEBHOOK_PATH, sign

    refused = client.post(
        WEBHOOK_PATH, data=spaced, content_type="application/json", HTTP_STRIPE_SIGNATURE=sign(body, secret=SECRET)
    )
    accepted = post(client, event, secret=SECRET, body=body)

    assert refused.status_code == 400 and accepted.status_code == 200
    assert json.loads(accepted.content)["status"] == "applied"
