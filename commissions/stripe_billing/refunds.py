"""Refunds: each Stripe refund applied on its own, in Stripe's order, at its own time."""

from __future__ import annotations

import json
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

import stripe
from django.conf import settings
from django.utils import timezone

from commissions.events import EventBodyError, ParsedEvent, canonical_sha256
from commissions.models import Payment
from commissions.schemas import EVENT_ADAPTER
from commissions.services import EventConflict, EventRejected, event_receive
from commissions.stripe_billing import mapping
from commissions.stripe_billing.derived import (
    Status,
    _amount,
    _apply,
    _invoice_seen,
    _lock_customer,
    _other_currency,
    _outcome,
    _Result,
    _stripe_unreachable,
)
from commissions.stripe_billing.models import (
    StripeEvent,
    StripePaymentLink,
    StripeRefund,
)

# --- refunds ---------------------------------------------------------------------------------
#
# ``charge.refunded`` carries only the charge's cumulative ``amount_refunded``: applying its growth
# at the event's time would make the ledger depend on the delivery order (two refunds delivered
# backwards land on one day as one reversal, rounded once). So each Stripe refund (``re_…``) is
# applied on its own: as a ``payment.refunded`` of its own amount, dated at its own creation, in
# the order Stripe created them. A charge's refunds are known from the refund events, from the
# charge's ``refunds`` list (older API versions) or, with STRIPE_API_KEY, from the API. They are
# applied up to the longest run (oldest first) whose sum is a cumulative ``amount_refunded`` that
# a ``charge.refunded`` of that time reported: then no earlier refund can still be missing. A
# ``charge.refunded`` whose refunds stay unknown waits STRIPE_REFUND_WAIT_SECONDS for them, then
# is applied by the growth of its cumulative on its own day (the merchant sends no refund events).
# Each application takes at most the growth of the cumulative over what the payment has had
# refunded so far (by any endpoint): a refund also reported through /api/v1/events reverses once.

_VOID_REFUND = ("failed", "canceled")
# The time a waiting charge.refunded is judged by (stripe_refunds_waited sets it).
_clock: ContextVar[datetime | None] = ContextVar("stripe_refund_clock", default=None)


@dataclass
class _Refunds:
    """A charge's refunds as far as they can be applied now."""

    covered: int = 0  # minor units: the sum of the refunds applied (or found refunded) in order
    covered_ids: set[str] = field(default_factory=set)
    applied: list[str] = field(default_factory=list)  # merchant event ids written now
    notes: list[str] = field(default_factory=list)


def _refund_learn(info: mapping.RefundInfo, *, charge_id: str | None, at: datetime) -> bool:
    """Store or refresh one refund. True when the connector learned something new."""
    charge = info.charge_id or charge_id
    if not info.refund_id or not charge or info.created is None or info.amount <= 0:
        return False
    known = StripeRefund.objects.filter(refund_id=info.refund_id).first()
    if known is None:
        _, created = StripeRefund.objects.get_or_create(
            refund_id=info.refund_id[:255],
            defaults={
                "charge_id": charge[:255],
                "payment_intent": (info.payment_intent or "")[:255],
                "amount": info.amount,
                "currency": info.currency[:3],
                "status": info.status[:20],
                "created": info.created,
                "state_at": at,
            },
        )
        return created
    if at < known.state_at or known.status == info.status[:20]:
        return False
    known.status, known.state_at = info.status[:20], at
    known.save(update_fields=["status", "state_at"])
    return True


def _cumulatives(charge_id: str) -> list[tuple[int, datetime]]:
    """(amount_refunded, event time) of every ``charge.refunded`` of the charge stored so far."""
    out = []
    for payload, created in StripeEvent.objects.filter(type="charge.refunded", object_id=charge_id).values_list(
        "payload", "created"
    ):
        value = mapping.action_for("charge.refunded", payload["data"]["object"])
        if isinstance(value, mapping.ChargeRefunded):
            out.append((value.amount_refunded, created))
    return out


def _refund_document(refund: StripeRefund, *, invoice_id: str, amount: Decimal) -> ParsedEvent:
    document = {
        "id": f"stripe:{refund.refund_id}",
        "type": "payment.refunded",
        "created": refund.created.isoformat().replace("+00:00", "Z"),
        "data": {"payment_id": invoice_id, "amount": f"{amount:.2f}"},
    }
    text = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return ParsedEvent(event=EVENT_ADAPTER.validate_python(document), text=text, body_sha256=canonical_sha256(document))


