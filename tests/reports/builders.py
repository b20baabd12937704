"""Raw activity for report tests, written through the real services: clicks through the
tracking writer (uniqueness decided by the database, rollups incremented), events through the
merchant events service (referrals, payments, refunds, commission entries, rollups)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from decimal import Decimal

from commissions.events import parse_event
from commissions.models import Referral
from commissions.services import event_receive
from tracking.click_writes import ClickData, write_clicks
from tracking.models import Click, Link


def click(link: Link, visitor: str, at: datetime) -> Click:
    click_id = uuid.uuid4()
    write_clicks(
        [ClickData(id=click_id, link_id=link.pk, partner_id=link.partner_id, visitor_id=visitor, created_at=at)]
    )
    return Click.objects.get(pk=click_id)


def send(event_type: str, at: datetime, **data) -> dict:
    body = {"id": f"evt_{uuid.uuid4().hex}", "type": event_type, "created": at.isoformat(), "data": data}
    return event_receive(parsed=parse_event(json.dumps(body).encode())).body


def signup(from_click: Click, at: datetime, *, customer_id: str | None = None) -> Referral:
    customer_id = customer_id or f"cus_{uuid.uuid4().hex[:12]}"
    answer = send("customer.signed_up", at, customer_id=customer_id, click_id=str(from_click.pk), email=None)
    assert answer["referral"] is not None, answer
    return Referral.objects.get(customer_id=customer_id)


def pay(referral: Referral, amount: str, at: datetime, *, plan: str = "A", seats: int = 1) -> str:
    payment_id = f"pay_{uuid.uuid4().hex[:12]}"
    send(
        "payment.succeeded",
        at,
        payment_id=payment_id,
        customer_id=referral.customer_id,
        amount=amount,
        currency="USD",
        plan=plan,
        seats=seats,
    )
    return payment_id


def refund(payment_id: str, amount: str, at: datetime) -> None:
    send("payment.refunded", at, payment_id=payment_id, amount=amount)


def cancel(referral: Referral, at: datetime) -> None:
    send("subscription.cancelled", at, customer_id=referral.customer_id)


def money(value: str) -> Decimal:
    return Decimal(value)


def monthly_differences() -> list:
    """``LinkMonthlyStats`` rows that do not hold the sums of their link's daily rollups in that
    month, as (key, daily sums, monthly row) — empty when the table agrees. A month emptied by a
    repair may keep a zero row; zero rows and missing rows count as equal."""
    from tracking.models import ROLLUP_COUNTERS, DailyLinkStats, LinkMonthlyStats

    daily: dict[tuple, list] = {}
    for row in DailyLinkStats.objects.all():
        sums = daily.setdefault((row.link_id, row.partner_id, row.day.replace(day=1)), [0, 0, 0, 0, Decimal("0.00")])
        for i, counter in enumerate(ROLLUP_COUNTERS):
            sums[i] += getattr(row, counter)
    monthly = {
        (m.link_id, m.partner_id, m.month): [getattr(m, c) for c in ROLLUP_COUNTERS]
        for m in LinkMonthlyStats.objects.all()
    }
    return sorted(
        (key, daily.get(key), monthly.get(key))
        for key in daily.keys() | monthly.keys()
        if daily.get(key) != monthly.get(key) and (any(daily.get(key) or ()) or any(monthly.get(key) or ()))
    )
