"""A partner, a click on its link, and a referred Stripe customer's whole life as Stripe webhooks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db.models import Sum

from commissions.models import CommissionEntry, Payment, Referral, Refund
from tests.factories import ClickFactory, LinkFactory
from tests.stripe_billing.stripe_world import StripeWorld
from tracking.models import DailyLinkStats

SECRET = "whsec_test_secret"
DAY = 86400
T0 = int(datetime(2026, 3, 2, 12, 0, tzinfo=UTC).timestamp())


@pytest.fixture(autouse=True)
def _stripe_settings(settings):
    settings.STRIPE_WEBHOOK_SECRET = SECRET
    settings.STRIPE_PLAN_FROM = "lookup_key"
    settings.PROGRAM_CURRENCY = "USD"


@pytest.fixture
def click(db):
    link = LinkFactory(trial_days=14)
    return ClickFactory(link=link, created_at=datetime.fromtimestamp(T0 - 3600, tz=UTC))


@dataclass
class Life:
    events: list[dict]
    customer: str
    by_name: dict[str, dict]


def customer_life(click_id: str, *, currency: str = "usd", unit: int = 2000, prefix: str = "t") -> Life:
    """checkout -> trial -> first invoice -> seat upgrade with proration -> three partial refunds
    on three days -> full refund -> cancellation, with every event Stripe sends beside them, in
    Stripe's order."""
    w = StripeWorld(currency=currency, prefix=prefix)
    cus, sub = f"cus_{prefix}life", f"sub_{prefix}life"
    price = w.price(plan="B", unit_amount=unit)
    trial_end = T0 + 14 * DAY
    named = {
        "checkout": w.checkout(customer=cus, click_id=click_id, at=T0),
        "sub_created": w.subscription(
            "customer.subscription.created",
            sub=sub,
            customer=cus,
            price=price,
            quantity=3,
            status="trialing",
            at=T0 + 1,
            trial_end=trial_end,
        ),
        "trial_invoice": w.invoice(
            "invoice.paid",
            invoice=f"in_{prefix}trial",
            customer=cus,
            sub=sub,
            lines=[(0, price["id"], 3, False)],
            at=T0 + 2,
        ),
        "sub_active": w.subscription(
            "customer.subscription.updated",
            sub=sub,
            customer=cus,
            price=price,
            quantity=3,
            status="active",
            at=trial_end,
            trial_end=trial_end,
        ),
        "first_invoice": w.invoice(
            "invoice.paid",
            invoice=f"in_{prefix}first",
            customer=cus,
            sub=sub,
            lines=[(3 * unit, price["id"], 3, False)],
            at=trial_end + 10,
        ),
        "first_link": w.invoice_payment(
            invoice=f"in_{prefix}first", payment_intent=f"pi_{prefix}first", amount=3 * unit, at=trial_end + 11
        ),
        "first_succeeded": None,
        "sub_seats": w.subscription(
            "customer.subscription.updated",
            sub=sub,
            customer=cus,
            price=price,
            quantity=5,
            status="active",
            at=T0 + 20 * DAY,
            trial_end=trial_end,
        ),
        # Unused time on 3 seats credited, remaining time on 5 charged (a week of a 30-day period... in round numbers).
        "proration_invoice": w.invoice(
            "invoice.paid",
            invoice=f"in_{prefix}prorate",
            customer=cus,
            sub=sub,
            lines=[(-(12 * unit) // 10, price["id"], 3, True), (2 * unit, price["id"], 5, True)],
            at=T0 + 20 * DAY + 5,
        ),
        "proration_link": w.invoice_payment(
            invoice=f"in_{prefix}prorate",
            payment_intent=f"pi_{prefix}prorate",
            amount=(8 * unit) // 10,
            at=T0 + 20 * DAY + 6,
        ),
        # Four refunds of the first invoice's charge on four days: two tiny ones whose reversals
        # round up (0.13 x 20 % = 0.026 -> 0.03 each, where their sum would round to 0.05), a
        # partial one (cumulative 15.00), and the rest (a full refund: the reversals net to 0.00).
        # Stripe sends refund.created and charge.refunded (with the cumulative) for each.
    }
    for name, (refund_id, amount, cumulative, day) in {
        "small_refund": ("re_1", 13, 13, 23),
        "second_small_refund": ("re_2", 13, 26, 24),
        "partial_refund": ("re_3", unit // 2 * 3 // 2 - 26, unit // 2 * 3 // 2, 25),
        "full_refund": ("re_4", 3 * unit - unit // 2 * 3 // 2, 3 * unit, 26),
    }.items():
        moment = T0 + day * DAY
        named[f"{name}_object"] = w.refund(
            refund=f"{refund_id}_{prefix}",
            charge=f"ch_{prefix}first",
            payment_intent=f"pi_{prefix}first",
            amount=amount,
            at=moment,
        )
        named[name] = w.charge_refunded(
            charge=f"ch_{prefix}first",
            customer=cus,
            payment_intent=f"pi_{prefix}first",
            amount=3 * unit,
            amount_refunded=cumulative,
            at=moment,
        )
    named |= {
        "sub_deleted": w.subscription(
            "customer.subscription.deleted",
            sub=sub,
            customer=cus,
            price=price,
            quantity=5,
            status="canceled",
            at=T0 + 27 * DAY,
            trial_end=trial_end,
        ),
    }
    # invoice.payment_succeeded: Stripe sends it beside invoice.paid, with the same invoice.
    succeeded = dict(named["first_invoice"], id=w.new_id("evt"), type="invoice.payment_succeeded")
    named["first_succeeded"] = succeeded
    return Life(events=list(named.values()), customer=cus, by_name=named)


def ledger_state(customer_id: str) -> dict:
    """Everything the ledger says about one customer, for comparing histories."""
    referral = Referral.objects.filter(customer_id=customer_id).first()
    if referral is None:
        return {}
    payments = {
        p.payment_id: (p.amount, p.refunded_amount, p.plan, p.seats, p.currency, p.paid_at)
        for p in Payment.objects.filter(referral=referral)
    }
    commission = {
        payment_id: CommissionEntry.objects.filter(payment__payment_id=payment_id).aggregate(s=Sum("amount"))["s"]
        for payment_id in payments
    }
    # Every ledger row with the time reports date it by.
    entries = sorted(
        CommissionEntry.objects.filter(referral=referral).values_list(
            "payment__payment_id", "kind", "amount", "earned_at"
        )
    )
    refunds = sorted(
        Refund.objects.filter(payment__referral=referral).values_list("payment__payment_id", "amount", "refunded_at")
    )
    return {
        "referral": (
            referral.status,
            referral.plan,
            referral.seats,
            referral.total_paid,
            referral.total_commission,
            referral.first_paid_at,
            referral.cancelled_at,
            referral.trial_ends_at,
        ),
        "payments": payments,
        "commission": commission,
        "entries": entries,
        "refunds": refunds,
        # Trials, new subscriptions and commission by day (the reports read these).
        "rollups": sorted(
            DailyLinkStats.objects.filter(link_id=referral.link_id)
            .exclude(new_trials=0, new_subscriptions=0, commission=0)
            .values_list("day", "new_trials", "new_subscriptions", "commission")
        ),
        "partner_total": CommissionEntry.objects.filter(partner_id=referral.partner_id).aggregate(s=Sum("amount"))["s"]
        or Decimal("0.00"),
    }


def at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


__all__ = ["DAY", "SECRET", "T0", "Life", "at", "customer_life", "ledger_state", "timedelta"]
