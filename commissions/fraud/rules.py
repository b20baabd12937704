"""The fraud rules. Each one reads the database set-wise and returns its findings; the service
stores them as flags (one per finding, whatever the number of runs).

Thresholds are settings (FRAUD_*), read when the rules run.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import Count, F
from django.db.models.functions import Lower, TruncHour
from django.utils import timezone

from commissions.fraud.models import FraudFlag
from commissions.models import Referral, Refund
from partners.models import Partner
from tracking.models import Click

Rule = FraudFlag.Rule


@dataclass(frozen=True)
class Finding:
    rule: str
    partner_id: int
    key: str
    evidence: dict = field(default_factory=dict)
    referral_id: int | None = None


def self_referrals(now: datetime) -> Iterator[Finding]:
    """Sign-ups whose email is the partner's own (the events API marks them)."""
    rows = Referral.objects.filter(is_self_referral=True).values_list("id", "partner_id", "customer_id", "signed_up_at")
    for referral_id, partner_id, customer_id, signed_up_at in rows.iterator(chunk_size=2000):
        yield Finding(
            Rule.SELF_REFERRAL,
            partner_id,
            f"referral:{referral_id}",
            {"customer_id": customer_id, "signed_up_at": signed_up_at.isoformat()},
            referral_id,
        )


def signups_from_one_visitor(now: datetime) -> Iterator[Finding]:
    """Several sign-ups from one visitor (cookie) or one address hash for one partner."""
    limit = settings.FRAUD_SIGNUPS_PER_VISITOR
    since = now - timedelta(days=settings.FRAUD_LOOKBACK_DAYS)
    base = Referral.objects.filter(signed_up_at__gte=since)
    for field_name, label in (("click__visitor_id", "visitor"), ("click__ip_hash", "address hash")):
        groups = (
            base.exclude(**{field_name: ""})
            .values("partner_id", field_name)
            .annotate(n=Count("id"))
            .filter(n__gte=limit)
            .order_by()
        )
        for group in groups:
            value = group[field_name]
            yield Finding(
                Rule.SIGNUPS_ONE_VISITOR,
                group["partner_id"],
                f"{label}:{value}",
                {"signups": group["n"], label: value, "threshold": limit, "days": settings.FRAUD_LOOKBACK_DAYS},
            )


def click_bursts(now: datetime) -> Iterator[Finding]:
    """One visitor clicking one partner's links many times within an hour."""
    limit = settings.FRAUD_CLICKS_PER_VISITOR_HOUR
    since = now - timedelta(days=1)
    groups = (
        Click.objects.filter(created_at__gte=since)
        .annotate(hour=TruncHour("created_at"), partner_id=F("link__partner_id"))
        .values("partner_id", "visitor_id", "hour")
        .annotate(n=Count("id"))
        .filter(n__gte=limit)
        .order_by()
    )
    for group in groups:
        yield Finding(
            Rule.CLICK_BURST,
            group["partner_id"],
            f"visitor:{group['visitor_id']}:{group['hour']:%Y-%m-%dT%H}",
            {
                "clicks": group["n"],
                "visitor": group["visitor_id"],
                "hour": group["hour"].isoformat(),
                "threshold": limit,
            },
        )


def shared_paypal_emails(now: datetime) -> Iterator[Finding]:
    """One PayPal email set on several partners: each of them is flagged, naming the others."""
    shared = (
        Partner.objects.exclude(paypal_email="")
        .annotate(email=Lower("paypal_email"))
        .values("email")
        .annotate(n=Count("id"))
        .filter(n__gte=2)
        .values_list("email", flat=True)
    )
    emails = list(shared)
    if not emails:
        return
    partners = (
        Partner.objects.annotate(email=Lower("paypal_email"))
        .filter(email__in=emails)
        .values_list("id", "email", "user__email")
        .order_by("id")
    )
    by_email: dict[str, list[tuple[int, str]]] = {}
    for partner_id, email, login in partners:
        by_email.setdefault(email, []).append((partner_id, login))
    for email, members in by_email.items():
        for partner_id, _login in members:
            yield Finding(
                Rule.SHARED_PAYPAL,
                partner_id,
                f"paypal:{email}",
                {"paypal_email": email, "partners": [{"id": pid, "email": login} for pid, login in members]},
            )


def pay_and_refund_repeaters(now: datetime) -> Iterator[Finding]:
    """Referrals with several refunded payments: commission earned, then taken back, again."""
    limit = settings.FRAUD_REFUNDS_PER_REFERRAL
    groups = (
        Refund.objects.values("payment__referral_id", "payment__referral__partner_id")
        .annotate(payments=Count("payment_id", distinct=True))
        .filter(payments__gte=limit)
        .order_by()
    )
    for group in groups:
        referral_id = group["payment__referral_id"]
        yield Finding(
            Rule.PAY_REFUND,
            group["payment__referral__partner_id"],
            f"referral:{referral_id}",
            {"refunded_payments": group["payments"], "threshold": limit},
            referral_id,
        )


def high_conversion(now: datetime) -> Iterator[Finding]:
    """Partners whose sign-ups per unique click (last FRAUD_LOOKBACK_DAYS days) are far above the
    program's: FRAUD_CONVERSION_FACTOR times or more, with at least FRAUD_MIN_CLICKS unique clicks."""
    since = now - timedelta(days=settings.FRAUD_LOOKBACK_DAYS)
    clicks = dict(
        Click.objects.filter(created_at__gte=since, is_unique=True)
        .values("link__partner_id")
        .annotate(n=Count("id"))
        .order_by()
        .values_list("link__partner_id", "n")
    )
    signups = dict(
        Referral.objects.filter(signed_up_at__gte=since)
        .values("partner_id")
        .annotate(n=Count("id"))
        .order_by()
        .values_list("partner_id", "n")
    )
    total_clicks, total_signups = sum(clicks.values()), sum(signups.values())
    if not total_clicks or not total_signups:
        return
    program = Decimal(total_signups) / Decimal(total_clicks)
    factor = settings.FRAUD_CONVERSION_FACTOR
    for partner_id, n_clicks in clicks.items():
        if n_clicks < settings.FRAUD_MIN_CLICKS:
            continue
        rate = Decimal(signups.get(partner_id, 0)) / Decimal(n_clicks)
        if rate >= program * factor:
            yield Finding(
                Rule.HIGH_CONVERSION,
                partner_id,
                f"conversion:{now:%Y-%m}",
                {
                    "partner_rate": f"{rate:.4f}",
                    "program_rate": f"{program:.4f}",
                    "unique_clicks": n_clicks,
                    "signups": signups.get(partner_id, 0),
                    "factor": str(factor),
                },
            )


RULES = (
    self_referrals,
    signups_from_one_visitor,
    click_bursts,
    shared_paypal_emails,
    pay_and_refund_repeaters,
    high_conversion,
)


def run_all(now: datetime | None = None) -> Iterator[Finding]:
    now = now or timezone.now()
    for rule in RULES:
        yield from rule(now)
