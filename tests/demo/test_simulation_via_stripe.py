"""``simulate --via stripe``: the same plan sent as Stripe Billing webhooks ends with the same
referrals, payments and ledger as through /api/v1/events."""

from __future__ import annotations

from datetime import datetime
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import transaction
from django.db.models import Sum

from commissions.models import CommissionEntry, Payment, Referral
from commissions.stripe_billing.models import StripeEvent
from tests.demo.test_simulation import UNTIL, _partners, busy_merchant
from tracking import linkcache

pytestmark = pytest.mark.django_db


class _Rollback(Exception):
    pass


def _seconds(rows) -> list:
    """Stripe's timestamps are whole seconds; the events API keeps the plan's microseconds."""
    return sorted(tuple(v.replace(microsecond=0) if isinstance(v, datetime) else v for v in row) for row in rows)


def _ledger() -> dict:
    return {
        "referrals": _seconds(
            Referral.objects.values_list(
                "customer_id",
                "status",
                "plan",
                "seats",
                "total_paid",
                "total_commission",
                "first_paid_at",
                "cancelled_at",
            )
        ),
        "payments": _seconds(
            Payment.objects.values_list("payment_id", "amount", "refunded_amount", "plan", "seats", "paid_at")
        ),
        "by_partner": sorted(
            CommissionEntry.objects.values("partner__user__email")
            .annotate(s=Sum("amount"))
            .values_list("partner__user__email", "s")
        ),
    }


def _run(via: str, out: StringIO) -> dict:
    linkcache.clear()
    state: dict = {}
    try:
        with transaction.atomic():
            call_command(
                "simulate",
                "--days",
                "20",
                "--until",
                UNTIL.isoformat(),
                "--visitors-per-day",
                "6",
                "--seed",
                "7",
                "--no-progress",
                "--via",
                via,
                stdout=out,
            )
            state = _ledger()
            state["stripe_events"] = StripeEvent.objects.count()
            raise _Rollback
    except _Rollback:
        pass
    return state


def test_simulate_via_stripe_ends_with_the_same_ledger_as_via_the_events_api(monkeypatch, settings):
    settings.STRIPE_WEBHOOK_SECRET = "whsec_demo_stripe_secret"
    busy_merchant(monkeypatch)
    _partners()

    events_out, stripe_out = StringIO(), StringIO()
    via_events = _run("events", events_out)
    via_stripe = _run("stripe", stripe_out)

    assert via_events.pop("stripe_events") == 0
    assert via_stripe.pop("stripe_events") > 0
    assert via_events["payments"] and via_events["referrals"]
    assert via_stripe == via_events
    # The summaries agree on what was attributed and earned.
    commission = [
        line for line in events_out.getvalue().splitlines() if line.startswith(("Commission", "Referrals attributed"))
    ]
    assert commission == [
        line for line in stripe_out.getvalue().splitlines() if line.startswith(("Commission", "Referrals attributed"))
    ]
