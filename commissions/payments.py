"""``payment.succeeded``, ``payment.refunded`` and ``subscription.cancelled``: the payment, its
commission and reversals in the ledger, and the referral's state."""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

from django.db import IntegrityError
from django.db.models import Max, Q, Sum

from commissions.display import iso_utc
from commissions.handling import (
    EventRejected,
    Outcome,
    _commission_json,
    _Handled,
    _held,
    _insert_unless_exists,
    _lock_referral,
    _waiting_sign_up,
    _waiting_sign_up_of_payment,
    payment_json,
    referral_json,
)
from commissions.models import CommissionEntry, MerchantEvent, Payment, Referral, Refund
from commissions.money import ZERO, commission_for, money_str, reversal_for
from commissions.rates import rate_in_force
from tracking.models import Click
from tracking.rollups import program_day, rollup_add

logger = logging.getLogger(__name__)

# --- payment.succeeded -------------------------------------------------------------------


def _payment_commission(payment: Payment) -> Decimal | None:
    total = CommissionEntry.objects.filter(payment=payment, kind=CommissionEntry.Kind.COMMISSION).aggregate(
        total=Sum("amount")
    )["total"]
    return total


def _known_payment(payment_id: str) -> _Handled | None:
    known = Payment.objects.select_related("referral").filter(payment_id=payment_id).first()
    if known is None:
        return None
    body = {
        "payment": payment_json(known, customer_id=known.referral.customer_id),
        "commission": _commission_json(_payment_commission(known)),
    }
    return _Handled(Outcome.DUPLICATE, 200, body, known.referral)


_PAYMENT_REFERRAL_FIELDS = (
    "partner_id",
    "link_id",
    "customer_id",
    "is_self_referral",
    "status",
    "first_paid_at",
    "plan",
    "seats",
    "total_paid",
    "total_commission",
)


def _payment_succeeded(event: Any, record: MerchantEvent, click: Click | None) -> _Handled:
    data = event.data
    # The columns a payment reads and writes, without the partner join of ``_lock_referral``.
    locked = Referral.objects.select_for_update().only(*_PAYMENT_REFERRAL_FIELDS).filter(customer_id=data.customer_id)
    referral = next(iter(locked.order_by()[:1]), None)
    if referral is None:
        known = _known_payment(data.payment_id)
        if known is not None:
            return known
        waiting = _waiting_sign_up(customer_id=data.customer_id)
        if waiting is not None:
            return _held(waiting, {"payment": None, "commission": None})
        # Its sign-up may have been resolved while this waited for its lock.
        referral = next(iter(locked.order_by()[:1]), None)
    if referral is None:
        return _Handled(Outcome.NOT_REFERRED, 201, {"payment": None, "commission": None})
    payment = Payment(
        payment_id=data.payment_id,
        referral=referral,
        partner_id=referral.partner_id,
        plan=data.plan,
        seats=data.seats,
        amount=data.amount,
        currency=data.currency,
        paid_at=event.created,
        event=record,
    )
    # A payment earns once (its unique id decides, concurrent deliveries included): a new
    # event id for a known payment changes nothing.
    if not _insert_unless_exists(payment, unique="payment_id"):
        known = _known_payment(data.payment_id)
        if known is None:  # the conflicting row was rolled back meanwhile: run the event again
            raise IntegrityError(f"payment {data.payment_id} vanished")
        return known
    # A self-referral is recorded but earns nothing: its ledger entry is 0.00, so every
    # payment has exactly one commission entry and every refund one reversal.
    rate = ZERO if referral.is_self_referral else rate_in_force(partner_id=referral.partner_id, at=event.created)
    commission = commission_for(data.amount, rate=rate)
    CommissionEntry.objects.create(
        partner_id=referral.partner_id,
        referral=referral,
        payment=payment,
        kind=CommissionEntry.Kind.COMMISSION,
        amount=commission,
        rate=rate,
        earned_at=event.created,
    )
    new_subscription = referral.first_paid_at is None
    if new_subscription:
        referral.first_paid_at = event.created
    # Paying again after a cancellation or an ended trial; plan and seats are "now".
    referral.status = Referral.Status.PAYING
    referral.plan = data.plan
    referral.seats = data.seats
    referral.total_paid += data.amount
    referral.total_commission += commission
    referral.save(update_fields=["status", "first_paid_at", "plan", "seats", "total_paid", "total_commission"])
    rollup_add(
        link_id=referral.link_id,
        partner_id=referral.partner_id,
        day=program_day(event.created),
        new_subscriptions=1 if new_subscription else 0,
        commission=commission,
    )
    body = {
        "payment": payment_json(payment, customer_id=referral.customer_id),
        "commission": _commission_json(commission),
    }
    return _Handled(Outcome.APPLIED, 201, body, referral, money_moved=True)