def _refunds_settle(*, charge_id: str, invoice_id: str, currency: str, through: datetime | None = None) -> _Refunds:
    """Apply the charge's refunds that can be applied now, oldest first. ``through``: also those
    created until then, reported or not (a refund event that waited in vain for its charge's
    charge.refunded). Caller holds the lock of the payment's customer."""
    refunds = list(
        StripeRefund.objects.select_for_update()
        .filter(charge_id=charge_id)
        .exclude(status__in=_VOID_REFUND)
        .order_by("created", "refund_id")
    )
    reported = _cumulatives(charge_id)
    upto, running = 0, 0
    for n, refund in enumerate(refunds, start=1):
        running += refund.amount
        # No refund created before this one can be missing: a charge.refunded sent after it
        # reported exactly this sum (or the caller gave up waiting for one: ``through``).
        reported_here = any(total == running and at >= refund.created for total, at in reported)
        if reported_here or (through is not None and refund.created <= through):
            upto = n
    result = _Refunds()
    for refund in refunds[:upto]:
        result.covered += refund.amount
        result.covered_ids.add(refund.refund_id)
        if refund.applied:
            continue
        refunded = Payment.objects.filter(payment_id=invoice_id).values_list("refunded_amount", flat=True).get()
        cumulative, own = _amount(result.covered, currency), _amount(refund.amount, currency)
        if cumulative is None or own is None:
            result.notes.append(f"{refund.refund_id}: {refund.amount} is not a whole cent amount.")
        elif (growth := min(own, cumulative - refunded)) <= 0:
            result.notes.append(f"{refund.refund_id}: {invoice_id} is already refunded up to {refunded}.")
        else:
            try:
                event_receive(parsed=_refund_document(refund, invoice_id=invoice_id, amount=growth))
            except (EventBodyError, EventRejected, EventConflict) as exc:
                result.notes.append(f"{refund.refund_id} not applied: {exc.message}")
            else:
                result.applied.append(f"stripe:{refund.refund_id}")
        refund.applied = True
        refund.save(update_fields=["applied"])
    return result


def _refunds_list(charge_id: str) -> bool:
    """Learn the charge's refunds from Stripe's API. True when something new was learned. Raises
    ``stripe.StripeError`` when Stripe cannot answer."""
    from commissions.stripe_billing.sync import stripe_client

    learned = False
    page = stripe_client().v1.refunds.list(params={"charge": charge_id, "limit": 100})
    for item in page.auto_paging_iter():
        info = mapping.refund_info(item.to_dict())
        if info is not None and info.status:
            learned |= _refund_learn(info, charge_id=charge_id, at=info.created or timezone.now())
    return learned


def _charge_invoice(
    *, invoice_id: str | None, refs: tuple[str, ...], charge_id: str
) -> tuple[str | None, str | None, _Result | None]:
    """(invoice id, the paying customer) of a charge's payment, or the result of an event that
    must wait or is not a referral's."""
    if invoice_id is None:
        invoice_id = StripePaymentLink.objects.filter(payment_ref__in=refs).values_list("invoice_id", flat=True).first()
    if invoice_id is None:
        ref = refs[0] if refs else charge_id
        waiting = _Result(
            Status.HELD, f"Waiting for the invoice_payment.paid that names the invoice {ref} paid.", f"payment:{ref}"
        )
        return None, None, waiting
    found = Payment.objects.filter(payment_id=invoice_id).values_list("referral__customer_id", flat=True).first()
    if found is not None:
        return invoice_id, found, None
    if _invoice_seen(invoice_id):
        return (
            None,
            None,
            _Result(
                Status.NOT_REFERRED, f"The refunded invoice {invoice_id} earned no commission.", f"invoice:{invoice_id}"
            ),
        )
    return None, None, _Result(Status.HELD, f"Waiting for invoice.paid of {invoice_id}.", f"invoice:{invoice_id}")


def _charge_refunded(action: mapping.ChargeRefunded, row: StripeEvent) -> _Result:
    refused = _other_currency(action.currency, "Refunded")
    if refused is not None:
        return refused
    learned = False
    for info in action.refunds:
        learned |= _refund_learn(info, charge_id=action.charge_id, at=row.created)
    return _refunds_of_charge(
        row,
        charge_id=action.charge_id,
        refs=action.payment_refs,
        invoice_id=action.invoice_id,
        currency=action.currency,
        learned=learned,
        cumulative=action.amount_refunded,
    )


def _refund_seen(action: mapping.RefundSeen, row: StripeEvent) -> _Result:
    info = action.refund
    refused = _other_currency(info.currency, "Refunded")
    if refused is not None:
        return refused
    learned = _refund_learn(info, charge_id=None, at=row.created)
    refs = tuple(ref for ref in (info.payment_intent, info.charge_id) if ref)
    return _refunds_of_charge(
        row,
        charge_id=info.charge_id or "",
        refs=refs,
        invoice_id=None,
        currency=info.currency,
        learned=learned,
        refund_id=info.refund_id,
    )


