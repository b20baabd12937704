"""Everything that writes payouts: the partner's request, staff decisions, sending through the
gateway, reconciling lost answers and settling what PayPal reports. Status changes go through
``payouts.states.move`` (the state machine, audited); this module decides which one.

Locking: a service that changes a payout locks the partner row first, then the payout row
(``_lock``), always in that order, so a request, an approval and a settlement for the same
partner run one after the other and never deadlock. Money decisions read the ledger
(``commissions.balance.partner_balance``) after the partner lock is held.

Every write path is safe to run twice: the status it starts from is checked under the lock, and
anything that talks to PayPal reuses the payout's stable ``sender_batch_id``.

Never paying twice: once any attempt's answer is lost (``outcome_unknown``), the payout is never
failed or returned to the balance by the code. It is reconciled: sent again with the same
``sender_batch_id`` inside PayPal's 30-day window (PayPal answers with the batch it already
has, which is adopted only if it pays this payout's amount, currency and receiver), looked up
when its batch id is known, or handed to staff (``attention``) with the reason.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from commissions.balance import partner_balance
from config.errors import PortalError
from partners.models import Partner, User
from payouts import states
from payouts.gateway import (
    BATCH_FAILED,
    ITEM_FAILED,
    ITEM_RETURNED,
    ITEM_SUCCESS,
    BatchItem,
    BatchResult,
    PayoutGateway,
    PayoutGatewayError,
    get_gateway,
)
from payouts.models import Payout, PayoutAudit
from payouts.rules import withdrawal_status

logger = logging.getLogger(__name__)
S = Payout.Status

# HTTP statuses that say nothing about the batch: PayPal refused us before looking at it. They
# are our credentials' fault, not the partner's: staff fix them, the payout waits.
_AUTH_STATUSES = frozenset({401, 403})
# PayPal refuses a reused sender_batch_id for 30 days; after that a resend could pay again.
DUPLICATE_WINDOW = timedelta(days=30)
# Resend only well inside the window (clocks differ; an attempt takes time).
RESEND_WINDOW = DUPLICATE_WINDOW - timedelta(days=1)
# Backoff between attempts after a lost or refused-for-now answer: 30 s, 60 s, … capped at 1 h.
RETRY_FIRST_SECONDS = 30
RETRY_MAX_SECONDS = 3600


# An attempt whose worker died mid-call (no answer recorded) is taken as lost once it is older
# than any attempt can last: a few PayPal calls (token, create, the duplicate's batch), each
# bounded by PAYPAL_TIMEOUT_SECONDS, and a margin.
def stale_attempt_after() -> timedelta:
    return timedelta(seconds=6 * float(settings.PAYPAL_TIMEOUT_SECONDS) + 30)


# How often a payout that waits for staff is looked at again by the periodic job.
ATTENTION_RECHECK = timedelta(minutes=15)
# A sent payout is polled with a growing delay up to this; a paid one every PAID_WATCH_EVERY
# for PAID_WATCH_DAYS (an item can be returned, reversed or refunded after SUCCESS).
POLL_MAX_SECONDS = 1800
PAID_WATCH_EVERY = timedelta(hours=6)
PAID_WATCH_DAYS = timedelta(days=90)


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


# --- sending ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SendResult:
    outcome: str  # "sent", "retry", "failed", "attention", "in_flight", "skipped"
    message: str = ""
    attempt: int = 0
    wait: float = 0.0  # seconds until the next attempt ("retry")


def _backoff(attempt: int) -> float:
    return float(min(RETRY_FIRST_SECONDS * 2 ** max(attempt - 1, 0), RETRY_MAX_SECONDS))


def _attention(payout: Payout, reason: str, *, recheck: bool = True, fields: tuple[str, ...] = (), **detail) -> None:
    """Hand a locked payout to staff with ``reason``; the periodic job looks again unless nothing
    it can do would help (``recheck=False``)."""
    newly = payout.status != S.ATTENTION
    payout.attention_reason = reason[:2000]
    payout.attempt_started_at = None
    payout.next_action_at = timezone.now() + ATTENTION_RECHECK if recheck else None
    states.move(
        payout,
        S.ATTENTION,
        fields=("attention_reason", "attempt_started_at", "next_action_at", "outcome_unknown", *fields),
        reason=payout.attention_reason,
        **detail,
    )
    if newly:
        _notify(payout.pk, "attention")


def _begin_attempt(
    payout_id: int, *, reconcile: bool, takeover: bool = False
) -> tuple[Payout | None, SendResult | None]:
    """Under the locks: decide whether an attempt may start now and record it (``sending``).
    ``takeover``: the caller knows the attempt recorded as under way was abandoned (its task
    was redelivered because its worker died)."""
    with transaction.atomic():
        _, payout = _lock(payout_id)
        now = timezone.now()
        if payout.paypal_batch_id:
            return None, SendResult("skipped", "PayPal already has its batch")
        if payout.status == S.SENDING and payout.attempt_started_at:
            if payout.attempt_started_at > now - stale_attempt_after() and not takeover:
                wait = (payout.attempt_started_at + stale_attempt_after() - now).total_seconds()
                return None, SendResult("in_flight", "an attempt is under way", wait=wait)
            # The worker making it stopped before recording PayPal's answer.
            payout.outcome_unknown = True
            payout.attempt_started_at = None
            states.move(
                payout,
                S.UNKNOWN,
                fields=("outcome_unknown", "attempt_started_at"),
                reason="an attempt was abandoned without an answer (its worker stopped)",
            )
        allowed = {S.APPROVED, S.SENDING, S.UNKNOWN} | ({S.ATTENTION} if reconcile else set())
        if payout.status not in allowed:
            return None, SendResult("skipped", f"payout is {payout.status}")
        if payout.outcome_unknown and payout.sent_at and now - payout.sent_at > RESEND_WINDOW:
            if payout.status == S.ATTENTION and payout.next_action_at is None:
                return None, SendResult("skipped", "waiting for staff")
            reason = (
                f"An earlier attempt's outcome is unknown and {DUPLICATE_WINDOW.days} days have passed since the first "
                "one, so PayPal would no longer refuse a second batch: it is not sent again. Look for "
                f"sender_batch_id {payout.sender_batch_id} in PayPal's dashboard. If PayPal has no such batch, "
                "use 'Mark failed and return to balance'."
            )
            _attention(payout, reason, recheck=False)
            return None, SendResult("attention", reason)
        payout.send_attempts += 1
        payout.sent_at = payout.sent_at or now
        payout.attempt_started_at = now
        payout.next_action_at = None
        states.move(
            payout,
            S.SENDING,
            fields=("send_attempts", "sent_at", "attempt_started_at", "next_action_at"),
            attempt=payout.send_attempts,
            outcome_unknown=payout.outcome_unknown,
        )
        return payout, None


def payout_send(
    *, payout_id: int, gateway: PayoutGateway | None = None, reconcile: bool = False, takeover: bool = False
) -> SendResult:
    """One attempt to hand a payout to its gateway, with its stable ``sender_batch_id``.

    Starts from ``approved``, ``sending`` (a scheduled retry, or an attempt whose worker died),
    ``unknown`` and, when reconciling, ``attention``; anything else is left alone, so a
    duplicated or re-delivered task does nothing. The HTTP calls happen outside any transaction.
    An unexpected exception never leaves the payout in flight: it goes to staff (``attention``).
    """
    payout, early = _begin_attempt(payout_id, reconcile=reconcile, takeover=takeover)
    if early is not None:
        return early
    attempt = payout.send_attempts
    gateway = gateway or get_gateway(payout.method)
    batch = None
    try:
        sent = gateway.send(
            sender_batch_id=payout.sender_batch_id,
            sender_item_id=str(payout.pk),
            receiver=payout.paypal_email,
            amount=payout.amount,
            currency=payout.currency,
            note=f"{settings.MERCHANT_NAME} Partner Program payout #{payout.pk}",
        )
        if sent.already_sent and sent.batch_id:
            try:
                batch = gateway.get_batch(sent.batch_id)
            except PayoutGatewayError as exc:
                # PayPal has a batch for this sender_batch_id: the money may be on its way.
                exc.may_have_arrived = True
                raise
    except PayoutGatewayError as exc:
        return _attempt_refused(payout_id, exc, attempt=attempt)
    except Exception as exc:
        logger.exception("Payout %s: unexpected error in attempt %s", payout_id, attempt)
        return _attempt_crashed(payout_id, exc, attempt=attempt)
    return _attempt_answered(payout_id, sent.batch_id, sent.already_sent, batch, attempt=attempt)


def _in_this_attempt(payout: Payout) -> bool:
    return payout.status == S.SENDING and payout.attempt_started_at is not None and not payout.paypal_batch_id


def _attempt_answered(
    payout_id: int, batch_id: str, already_sent: bool, batch: BatchResult | None, *, attempt: int
) -> SendResult:
    with transaction.atomic():
        _, payout = _lock(payout_id)
        if not _in_this_attempt(payout):
            states.audit(
                payout,
                PayoutAudit.Action.ATTEMPT,
                note="answer arrived after the payout had moved on",
                batch_id=batch_id,
                status=payout.status,
                attempt=attempt,
            )
            return SendResult("skipped", f"payout is {payout.status}", attempt)
        if already_sent:
            payout.outcome_unknown = True
            problem = _duplicate_problem(payout, batch_id, batch)
            if problem:
                _attention(payout, problem, attempt=attempt, batch_id=batch_id)
                return SendResult("attention", problem, attempt)
        payout.paypal_batch_id = batch_id
        payout.attempt_started_at = None
        payout.failure_reason = ""
        payout.next_action_at = timezone.now()
        states.move(
            payout,
            S.SENT,
            fields=("paypal_batch_id", "attempt_started_at", "failure_reason", "next_action_at", "outcome_unknown"),
            batch_id=batch_id,
            already_sent=already_sent,
            attempt=attempt,
        )
    return SendResult("sent", batch_id, attempt)


def _duplicate_problem(payout: Payout, batch_id: str, batch: BatchResult | None) -> str:
    """Why PayPal's "already have it" answer cannot be adopted as this payout's batch ("" if it can)."""
    if not batch_id or batch is None:
        return (
            f"PayPal says it already has a batch for sender_batch_id {payout.sender_batch_id} but did not say which. "
            "Find it in PayPal's dashboard before doing anything else: do not pay again."
        )
    if batch.sender_batch_id and batch.sender_batch_id != payout.sender_batch_id:
        return f"PayPal pointed at batch {batch_id}, which belongs to sender_batch_id {batch.sender_batch_id}."
    item = batch.item_for(str(payout.pk))
    if item is None or not item.pays(amount=payout.amount, currency=payout.currency, receiver=payout.paypal_email):
        what = f"{item.amount} {item.currency} to {item.receiver}" if item else "no item for this payout"
        return (
            f"PayPal's batch {batch_id} for sender_batch_id {payout.sender_batch_id} pays {what}, not "
            f"{payout.amount} {payout.currency} to {payout.paypal_email}. Check PayPal's dashboard."
        )
    return ""


def _attempt_refused(payout_id: int, exc: PayoutGatewayError, *, attempt: int) -> SendResult:
    with transaction.atomic():
        _, payout = _lock(payout_id)
        if not _in_this_attempt(payout):
            return SendResult("skipped", f"payout is {payout.status}", attempt)
        payout.attempt_started_at = None
        payout.outcome_unknown = payout.outcome_unknown or exc.may_have_arrived
        if exc.retryable:
            wait = max(_backoff(attempt), exc.retry_after)
            payout.next_action_at = timezone.now() + timedelta(seconds=wait)
            payout.failure_reason = f"Attempt {attempt}: {exc}"[:2000]
            states.move(
                payout,
                S.UNKNOWN if payout.outcome_unknown else S.SENDING,
                fields=("attempt_started_at", "outcome_unknown", "next_action_at", "failure_reason"),
                attempt=attempt,
                error=exc.as_dict(),
                retry_in_seconds=wait,
            )
            return SendResult("retry", str(exc), attempt, wait)
        if payout.outcome_unknown or exc.status in _AUTH_STATUSES:
            if payout.outcome_unknown:
                reason = (
                    f"PayPal refused attempt {attempt} ({exc}), but an earlier attempt's answer was lost, so PayPal "
                    "may have the payout: it was not failed. It is checked again automatically; 'Check with "
                    "PayPal now' sends it again with the same sender_batch_id (never paid twice)."
                )
            else:
                reason = (
                    f"PayPal refused our credentials ({exc}). Fix PAYPAL_CLIENT_ID / PAYPAL_CLIENT_SECRET, then "
                    "use 'Check with PayPal now'."
                )
            _attention(payout, reason, attempt=attempt, error=exc.as_dict())
            return SendResult("attention", reason, attempt)
        payout.failure_reason = f"PayPal refused the payout: {exc}"[:2000]
        states.move(
            payout,
            S.FAILED,
            fields=("failure_reason", "attempt_started_at"),
            attempt=attempt,
            error=exc.as_dict(),
        )
        _notify(payout.pk, "failed")
        _refresh_dashboard_balance(payout.partner_id)
    return SendResult("failed", str(exc), attempt)


def _attempt_crashed(payout_id: int, exc: Exception, *, attempt: int) -> SendResult:
    with transaction.atomic():
        _, payout = _lock(payout_id)
        if not _in_this_attempt(payout):
            return SendResult("skipped", f"payout is {payout.status}", attempt)
        payout.outcome_unknown = True
        reason = (
            f"Attempt {attempt} stopped on an unexpected error ({type(exc).__name__}: {str(exc)[:300]}). PayPal may "
            "have the payout; it is checked again automatically."
        )
        _attention(payout, reason, attempt=attempt, error=type(exc).__name__)
    return SendResult("attention", reason, attempt)


@transaction.atomic
def payout_send_gave_up(*, payout_id: int, last_error: str) -> Payout | None:
    """The send task ran out of retries: staff are told; the periodic job keeps trying."""
    _, payout = _lock(payout_id)
    if payout.status not in (S.SENDING, S.UNKNOWN) or payout.paypal_batch_id or payout.attempt_started_at:
        return None
    reason = (
        f"Gave up after {payout.send_attempts} attempts; last error: {last_error}. "
        + (
            "PayPal may have the payout (an answer was lost): it is never failed automatically."
            if payout.outcome_unknown
            else "PayPal has not taken it."
        )
        + " It is checked again every few minutes; 'Check with PayPal now' tries at once."
    )
    _attention(payout, reason, attempts=payout.send_attempts)
    return payout


# --- reconciling and settling -------------------------------------------------------------------------
def payout_reconcile(*, payout_id: int, gateway: PayoutGateway | None = None) -> str:
    """Move a payout on from wherever it waits: ask PayPal about a known batch, or send again
    (same ``sender_batch_id``) one whose batch is not known. Returns what happened."""
    payout = Payout.objects.filter(pk=payout_id).only("status", "paypal_batch_id").first()
    if payout is None:
        return "skipped"
    if payout.paypal_batch_id:
        return payout_poll(payout_id=payout_id, gateway=gateway)
    if payout.status in (S.APPROVED, S.SENDING, S.UNKNOWN, S.ATTENTION):
        return payout_send(payout_id=payout_id, gateway=gateway, reconcile=True).outcome
    return "skipped"


def _paypal_reason(item: BatchItem | None, batch: BatchResult) -> str:
    if item is None:
        return f"PayPal {batch.batch_status.lower()} the batch."
    reason = f"PayPal reports the payment {item.transaction_status}"
    if item.error_name or item.error_message:
        reason += f": {item.error_message or item.error_name}"
        if item.error_name and item.error_message:
            reason += f" ({item.error_name})"
    return reason + "."


def _poll_delay(payout: Payout, now) -> timedelta:
    """Look again soon after sending, then less often (PayPal settles most batches in minutes)."""
    age = (now - (payout.sent_at or now)).total_seconds()
    return timedelta(seconds=min(max(5.0, age / 4), POLL_MAX_SECONDS))


def payout_poll(*, payout_id: int, gateway: PayoutGateway | None = None) -> str:
    """Ask PayPal about a payout's batch and settle what it says: ``paid``, ``failed``,
    ``returned``, ``pending`` (nothing final yet), ``error`` (PayPal could not tell us now),
    ``attention`` or ``skipped``."""
    payout = Payout.objects.filter(pk=payout_id).first()
    if payout is None or not payout.paypal_batch_id or payout.status not in (S.SENT, S.PAID, S.ATTENTION):
        return "skipped"
    gateway = gateway or get_gateway(payout.method)
    batch_id = payout.paypal_batch_id
    try:
        batch = gateway.get_batch(batch_id)
    except PayoutGatewayError as exc:
        logger.warning("Could not read PayPal batch %s of payout %s: %s", batch_id, payout_id, exc.name or exc.status)
        with transaction.atomic():
            _, payout = _lock(payout_id)
            if payout.paypal_batch_id == batch_id and payout.status in (S.SENT, S.PAID, S.ATTENTION):
                # Not audited: nothing changed, and a PayPal outage would write a row per poll.
                now = timezone.now()
                payout.checked_at = now
                payout.next_action_at = now + max(_poll_delay(payout, now), timedelta(seconds=_backoff(2)))
                payout.save(update_fields=["checked_at", "next_action_at"])
        return "error"
    return _settle(payout_id, batch)


@transaction.atomic
def _settle(payout_id: int, batch: BatchResult) -> str:
    _, payout = _lock(payout_id)
    if payout.paypal_batch_id != batch.batch_id or payout.status not in (S.SENT, S.PAID, S.ATTENTION):
        return "skipped"
    now = timezone.now()
    payout.checked_at = now
    if batch.sender_batch_id and batch.sender_batch_id != payout.sender_batch_id:
        reason = (
            f"PayPal batch {batch.batch_id} belongs to sender_batch_id {batch.sender_batch_id}, not to this payout "
            f"({payout.sender_batch_id}). Check PayPal's dashboard."
        )
        if payout.status == S.PAID:
            payout.save(update_fields=["checked_at"])
            states.audit(payout, PayoutAudit.Action.CHECKED, problem=reason)
            return "error"
        _attention(payout, reason, recheck=False, fields=("checked_at",))
        return "attention"
    item = batch.item_for(str(payout.pk))
    status = item.transaction_status if item else ""
    newly_unclaimed = status == "UNCLAIMED" and payout.paypal_item_status != "UNCLAIMED"
    if item is not None:
        payout.paypal_item_id = item.item_id or payout.paypal_item_id
        payout.paypal_transaction_id = item.transaction_id or payout.paypal_transaction_id
        payout.paypal_item_status = status
    fields = ("checked_at", "paypal_item_id", "paypal_transaction_id", "paypal_item_status", "next_action_at")
    detail = {"batch_id": batch.batch_id, "batch_status": batch.batch_status, "item_status": status}
    # PayPal's word on the batch: whatever the answers we lost, the outcome is now known.
    if status in ITEM_SUCCESS:
        if payout.status == S.PAID:
            watching = payout.paid_at and now - payout.paid_at < PAID_WATCH_DAYS
            payout.next_action_at = now + PAID_WATCH_EVERY if watching else None
            payout.save(update_fields=list(fields))
            return "paid"
        payout.next_action_at = now + PAID_WATCH_EVERY
        payout.failure_reason = ""
        states.move(payout, S.PAID, fields=(*fields, "failure_reason"), **detail)
        _notify(payout.pk, "paid")
        return "paid"
    returned = status in ITEM_RETURNED or (payout.status == S.PAID and status in ITEM_FAILED)
    failed = (
        status in ITEM_FAILED
        or (batch.batch_status == "CANCELED" and status not in ("SUCCESS", "UNCLAIMED"))
        or (batch.batch_status in BATCH_FAILED and status not in ("SUCCESS", "UNCLAIMED", "PENDING", "ONHOLD", "NEW"))
    )
    if returned or (failed and payout.status == S.PAID):
        payout.failure_reason = _paypal_reason(item, batch)[:2000]
        payout.next_action_at = None
        states.move(payout, S.RETURNED, fields=(*fields, "failure_reason"), **detail)
        _notify(payout.pk, "returned")
        _refresh_dashboard_balance(payout.partner_id)
        return "returned"
    if failed:
        payout.failure_reason = _paypal_reason(item, batch)[:2000]
        payout.outcome_unknown = False
        payout.next_action_at = None
        states.move(payout, S.FAILED, fields=(*fields, "failure_reason", "outcome_unknown"), **detail)
        _notify(payout.pk, "failed")
        _refresh_dashboard_balance(payout.partner_id)
        return "failed"
    # PENDING, ONHOLD, UNCLAIMED (waits for the receiver to claim it, or for PayPal to return it
    # after 30 days), NEW, PROCESSING: nothing final yet.
    payout.next_action_at = now + (PAID_WATCH_EVERY if status == "UNCLAIMED" else _poll_delay(payout, now))
    if payout.status == S.ATTENTION:
        payout.attention_reason = ""
        states.move(payout, S.SENT, fields=(*fields, "attention_reason"), **detail)
    else:
        payout.save(update_fields=list(fields))
    if newly_unclaimed:
        states.audit(payout, PayoutAudit.Action.CHECKED, **detail)
        _notify(payout.pk, "unclaimed")
    return "pending"


# --- staff ------------------------------------------------------------------------------------------------
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
