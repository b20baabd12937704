"""Sending: one attempt to hand an approved payout to its gateway, and what its answer (or the lack
of one) does to the payout.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from payouts import states
from payouts.gateway import (
    BatchResult,
    PayoutGateway,
    PayoutGatewayError,
    get_gateway,
)
from payouts.models import Payout, PayoutAudit
from payouts.services.common import S, _attention, _backoff, _lock, _notify, _refresh_dashboard_balance

logger = logging.getLogger(__name__)

# HTTP statuses that say nothing about the batch: PayPal refused us before looking at it. They
# are our credentials' fault, not the partner's: staff fix them, the payout waits.
_AUTH_STATUSES = frozenset({401, 403})
# PayPal refuses a reused sender_batch_id for 30 days; after that a resend could pay again.
DUPLICATE_WINDOW = timedelta(days=30)
# Resend only well inside the window (clocks differ; an attempt takes time).
RESEND_WINDOW = DUPLICATE_WINDOW - timedelta(days=1)


# An attempt whose worker died mid-call (no answer recorded) is taken as lost once it is older
# than any attempt can last: a few PayPal calls (token, create, the duplicate's batch), each
# bounded by PAYPAL_TIMEOUT_SECONDS, and a margin.
def stale_attempt_after() -> timedelta:
    return timedelta(seconds=6 * float(settings.PAYPAL_TIMEOUT_SECONDS) + 30)


@dataclass(frozen=True)
class SendResult:
    outcome: str  # "sent", "retry", "failed", "attention", "in_flight", "skipped"
    message: str = ""
    attempt: int = 0
    wait: float = 0.0  # seconds until the next attempt ("retry")


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
