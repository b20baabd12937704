"""Reading Stripe's shapes: currency exponents and where a price names its plan."""

from __future__ import annotations

from decimal import Decimal

import pytest

from commissions.stripe_billing import mapping
from tests.stripe_billing.stripe_world import fixture


@pytest.mark.parametrize(
    ("amount", "currency", "major"),
    [
        (1000, "usd", "10.00"),
        (1000, "USD", "10.00"),
        (500, "jpy", "500"),
        (12345, "krw", "12345"),
        (5120, "kwd", "5.120"),
        (1001, "bhd", "1.001"),
        (500, "isk", "5.00"),  # ISK is two-decimal in Stripe's API
    ],
)
def test_amounts_are_divided_by_the_currencys_minor_unit(amount, currency, major):
    assert mapping.major_units(amount, currency) == Decimal(major)


def test_a_price_names_its_plan_in_its_lookup_key_or_its_metadata(settings):
    price = fixture("price")
    price.update(lookup_key="b", metadata={"plan": "C"})
    settings.STRIPE_PLAN_FROM = "lookup_key"
    assert mapping.plan_of_price(price) == "B"
    settings.STRIPE_PLAN_FROM = "metadata"
    assert mapping.plan_of_price(price) == "C"
    price["metadata"] = {"plan": "enterprise"}
    assert mapping.plan_of_price(price) is None


def test_stripes_example_invoice_reads_in_the_current_shape():
    invoice = fixture("invoice")  # as Stripe wrote it: subscription under parent.subscription_details
    action = mapping.action_for("invoice.paid", invoice)
    assert isinstance(action, mapping.InvoicePaid)
    assert (action.invoice_id, action.customer_id, action.amount, action.currency) == (
        "in_1Pgc6tB7WZ01zgkWu9fdqL6I",
        "cus_QXg1o8vcGmoR32",
        0,
        "USD",
    )
    assert action.subscription_id == "subscription"


def test_stripes_example_subscription_names_its_price_and_seats(settings):
    subscription = fixture("subscription")
    subscription["items"]["data"][0]["price"]["lookup_key"] = "A"
    action = mapping.action_for("customer.subscription.updated", subscription)
    assert (action.subscription_id, action.plan, action.seats, action.prices) == (
        "sub_1Pgc6rB7WZ01zgkWNy0Cn5nw",
        "A",
        1,
        {"price_1PgafmB7WZ01zgkW6dKueIc5": "A"},
    )


def test_an_event_without_an_object_id_is_unused():
    assert isinstance(mapping.action_for("invoice.paid", {"amount_paid": 100}), mapping.Unused)