def _refunds_of_charge(
    row: StripeEvent,
    *,
    charge_id: str,
    refs: tuple[str, ...],
    invoice_id: str | None,
    currency: str,
    learned: bool,
    cumulative: int | None = None,
    refund_id: str | None = None,
) -> _Result:
    """Apply what the charge's known refunds allow; this event's own part (its cumulative, or its
    refund) says whether it is applied or still waits."""
    key = f"refunds:{charge_id}"
    invoice_id, customer, waiting = _charge_invoice(invoice_id=invoice_id, refs=refs, charge_id=charge_id)
    if waiting is not None:
        return waiting
    _lock_customer(customer)  # the charge's refunds, one event after the other

    def done(state: _Refunds) -> bool:
        if refund_id is not None:
            void = StripeRefund.objects.filter(refund_id=refund_id, status__in=_VOID_REFUND).exists()
            return void or refund_id in state.covered_ids
        return cumulative is not None and cumulative <= state.covered

    state = _refunds_settle(charge_id=charge_id, invoice_id=invoice_id, currency=currency)
    if not done(state) and cumulative is not None and settings.STRIPE_API_KEY:
        try:
            learned |= _refunds_list(charge_id)
        except stripe.StripeError as exc:
            return _stripe_unreachable(f"The refunds of {charge_id} could not be listed in Stripe", exc, key)
        more = _refunds_settle(charge_id=charge_id, invoice_id=invoice_id, currency=currency)
        more.applied = [*state.applied, *more.applied]
        more.notes = [*state.notes, *more.notes]
        state = more
    releases = [key] if learned or state.applied else []
    note = " ".join(state.notes)
    if done(state):
        ids = [f"stripe:{refund}" for refund in sorted(state.covered_ids)] if refund_id is None else []
        if refund_id is not None and refund_id in state.covered_ids:
            ids = [f"stripe:{refund_id}"]
        return _Result(Status.APPLIED, note, merchant_event_ids=ids, releases=releases)
    now = _clock.get() or timezone.now()
    waited = now - row.received_at >= timedelta(seconds=settings.STRIPE_REFUND_WAIT_SECONDS)
    if cumulative is not None and waited:
        return _refund_growth(row, invoice_id=invoice_id, cumulative=cumulative, currency=currency, releases=releases)
    if refund_id is not None and waited:
        # No charge.refunded came (the merchant does not send it): the refund on its own, with
        # the charge's refunds known from before it.
        created = StripeRefund.objects.filter(refund_id=refund_id).values_list("created", flat=True).first()
        more = _refunds_settle(charge_id=charge_id, invoice_id=invoice_id, currency=currency, through=created)
        if done(more):
            ids = [f"stripe:{refund_id}"]
            note = " ".join([*state.notes, *more.notes, "No charge.refunded reported this refund."])
            return _Result(Status.APPLIED, note, merchant_event_ids=ids, releases=[key])
    what = "its refund.created" if refund_id is None else "the charge's charge.refunded"
    return _Result(
        Status.HELD,
        f"Waiting for {what} (each refund is applied on its own, in Stripe's order). {note}".strip(),
        key,
        releases=releases,
    )


def _refund_growth(
    row: StripeEvent, *, invoice_id: str, cumulative: int, currency: str, releases: list[str]
) -> _Result:
    """The merchant sends no refund events and there is no API key: the growth of the charge's
    cumulative amount_refunded over what the payment has had refunded, on this event's day."""
    refunded = Payment.objects.filter(payment_id=invoice_id).values_list("refunded_amount", flat=True).get()
    total = _amount(cumulative, currency)
    if total is None:
        return _Result(Status.REJECTED, f"amount_refunded {cumulative} is not a whole cent amount.")
    growth = total - refunded
    if growth <= 0:
        return _Result(
            Status.DUPLICATE,
            f"{invoice_id} is already refunded up to {refunded} (this says {total}).",
            releases=releases,
        )
    try:
        response = _apply(
            row, "payment.refunded", {"payment_id": invoice_id, "amount": f"{growth:.2f}"}, at=row.created
        )
    except (EventBodyError, EventRejected, EventConflict) as exc:
        return _Result(Status.REJECTED, f"Refund not applied: {exc.message}")
    result = _outcome(response, row)
    result.note = "No refund event told this charge's refunds: applied as the growth of amount_refunded."
    result.releases = releases
    return result
