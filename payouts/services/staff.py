"""Staff actions on a payout that waits for them: check with PayPal now, or mark it failed."""

from __future__ import annotations

from django.db import transaction

from partners.models import User
from payouts import states
from payouts.gateway import (
    BATCH_FAILED,
    ITEM_FAILED,
    PayoutGateway,
    PayoutGatewayError,
    get_gateway,
)
from payouts.models import Payout, PayoutAudit
from payouts.services.common import (
    PayoutError,
    PayoutPermissionError,
    S,
    _lock,
    _notify,
    _refresh_dashboard_balance,
    can_decide_payouts,
)


@transaction.atomic
def payout_check_now(*, payout_id: int, actor: User) -> Payout:
    """Staff: reconcile a payout now (ask PayPal about its batch, or send it again with the same
    ``sender_batch_id``, which PayPal never pays twice)."""
    if not can_decide_payouts(actor):
        raise PayoutPermissionError("You are not allowed to act on payouts.")
    _, payout = _lock(payout_id)
    if payout.status not in (S.APPROVED, S.SENDING, S.UNKNOWN, S.ATTENTION, S.SENT, S.PAID):
        raise PayoutError(f"Payout #{payout.pk} is {payout.get_status_display().lower()}: nothing to check.")
    if payout.status == S.SENDING and payout.attempt_started_at:
        raise PayoutError(f"Payout #{payout.pk} is being sent right now.", code="in_flight")
    if payout.status == S.ATTENTION and payout.next_action_at is None and not payout.paypal_batch_id:
        # The 30-day window has passed: sending again could pay twice.
        raise PayoutError(payout.attention_reason, code="window_passed")
    states.audit(payout, PayoutAudit.Action.STAFF_CHECK, actor=actor, status=payout.status)

    from payouts import tasks

    transaction.on_commit(lambda: tasks.poll_payout_task.delay(payout.pk), robust=True)
    return payout


def payout_staff_mark_failed(
    *, payout_id: int, actor: User, reason: str, gateway: PayoutGateway | None = None
) -> Payout:
    """Staff: fail a payout that waits for them and give its amount back to the balance.

    Refused while PayPal shows a batch for it that is not failed. When no batch is known, staff
    must have looked for its ``sender_batch_id`` in PayPal's dashboard (the form says so): no
    answer from PayPal proves a batch is absent (a 4xx after a lost answer does not), and sending
    it again to find out would pay it."""
    if not can_decide_payouts(actor):
        raise PayoutPermissionError("You are not allowed to act on payouts.")
    reason = (reason or "").strip()
    if not reason:
        raise PayoutError("A reason is required.", code="reason_required", field="reason")
    payout = Payout.objects.filter(pk=payout_id).first()
    if payout is None:
        raise PayoutError("No such payout.", code="not_found")
    if payout.paypal_batch_id:
        gateway = gateway or get_gateway(payout.method)
        try:
            batch = gateway.get_batch(payout.paypal_batch_id)
        except PayoutGatewayError as exc:
            raise PayoutError(
                f"PayPal could not be asked about batch {payout.paypal_batch_id} ({exc}): try again.",
                code="paypal_unreachable",
            ) from exc
        item = batch.item_for(str(payout.pk))
        status = item.transaction_status if item else ""
        if not (status in ITEM_FAILED or (batch.batch_status in BATCH_FAILED and status != "SUCCESS")):
            raise PayoutError(
                f"PayPal shows batch {batch.batch_id} ({batch.batch_status}, item {status or 'unknown'}) for this "
                "payout: it cannot be marked failed. 'Check with PayPal now' settles it from PayPal's answer.",
                code="paypal_has_batch",
            )
    with transaction.atomic():
        _, payout = _lock(payout_id)
        if payout.status not in (S.ATTENTION, S.UNKNOWN) and not (
            payout.status == S.SENDING and not payout.attempt_started_at
        ):
            raise PayoutError(
                f"Payout #{payout.pk} is {payout.get_status_display().lower()}: only payouts waiting for staff "
                "can be marked failed.",
                code="not_waiting",
            )
        payout.failure_reason = reason[:2000]
        states.move(
            payout,
            S.FAILED,
            actor=actor,
            fields=("failure_reason",),
            reason=payout.failure_reason,
            batch_id=payout.paypal_batch_id,
            outcome_was_unknown=payout.outcome_unknown,
        )
        _notify(payout.pk, "failed")
        _refresh_dashboard_balance(payout.partner_id)
    return payout
