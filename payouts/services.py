"""Everything that writes payouts: the partner's request, staff decisions, sending through the
gateway and settling what PayPal reports.

Locking: a service that changes a payout locks the partner row first, then the payout row
(``_lock``), always in that order, so a request, an approval and a settlement for the same
partner run one after the other and never deadlock. Money decisions read the ledger
(``commissions.balance.partner_balance``) after the partner lock is held.

Every write path is safe to run twice: the status it starts from is checked under the lock, and
anything that talks to PayPal reuses the payout's stable ``sender_batch_id``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from commissions.balance import partner_balance
from config.errors import PortalError
from partners.models import Partner, User
from payouts.gateway import (
    BATCH_FAILED,
    ITEM_FAILED,
    ITEM_SUCCESS,
    ITEM_UNCLAIMED,
    BatchItem,
    BatchResult,
    PayoutGateway,
    PayoutGatewayError,
    get_gateway,
)
from payouts.models import Payout, PayoutAudit
from payouts.rules import withdrawal_status

logger = logging.getLogger(__name__)

# HTTP statuses that say nothing about the batch: PayPal refused us before looking at it.
_AUTH_STATUSES = frozenset({401, 403})


class PayoutError(PortalError):
    """A payout action the rules forbid; the message is shown to the partner or to staff."""


class PayoutPermissionError(PayoutError):
    code = "forbidden"


def can_decide_payouts(user: User | None) -> bool:
    """Staff who may approve or reject payouts (the ``payouts.approve_payout`` permission)."""
    return bool(
        user is not None
        and user.is_authenticated
        and user.is_active
        and user.is_staff
        and user.has_perm("payouts.approve_payout")
    )


def _audit(payout: Payout, action: str, *, actor: User | None = None, **detail) -> PayoutAudit:
    return PayoutAudit.objects.create(payout=payout, action=action, actor=actor, detail=detail)


def _lock(payout_id: int) -> tuple[Partner, Payout]:
    """Lock the payout's partner, then the payout (the fixed order). Caller is in a transaction."""
    partner_id = Payout.objects.values_list("partner_id", flat=True).get(pk=payout_id)
    partner = Partner.objects.select_for_update().get(pk=partner_id)
    payout = Payout.objects.select_for_update().get(pk=payout_id)
    return partner, payout


def _notify(payout_id: int, kind: str) -> None:
    from payouts import tasks

    # robust: with the broker down the payout is committed all the same; a lost email must not
    # turn the partner's (or staff's) answer into a 500.
    transaction.on_commit(lambda: tasks.notify_payout_task.delay(payout_id, kind), robust=True)


