"""A withdrawal: the partner's request, then staff's decision (approve or reject)."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from commissions.balance import partner_balance
from partners.models import Partner, User
from payouts import states
from payouts.models import Payout, PayoutAudit
from payouts.rules import withdrawal_status
from payouts.services.common import (
    PayoutError,
    PayoutPermissionError,
    S,
    _lock,
    _notify,
    _refresh_dashboard_balance,
    can_decide_payouts,
)


# --- the partner's request ----------------------------------------------------------------------
@transaction.atomic
def payout_request(*, partner: Partner) -> Payout:
    """Request a withdrawal of the whole balance. Raises ``PayoutError`` with the reason when the
    partner cannot withdraw (docs/reference.md "Can withdraw")."""
    # The partner lock serialises every request of one partner; the balance and the "no open
    # payout" rule are then read from the database, not from what the page showed.
    partner = Partner.objects.select_for_update().select_related("user").get(pk=partner.pk)
    status = withdrawal_status(partner=partner, balance=partner_balance(partner=partner))
    if not status.can_withdraw:
        raise PayoutError(status.reason, code=status.reason_code)
    if status.balance <= Decimal("0.00"):
        raise PayoutError("There is nothing to withdraw.", code="below_minimum")
    try:
        # The partial unique index "one open payout per partner" is the last line of defence.
        with transaction.atomic():
            payout = Payout.objects.create(
                partner=partner,
                amount=status.balance,
                currency=settings.PROGRAM_CURRENCY,
                method=Payout.Method.PAYPAL,
                paypal_email=partner.paypal_email,
            )
    except IntegrityError as exc:
        raise PayoutError("Your previous withdrawal request is still being processed.", code="in_progress") from exc
    states.audit(
        payout,
        PayoutAudit.Action.REQUESTED,
        actor=partner.user,
        amount=str(payout.amount),
        paypal_email=payout.paypal_email,
    )
    _notify(payout.pk, "requested")
    _refresh_dashboard_balance(partner.pk)
    return payout


# --- staff decisions ------------------------------------------------------------------------------
@transaction.atomic
def payout_approve(*, payout_id: int, actor: User) -> Payout:
    """Approve a pending payout and queue it for sending. Only from ``pending``, only once, only
    by staff with ``payouts.approve_payout``."""
    if not can_decide_payouts(actor):
        raise PayoutPermissionError("You are not allowed to approve payouts.")
    partner, payout = _lock(payout_id)
    if payout.status != S.PENDING:
        raise PayoutError(
            f"Payout #{payout.pk} is {payout.get_status_display().lower()}: only pending payouts can be approved.",
            code="not_pending",
        )
    # The ledger balance already counts this payout; below zero means the partner is now owed
    # less than the payout (a refund after the request): paying it would overpay.
    balance = partner_balance(partner=partner)
    if balance < 0:
        raise PayoutError(
            f"Payout #{payout.pk} is {-balance} {payout.currency} more than the partner is owed now "
            "(a refund came in after the request). Reject it; the partner can request the right amount.",
            code="exceeds_balance",
        )
    from payouts.approval import approval_complete

    if not approval_complete(payout=payout, actor=actor):  # four eyes: waits for a second approver
        return payout
    payout.decided_at = timezone.now()
    payout.decided_by = actor
    states.move(
        payout,
        S.APPROVED,
        actor=actor,
        fields=("decided_at", "decided_by"),
        amount=str(payout.amount),
        ledger_balance=str(balance),
    )

    from payouts import tasks

    # robust: with the broker down the decision still stands; the periodic poll re-sends
    # approved payouts that never reached PayPal.
    transaction.on_commit(lambda: tasks.send_payout_task.delay(payout.pk), robust=True)
    return payout


@transaction.atomic
def payout_reject(*, payout_id: int, actor: User, reason: str) -> Payout:
    """Reject a pending payout with a reason the partner will read. The amount is back in the
    balance at once: rejected payouts do not count against it."""
    if not can_decide_payouts(actor):
        raise PayoutPermissionError("You are not allowed to reject payouts.")
    reason = (reason or "").strip()
    if not reason:
        raise PayoutError("A reason is required to reject a payout.", code="reason_required", field="reason")
    _, payout = _lock(payout_id)
    if payout.status != S.PENDING:
        raise PayoutError(
            f"Payout #{payout.pk} is {payout.get_status_display().lower()}: only pending payouts can be rejected.",
            code="not_pending",
        )
    payout.rejection_reason = reason[:2000]
    payout.decided_at = timezone.now()
    payout.decided_by = actor
    states.move(
        payout,
        S.REJECTED,
        actor=actor,
        fields=("rejection_reason", "decided_at", "decided_by"),
        reason=payout.rejection_reason,
    )
    _notify(payout.pk, "rejected")
    _refresh_dashboard_balance(payout.partner_id)
    return payout
