"""manage.py stripe_sync against a fake Stripe: it fills the gap missed webhooks left."""

from __future__ import annotations

import copy
from datetime import date
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Sum

from commissions.models import CommissionEntry, Payment
from commissions.stripe_billing.models import StripeEvent
from commissions.stripe_billing.services import stripe_event_receive
from commissions.stripe_billing.sync import stripe_sync
from tests.stripe_billing.conftest import customer_life
from tests.stripe_billing.fake_stripe import FakeStripe

pytestmark = pytest.mark.django_db

KEY = "sk_test_fake"


@pytest.fixture
def fake(settings):
    fake = FakeStripe(api_key=KEY)
    settings.STRIPE_API_BASE = fake.start()
    settings.STRIPE_API_KEY = KEY
    yield fake
    fake.stop()


def _stripe_account(fake: FakeStripe, life) -> None:
    """What Stripe's API holds for the life: its checkout, paid invoices and four refunds."""
    named = life.by_name
    fake.add("checkout/sessions", named["checkout"]["data"]["object"])
    for invoice, link in (("first_invoice", "first_link"), ("proration_invoice", "proration_link")):
        fake.add("invoices", copy.deepcopy(named[invoice]["data"]["object"]))
        fake.add("invoice_payments", copy.deepcopy(named[link]["data"]["object"]))
    charge = copy.deepcopy(named["full_refund"]["data"]["object"])
    fake.add("charges", charge)
    for name in ("small_refund", "second_small_refund", "partial_refund", "full_refund"):
        fake.add("refunds", copy.deepcopy(named[f"{name}_object"]["data"]["object"]))


def test_stripe_sync_applies_the_invoices_and_refunds_the_webhooks_missed(fake, click):
    life = customer_life(str(click.id))
    named = life.by_name
    for name in ("checkout", "sub_created", "sub_active", "sub_seats"):  # the webhooks that did arrive
        stripe_event_receive(payload=named[name])
    _stripe_account(fake, life)
    assert not Payment.objects.exists()

    out = StringIO()
    call_command("stripe_sync", "--since", "2026-03-01", "--no-progress", stdout=out)

    first = Payment.objects.get(payment_id="in_tfirst")
    assert (first.amount, first.refunded_amount) == (Decimal("60.00"), Decimal("60.00"))
    # Each refund on its own day, as from webhooks.
    reversals = CommissionEntry.objects.filter(kind="reversal").order_by("earned_at")
    assert [(e.amount, e.earned_at.date().day) for e in reversals] == [
        (Decimal("-0.03"), 25),
        (Decimal("-0.03"), 26),
        (Decimal("-2.95"), 27),
        (Decimal("-8.99"), 28),
    ]
    assert Payment.objects.get(payment_id="in_tprorate").amount == Decimal("16.00")
    assert CommissionEntry.objects.aggregate(s=Sum("amount"))["s"] == Decimal("3.20")
    assert "Missing and now applied: 4" in out.getvalue()  # two invoices, the refund, and the refund's link
    assert "2 invoices" in out.getvalue() and "4 refunds" in out.getvalue()

    # A second run finds everything known.
    before = (StripeEvent.objects.count(), CommissionEntry.objects.count())
    again = StringIO()
    call_command("stripe_sync", "--since", "2026-03-01", "--no-progress", stdout=again)
    assert (StripeEvent.objects.count(), CommissionEntry.objects.count()) == before
    assert "Missing and now applied: 0" in again.getvalue()


def test_stripe_sync_adds_nothing_to_what_the_webhooks_applied(fake, click):
    life = customer_life(str(click.id))
    for event in life.events:
        stripe_event_receive(payload=event)
    _stripe_account(fake, life)
    entries = CommissionEntry.objects.count()

    call_command("stripe_sync", "--since", "2026-03-01", "--no-progress", stdout=StringIO())

    assert CommissionEntry.objects.count() == entries


def test_stripe_sync_with_a_wrong_key_is_a_clear_error(fake, settings, click):
    settings.STRIPE_API_KEY = "sk_test_wrong"
    with pytest.raises(CommandError, match="Invalid API Key"):
        call_command("stripe_sync", "--since", "2026-03-01", "--no-progress", stdout=StringIO())


class _Terminal(StringIO):
    def isatty(self) -> bool:
        return True


def test_stripe_sync_shows_its_progress_on_a_terminal(fake, click):
    life = customer_life(str(click.id))
    stripe_event_receive(payload=life.by_name["checkout"])
    _stripe_account(fake, life)
    terminal = _Terminal()

    summary = stripe_sync(since=date(2026, 3, 1), progress=True, progress_file=terminal)

    assert "Syncing Stripe" in terminal.getvalue()
    assert "7object" in terminal.getvalue().replace(" ", "")  # 1 checkout + 2 invoices + 4 refunds
    assert summary.seen == {"checkouts": 1, "invoices": 2, "refunds": 4}