# --- payment.refunded --------------------------------------------------------------------


def _payment_refunded(event: Any, record: MerchantEvent, click: Click | None) -> _Handled:
    data = event.data
    found = Payment.objects.filter(payment_id=data.payment_id).values_list("referral_id", flat=True).first()
    if found is None:
        waiting = _waiting_sign_up_of_payment(payment_id=data.payment_id)
        if waiting is not None:
            return _held(waiting, {"refund": None, "commission": None})
        found = Payment.objects.filter(payment_id=data.payment_id).values_list("referral_id", flat=True).first()
    if found is None:
        return _Handled(Outcome.NOT_REFERRED, 201, {"refund": None, "commission": None})
    referral = _lock_referral(pk=found)
    payment = Payment.objects.select_for_update().get(payment_id=data.payment_id)
    remaining = payment.amount - payment.refunded_amount
    if data.amount > remaining:
        raise EventRejected(
            f"The refund ({money_str(data.amount)}) is more than what is left of payment "
            f"{payment.payment_id} ({money_str(remaining)}).",
            code="refund_exceeds_payment",
            field="data.amount",
        )
    ledger = CommissionEntry.objects.filter(payment=payment).aggregate(
        total=Sum("amount"), rate=Max("rate", filter=Q(kind=CommissionEntry.Kind.COMMISSION))
    )
    # Reversed at the rate the payment's commission used, not the partner's rate today.
    paid_rate = ledger["rate"]
    reversal = reversal_for(
        refunded=data.amount,
        commission_left=ledger["total"] or ZERO,
        completes_payment=data.amount == remaining,
        rate=paid_rate,
    )
    refund = Refund.objects.create(payment=payment, amount=data.amount, refunded_at=event.created, event=record)
    CommissionEntry.objects.create(
        partner_id=referral.partner_id,
        referral=referral,
        payment=payment,
        refund=refund,
        kind=CommissionEntry.Kind.REVERSAL,
        amount=reversal,
        rate=paid_rate,
        earned_at=event.created,
    )
    payment.refunded_amount += data.amount
    payment.save(update_fields=["refunded_amount"])
    referral.total_paid -= data.amount
    referral.total_commission += reversal
    referral.save(update_fields=["total_paid", "total_commission"])
    rollup_add(
        link_id=referral.link_id, partner_id=referral.partner_id, day=program_day(event.created), commission=reversal
    )
    body = {
        "refund": {
            "payment_id": payment.payment_id,
            "amount": money_str(refund.amount),
            "refunded_at": iso_utc(refund.refunded_at),
            "payment_refunded_amount": money_str(payment.refunded_amount),
            "payment_remaining_amount": money_str(payment.amount - payment.refunded_amount),
        },
        "commission": _commission_json(reversal),
    }
    return _Handled(Outcome.APPLIED, 201, body, referral, money_moved=True)


# --- subscription.cancelled --------------------------------------------------------------


def _subscription_cancelled(event: Any, record: MerchantEvent, click: Click | None) -> _Handled:
    referral = _lock_referral(customer_id=event.data.customer_id)
    if referral is None:
        waiting = _waiting_sign_up(customer_id=event.data.customer_id)
        if waiting is not None:
            return _held(waiting, {"referral": None})
        referral = _lock_referral(customer_id=event.data.customer_id)
    if referral is None:
        return _Handled(Outcome.NOT_REFERRED, 201, {"referral": None})
    if referral.status == Referral.Status.CANCELLED:
        return _Handled(Outcome.DUPLICATE, 200, {"referral": referral_json(referral)}, referral)
    referral.status = Referral.Status.CANCELLED
    referral.cancelled_at = event.created
    referral.save(update_fields=["status", "cancelled_at"])
    return _Handled(Outcome.APPLIED, 201, {"referral": referral_json(referral)}, referral)
