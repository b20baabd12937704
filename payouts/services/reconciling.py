"""Reconciling and settling: moving a payout on from wherever it waits, and settling what PayPal
reports about its batch (paid, failed, returned, still pending).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

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
from payouts.services.common import S, _attention, _backoff, _lock, _notify, _refresh_dashboard_balance
from payouts.services.sending import payout_send

logger = logging.getLogger(__name__)

# A sent payout is polled with a growing delay up to this; a paid one every PAID_WATCH_EVERY
# for PAID_WATCH_DAYS (an item can be returned, reversed or refunded after SUCCESS).
POLL_MAX_SECONDS = 1800
PAID_WATCH_EVERY = timedelta(hours=6)
PAID_WATCH_DAYS = timedelta(days=90)


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
