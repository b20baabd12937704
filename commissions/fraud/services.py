"""Everything that writes fraud review: storing the rules' flags, reviewing them, voiding a
commission."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone

from commissions.fraud.models import CommissionVoid, FraudFlag
from commissions.fraud.rules import run_all
from commissions.models import CommissionEntry, Payment, Referral
from commissions.money import ZERO
from config.errors import PortalError
from partners.models import User
from tracking.rollups import program_day, rollup_add


class FraudReviewError(PortalError):
    """A review action the rules forbid; the message is shown to staff."""


def fraud_rules_run(*, now: datetime | None = None) -> int:
    """Run every rule and store each new finding as an open flag. Safe to run any number of
    times (a finding is one row by its key). Returns the flags created."""
    created = 0
    for finding in run_all(now):
        try:
            with transaction.atomic():
                _, new = FraudFlag.objects.get_or_create(
                    partner_id=finding.partner_id,
                    rule=finding.rule,
                    key=finding.key[:200],
                    defaults={"evidence": finding.evidence, "referral_id": finding.referral_id},
                )
        except IntegrityError:
            # Another run stored the same finding a moment ago.
            new = False
        created += int(new)
    return created


def flags_review(*, flag_ids, actor: User, status: str, note: str = "") -> int:
    """Dismiss or confirm open flags. Once a partner has no open flag, their payouts can be
    approved again."""
    if status not in (FraudFlag.Status.DISMISSED, FraudFlag.Status.CONFIRMED):
        raise FraudReviewError("Flags are dismissed or confirmed.")
    return FraudFlag.objects.filter(pk__in=list(flag_ids), status=FraudFlag.Status.OPEN).update(
        status=status, reviewed_at=timezone.now(), reviewed_by=actor, review_note=note[:2000]
    )


def open_flags_count(*, partner_id: int) -> int:
    return FraudFlag.objects.filter(partner_id=partner_id, status=FraudFlag.Status.OPEN).count()


@transaction.atomic
def commission_void(*, entry_id: int, actor: User, reason: str, flag: FraudFlag | None = None) -> CommissionEntry:
    """Void what is left of a commission: a new (negative) ledger entry, audited with the reason
    the partner will read. Idempotent per payment (a second void is refused)."""
    reason = (reason or "").strip()
    if not reason:
        raise FraudReviewError("A reason is required to void a commission.", field="reason")
    entry = CommissionEntry.objects.filter(pk=entry_id, kind=CommissionEntry.Kind.COMMISSION).first()
    if entry is None:
        raise FraudReviewError("Only a commission (not a reversal) can be voided.")
    # The events' lock order: referral, then payment, then the rollup row.
    referral = Referral.objects.select_for_update().get(pk=entry.referral_id)
    payment = Payment.objects.select_for_update().get(pk=entry.payment_id)
    left = CommissionEntry.objects.filter(payment=payment).aggregate(total=Sum("amount"))["total"] or ZERO
    if left <= ZERO:
        raise FraudReviewError(f"Nothing is left of this commission to void ({left}).")
    now = timezone.now()
    try:
        with transaction.atomic():
            void = CommissionEntry.objects.create(
                partner_id=entry.partner_id,
                referral=referral,
                payment=payment,
                kind=CommissionEntry.Kind.VOID,
                amount=Decimal(ZERO - left),
                earned_at=now,
            )
    except IntegrityError as exc:
        raise FraudReviewError("This commission was already voided.") from exc
    CommissionVoid.objects.create(entry=void, commission=entry, reason=reason[:2000], actor=actor, flag=flag)
    referral.total_commission -= left
    referral.save(update_fields=["total_commission"])
    rollup_add(link_id=referral.link_id, partner_id=referral.partner_id, day=program_day(now), commission=-left)

    from commissions.services import schedule_balance_refresh

    transaction.on_commit(lambda: schedule_balance_refresh(entry.partner_id), robust=True)
    return void