def _refresh_dashboard_balance(partner_id: int) -> None:
    """The partner's denormalised balance (dashboard) follows every payout that changes it."""
    from commissions.tasks import recalculate_partner_balance_task

    # robust: the hourly recalculation of every balance catches up if the broker is down.
    transaction.on_commit(lambda: recalculate_partner_balance_task.delay(partner_id), robust=True)


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
    _audit(
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
    if payout.status != Payout.Status.PENDING:
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
    payout.status = Payout.Status.APPROVED
    payout.decided_at = timezone.now()
    payout.decided_by = actor
    payout.save(update_fields=["status", "decided_at", "decided_by"])
    _audit(payout, PayoutAudit.Action.APPROVED, actor=actor, amount=str(payout.amount), ledger_balance=str(balance))

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
    if payout.status != Payout.Status.PENDING:
        raise PayoutError(
            f"Payout #{payout.pk} is {payout.get_status_display().lower()}: only pending payouts can be rejected.",
            code="not_pending",
        )
    payout.status = Payout.Status.REJECTED
    payout.rejection_reason = reason[:2000]
    payout.decided_at = timezone.now()
    payout.decided_by = actor
    payout.save(update_fields=["status", "rejection_reason", "decided_at", "decided_by"])
    _audit(payout, PayoutAudit.Action.REJECTED, actor=actor, reason=payout.rejection_reason)
    _notify(payout.pk, "rejected")
    _refresh_dashboard_balance(payout.partner_id)
    return payout


# --- sending ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SendResult:
    outcome: str  # "sent", "retry", "failed", "needs_staff", "skipped"
    message: str = ""
    attempt: int = 0


def payout_send(*, payout_id: int, gateway: PayoutGateway | None = None) -> SendResult:
    """One attempt to hand an approved payout to its gateway.

    Runs from ``approved`` (which becomes ``processing``) or from ``processing`` without a batch
    id (an earlier attempt whose answer we never got); anything else is left alone, so a
    duplicated or re-delivered task does nothing. The HTTP call happens outside any transaction.
    """
    with transaction.atomic():
        _, payout = _lock(payout_id)
        resumable = payout.status == Payout.Status.PROCESSING and not payout.paypal_batch_id
        if payout.status != Payout.Status.APPROVED and not resumable:
            return SendResult("skipped", f"payout is {payout.status}")
        earlier_attempts = payout.send_attempts
        payout.status = Payout.Status.PROCESSING
        payout.send_attempts = earlier_attempts + 1
        payout.sent_at = payout.sent_at or timezone.now()
        payout.save(update_fields=["status", "send_attempts", "sent_at"])
        attempt = payout.send_attempts

    gateway = gateway or get_gateway(payout.method)
    try:
        sent = gateway.send(
            sender_batch_id=payout.sender_batch_id,
            sender_item_id=str(payout.pk),
            receiver=payout.paypal_email,
            amount=payout.amount,
            currency=payout.currency,
            note=f"{settings.MERCHANT_NAME} Partner Program payout #{payout.pk}",
        )
    except PayoutGatewayError as exc:
        return _record_send_error(payout_id, exc, attempt=attempt, earlier_attempts=earlier_attempts)

    with transaction.atomic():
        _, payout = _lock(payout_id)
        if payout.paypal_batch_id and payout.paypal_batch_id == sent.batch_id:
            return SendResult("sent", "already recorded", attempt)
        if payout.status != Payout.Status.PROCESSING or payout.paypal_batch_id:
            # Only another attempt for the same payout can have moved it; PayPal pays one
            # sender_batch_id once, so keep what we learnt for staff and change nothing.
            _audit(
                payout,
                PayoutAudit.Action.SENT,
                note="answer arrived after the payout had moved on",
                batch_id=sent.batch_id,
                status=payout.status,
            )
            return SendResult("skipped", f"payout is {payout.status}", attempt)
        if not sent.batch_id:
            payout.failure_reason = (
                f"PayPal already has a batch for sender_batch_id {payout.sender_batch_id} but did not say "
                "which one. Find it in PayPal's dashboard before doing anything else; do not pay again."
            )
            payout.save(update_fields=["failure_reason"])
            _audit(payout, PayoutAudit.Action.SENT, already_sent=True, batch_id="", attempt=attempt)
            return SendResult("needs_staff", payout.failure_reason, attempt)
        payout.paypal_batch_id = sent.batch_id
        payout.failure_reason = ""
        payout.save(update_fields=["paypal_batch_id", "failure_reason"])
        _audit(
            payout,
            PayoutAudit.Action.SENT,
            batch_id=sent.batch_id,
            batch_status=sent.batch_status,
            already_sent=sent.already_sent,
            attempt=attempt,
        )
    return SendResult("sent", sent.batch_id, attempt)


def _record_send_error(payout_id: int, exc: PayoutGatewayError, *, attempt: int, earlier_attempts: int) -> SendResult:
    with transaction.atomic():
        _, payout = _lock(payout_id)
        if payout.status != Payout.Status.PROCESSING or payout.paypal_batch_id:
            return SendResult("skipped", f"payout is {payout.status}", attempt)
        if exc.retryable:
            payout.failure_reason = f"Attempt {attempt} could not reach PayPal: {exc}"
            payout.save(update_fields=["failure_reason"])
            _audit(payout, PayoutAudit.Action.SEND_RETRY, attempt=attempt, error=exc.as_dict())
            return SendResult("retry", str(exc), attempt)
        if earlier_attempts and exc.status in _AUTH_STATUSES:
            # An earlier attempt may have reached PayPal (its answer was lost), and this refusal
            # came before PayPal looked at the batch: failing now could return to the balance
            # money that is already on its way. Staff decide.
            payout.failure_reason = (
                f"PayPal refused attempt {attempt} ({exc}). An earlier attempt's outcome is unknown, so this "
                "payout was not failed automatically: fix the PayPal credentials, then use "
                "'Retry sending' (safe: PayPal pays one sender_batch_id once)."
            )
            payout.save(update_fields=["failure_reason"])
            _audit(payout, PayoutAudit.Action.SEND_RETRY, attempt=attempt, error=exc.as_dict(), needs_staff=True)
            return SendResult("needs_staff", payout.failure_reason, attempt)
        _fail(payout, f"PayPal refused the payout: {exc}", source="send", error=exc.as_dict(), attempt=attempt)
        return SendResult("failed", str(exc), attempt)


@transaction.atomic
def payout_send_gave_up(*, payout_id: int, last_error: str) -> Payout | None:
    """The send task ran out of retries: leave the payout in ``processing`` (PayPal may have the
    batch) with a clear reason for staff."""
    _, payout = _lock(payout_id)
    if payout.status != Payout.Status.PROCESSING or payout.paypal_batch_id:
        return None
    payout.failure_reason = (
        f"Gave up after {payout.send_attempts} attempts; last error: {last_error}. PayPal may or may not "
        "have the batch. When PayPal is reachable again use 'Retry sending' (safe: the same "
        "sender_batch_id is never paid twice)."
    )
    payout.save(update_fields=["failure_reason"])
    _audit(payout, PayoutAudit.Action.SEND_RETRY, gave_up=True, attempts=payout.send_attempts, error=last_error)
    return payout


@transaction.atomic
def payout_retry_send(*, payout_id: int, actor: User) -> Payout:
    """Staff: send again a payout stuck in ``approved``/``processing`` without a batch id."""
    if not can_decide_payouts(actor):
        raise PayoutPermissionError("You are not allowed to send payouts.")
    _, payout = _lock(payout_id)
    stuck = payout.status == Payout.Status.APPROVED or (
        payout.status == Payout.Status.PROCESSING and not payout.paypal_batch_id
    )
    if not stuck:
        raise PayoutError(f"Payout #{payout.pk} is not waiting to be sent.", code="not_sendable")
    _audit(payout, PayoutAudit.Action.SEND_RETRY, actor=actor, manual=True)

    from payouts import tasks

    # robust: with the broker down the decision still stands; the periodic poll re-sends
    # approved payouts that never reached PayPal.
    transaction.on_commit(lambda: tasks.send_payout_task.delay(payout.pk), robust=True)
    return payout


# --- settling -------------------------------------------------------------------------------------
def _fail(payout: Payout, reason: str, **detail) -> None:
    """Caller holds the locks. A failed payout no longer counts against the balance."""
    payout.status = Payout.Status.FAILED
    payout.failure_reason = reason[:2000]
    payout.save(update_fields=["status", "failure_reason"])
    _audit(payout, PayoutAudit.Action.FAILED, reason=payout.failure_reason, **detail)
    _notify(payout.pk, "failed")
    _refresh_dashboard_balance(payout.partner_id)


@transaction.atomic
def payout_mark_paid(*, payout_id: int, batch_id: str, item: BatchItem | None) -> Payout | None:
    _, payout = _lock(payout_id)
    if payout.status != Payout.Status.PROCESSING or payout.paypal_batch_id != batch_id:
        return None
    payout.status = Payout.Status.PAID
    payout.paid_at = timezone.now()
    payout.paypal_item_id = item.item_id if item else ""
    payout.paypal_transaction_id = item.transaction_id if item else ""
    payout.failure_reason = ""
    payout.save(update_fields=["status", "paid_at", "paypal_item_id", "paypal_transaction_id", "failure_reason"])
    _audit(
        payout,
        PayoutAudit.Action.PAID,
        batch_id=batch_id,
        item_id=payout.paypal_item_id,
        transaction_id=payout.paypal_transaction_id,
    )
    _notify(payout.pk, "paid")
    return payout


@transaction.atomic
def payout_mark_failed(*, payout_id: int, batch_id: str, reason: str, item: BatchItem | None) -> Payout | None:
    _, payout = _lock(payout_id)
    if payout.status != Payout.Status.PROCESSING or payout.paypal_batch_id != batch_id:
        return None
    if item is not None:
        payout.paypal_item_id = item.item_id
        payout.paypal_transaction_id = item.transaction_id
        payout.save(update_fields=["paypal_item_id", "paypal_transaction_id"])
    _fail(
        payout,
        reason,
        source="poll",
        batch_id=batch_id,
        item_status=item.transaction_status if item else "",
        error_name=item.error_name if item else "",
    )
    return payout


def _paypal_reason(item: BatchItem | None, batch: BatchResult) -> str:
    if item is None:
        return f"PayPal {batch.batch_status.lower()} the batch."
    reason = f"PayPal reports the payment {item.transaction_status}"
    if item.error_name or item.error_message:
        reason += f": {item.error_message or item.error_name}"
        if item.error_name and item.error_message:
            reason += f" ({item.error_name})"
    return reason + "."


def payout_poll(*, payout_id: int, gateway: PayoutGateway | None = None) -> str:
    """Ask PayPal how a processing payout's batch is doing and settle it: ``paid``, ``failed``,
    ``pending`` (nothing changed), ``error`` (PayPal could not tell us now) or ``skipped``."""
    payout = Payout.objects.filter(pk=payout_id).first()
    if payout is None or payout.status != Payout.Status.PROCESSING or not payout.paypal_batch_id:
        return "skipped"
    gateway = gateway or get_gateway(payout.method)
    batch_id = payout.paypal_batch_id
    try:
        batch = gateway.get_batch(batch_id)
    except PayoutGatewayError as exc:
        logger.warning("Could not read PayPal batch %s of payout %s: %s", batch_id, payout_id, exc.name or exc.status)
        if not exc.retryable:
            Payout.objects.filter(pk=payout_id, status=Payout.Status.PROCESSING).update(
                failure_reason=f"Could not read PayPal batch {batch_id}: {exc}"[:2000]
            )
        return "error"
    if batch.sender_batch_id and batch.sender_batch_id != payout.sender_batch_id:
        Payout.objects.filter(pk=payout_id, status=Payout.Status.PROCESSING).update(
            failure_reason=(
                f"PayPal batch {batch_id} belongs to sender_batch_id {batch.sender_batch_id}, not to this "
                "payout. Check PayPal's dashboard."
            )
        )
        return "error"

    item = batch.item_for(str(payout.pk))
    status = item.transaction_status if item else ""
    if status in ITEM_SUCCESS:
        return "paid" if payout_mark_paid(payout_id=payout_id, batch_id=batch_id, item=item) else "skipped"
    if status in ITEM_UNCLAIMED:
        # Unclaimed money can still be claimed for 30 days; cancel it first so that giving the
        # amount back to the balance can never mean paying it twice.
        try:
            cancelled = gateway.cancel_unclaimed_item(item.item_id)
        except PayoutGatewayError as exc:
            Payout.objects.filter(pk=payout_id, status=Payout.Status.PROCESSING).update(
                failure_reason=f"PayPal: unclaimed; cancelling the item failed, will try again: {exc}"[:2000]
            )
            return "error"
        if cancelled.transaction_status not in ITEM_FAILED:
            return "pending"
        reason = _paypal_reason(item, batch) + " The payment was cancelled and returned to us."
        return (
            "failed"
            if payout_mark_failed(payout_id=payout_id, batch_id=batch_id, reason=reason, item=item)
            else "skipped"
        )
    if status in ITEM_FAILED or (batch.batch_status in BATCH_FAILED and status not in {"PENDING", "ONHOLD", "NEW"}):
        reason = _paypal_reason(item, batch)
        return (
            "failed"
            if payout_mark_failed(payout_id=payout_id, batch_id=batch_id, reason=reason, item=item)
            else "skipped"
        )
    return "pending"
