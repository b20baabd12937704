"""Applying Stripe events: store first, then map, then apply through the commissions services.

``stripe_event_receive`` stores the verified event (unique on Stripe's id: a redelivery finds the
row and changes nothing), then handles it in one transaction under the lock of its customer's
row (stripe_billing.models.StripeCustomer), so that two events of one customer never decide on
each other's half-written state. Money moves only through ``commissions.services.event_receive``,
with the derived event (``customer.signed_up``, ``payment.succeeded``, ``payment.refunded``,
``subscription.cancelled``) the events API would have received: the same exactness, the same
idempotency (a payment id earns once, whichever endpoint reports it) and the same ledger.

Order: Stripe does not promise to deliver events in order. An event that cannot be applied yet
is *held* with what it waits for (``waiting_for``): an invoice waits for its customer's checkout,
a refund for its invoice's payment (or for the ``invoice_payment`` that says which invoice its
charge paid). When that arrives, the held events are handled again, oldest first. Facts whose
final value depends on order (the referral's plan and seats "now", its trial end, a cancellation
that a late payment would undo) are not applied event by event but *reconciled* after each event
from the latest subscription state and the latest payment, so any order ends where the in-order
delivery ends.
"""

from __future__ import annotations

import json
import logging
from collections import deque
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import stripe
from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from commissions.events import EventBodyError, ParsedEvent, canonical_sha256
from commissions.models import Payment, Referral
from commissions.schemas import EVENT_ADAPTER
from commissions.services import EventConflict, EventRejected, EventResponse, event_receive
from commissions.stripe_billing import mapping
from commissions.stripe_billing.models import (
    StripeCustomer,
    StripeEvent,
    StripePaymentLink,
    StripePrice,
    StripeRefund,
    StripeSubscription,
)
from tracking.models import DailyLinkStats
from tracking.rollups import program_day, rollup_add

logger = logging.getLogger(__name__)

Status = StripeEvent.Status
# Events waiting on a key are handled again when it is satisfied: held ones, and not-referred
# ones (a customer referred later by another checkout or customer event).
_REHANDLED = (Status.HELD, Status.NOT_REFERRED)
# A chain of releases is short (sign-up -> invoice -> refund); this bounds a pathological one.
_MAX_HANDLED_PER_DELIVERY = 10_000


class StripePayloadError(ValueError):
    """A verified body that is not a Stripe event (no id, type, created or data.object)."""


@dataclass
class _Result:
    status: str
    note: str = ""
    waiting_for: str = ""
    merchant_event_ids: list[str] = field(default_factory=list)
    releases: list[str] = field(default_factory=list)  # keys now satisfied


# --- receiving ------------------------------------------------------------------------------


def stripe_event_receive(*, payload: dict[str, Any], source: str = StripeEvent.Source.WEBHOOK) -> StripeEvent:
    """Store one Stripe event (unique on its id) and apply it; then handle again the events it
    released. A known id changes nothing, unless its first delivery stopped before it was handled."""
    row, created = _store(payload, source=source)
    if created or row.status == Status.RECEIVED:
        _handle_with_releases(row.pk)
        row.refresh_from_db()
    return row


def _store(payload: dict[str, Any], *, source: str) -> tuple[StripeEvent, bool]:
    event_id, event_type = payload.get("id"), payload.get("type")
    obj = payload.get("data", {}).get("object") if isinstance(payload.get("data"), dict) else None
    created = mapping.moment(payload.get("created"))
    if not isinstance(event_id, str) or not event_id or len(event_id) > 255:
        raise StripePayloadError("The event has no id.")
    if not isinstance(event_type, str) or not event_type or len(event_type) > 100:
        raise StripePayloadError("The event has no type.")
    if created is None or not isinstance(obj, dict):
        raise StripePayloadError("The event has no created time or no data.object.")
    if "\\u0000" in json.dumps(payload):
        raise StripePayloadError("The event contains NUL characters.")
    action = mapping.action_for(event_type, obj)
    customer = getattr(action, "customer_id", None) or ""
    object_id = obj.get("id") if isinstance(obj.get("id"), str) else ""
    api_version = payload.get("api_version")
    return StripeEvent.objects.get_or_create(
        stripe_id=event_id,
        defaults={
            "type": event_type,
            "api_version": api_version[:40] if isinstance(api_version, str) else "",
            "livemode": payload.get("livemode") is True,
            "created": created,
            "source": source,
            "payload": payload,
            "object_id": object_id[:255],
            "customer_id": customer[:255],
        },
    )


def _handle_with_releases(first_pk: int) -> None:
    queue: deque[int] = deque([first_pk])
    handled = 0
    while queue and handled < _MAX_HANDLED_PER_DELIVERY:
        releases = _handle(queue.popleft())
        handled += 1
        for key in releases:
            waiting = (
                StripeEvent.objects.filter(waiting_for=key, status__in=_REHANDLED)
                .order_by("created", "id")
                .values_list("pk", flat=True)
            )
            queue.extend(pk for pk in waiting if pk not in queue)


def stripe_events_handle_again(*, pks: list[int]) -> int:
    """Handle the given events again when they are held or not referred (the admin's action:
    e.g. after a price got its plan). Returns how many were."""
    rows = list(
        StripeEvent.objects.filter(pk__in=pks, status__in=(*_REHANDLED, Status.RECEIVED))
        .order_by("created", "id")
        .values_list("pk", flat=True)
    )
    for pk in rows:
        _handle_with_releases(pk)
    return len(rows)


@transaction.atomic
def _handle(pk: int) -> list[str]:
    row = StripeEvent.objects.select_for_update().get(pk=pk)
    action = mapping.action_for(row.type, row.payload["data"]["object"])
    customer_id = getattr(action, "customer_id", None)
    if customer_id:
        _lock_customer(customer_id)
    result = _HANDLERS[type(action)](action, row)
    if customer_id:
        _reconcile(customer_id, row)
    row.status = result.status
    row.note = result.note[:2000]
    row.waiting_for = result.waiting_for
    row.merchant_event_ids = [*row.merchant_event_ids, *result.merchant_event_ids]
    row.handled_at = timezone.now()
    row.save(update_fields=["status", "note", "waiting_for", "merchant_event_ids", "handled_at"])
    return result.releases


def _lock_customer(customer_id: str) -> StripeCustomer:
    StripeCustomer.objects.get_or_create(customer_id=customer_id)
    return StripeCustomer.objects.select_for_update().get(customer_id=customer_id)


# --- the derived events ---------------------------------------------------------------------


def _derived(row: StripeEvent, event_type: str, data: dict[str, Any], *, at: datetime, suffix: str = "") -> ParsedEvent:
    document = {
        "id": f"stripe:{row.stripe_id}{suffix}",
        "type": event_type,
        "created": at.isoformat().replace("+00:00", "Z"),
        "data": data,
    }
    text = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return ParsedEvent(event=EVENT_ADAPTER.validate_python(document), text=text, body_sha256=canonical_sha256(document))


def _apply(row: StripeEvent, event_type: str, data: dict[str, Any], *, at: datetime, suffix: str = "") -> EventResponse:
    """One derived event through the events API's service. Raises ``EventBodyError``,
    ``EventRejected`` or ``EventConflict`` as the events API would answer 400 / 409."""
    return event_receive(parsed=_derived(row, event_type, data, at=at, suffix=suffix))


def _outcome(response: EventResponse, row: StripeEvent, suffix: str = "") -> _Result:
    status = Status.APPLIED if response.status == 201 else Status.DUPLICATE
    return _Result(status, merchant_event_ids=[f"stripe:{row.stripe_id}{suffix}"])


def _waiting(customer_id: str, *, what: str) -> _Result:
    """A payment, refund or cancellation of a customer who is not a referral: held until a
    checkout or customer event of the customer has been handled, then logged only."""
    seen = StripeCustomer.objects.filter(customer_id=customer_id, signup_seen=True).exists()
    if seen:
        return _Result(Status.NOT_REFERRED, f"{what}: the customer is not a referral.", f"customer:{customer_id}")
    return _Result(
        Status.HELD,
        f"{what}: waiting for the customer's checkout.session.completed or customer.created.",
        f"customer:{customer_id}",
    )


# --- handlers --------------------------------------------------------------------------------


def _sign_up(action: mapping.SignUp, row: StripeEvent) -> _Result:
    if not action.customer_id:
        return _Result(Status.IGNORED, "No customer on this event (a guest checkout): nothing to attribute.")
    StripeCustomer.objects.filter(customer_id=action.customer_id).update(signup_seen=True)
    releases = [f"customer:{action.customer_id}"]
    promo_code = action.promo_code
    if promo_code is None and action.promotion_code_id:
        try:
            promo_code = _promotion_code_text(action.promotion_code_id)
        except stripe.StripeError as exc:
            # Not applied without its code (that would lose the partner's customer for good):
            # held, and handled again from the admin once Stripe answers.
            return _Result(
                Status.HELD,
                f"The promotion code {action.promotion_code_id} could not be looked up in Stripe "
                f"({type(exc).__name__}: {exc.user_message or exc}); handle this event again once Stripe answers.",
                f"promotion_code:{action.promotion_code_id}",
            )
    if not action.click_id and not promo_code:
        return _Result(
            Status.IGNORED,
            "No aff_click (client_reference_id or metadata.aff_click) and no promotion code.",
            releases=releases,
        )
    email = action.email
    if email:
        try:
            validate_email(email)
        except DjangoValidationError:
            email = None
    data = {
        "customer_id": action.customer_id,
        "click_id": action.click_id[:255] if action.click_id else None,
        "email": email,
    }
    if promo_code:
        data["promo_code"] = promo_code[:255]
    try:
        response = _apply(row, "customer.signed_up", data, at=row.created)
    except (EventBodyError, EventRejected, EventConflict) as exc:
        return _Result(Status.REJECTED, f"Sign-up not applied: {exc.message}", releases=releases)
    result = _outcome(response, row)
    result.releases = releases
    if response.body.get("referral") is None:
        result.status = Status.NOT_REFERRED
        result.note = (
            "Neither the aff_click (a click of an active link inside the attribution window) "
            "nor a promotion code names a partner."
        )
    return result


def _promotion_code_text(promotion_code_id: str) -> str | None:
    """The customer-facing code of a Stripe promotion code, read through the API client (its base
    from STRIPE_API_BASE). Raises ``stripe.StripeError`` when Stripe cannot answer."""
    from commissions.stripe_billing.sync import stripe_client

    promo = stripe_client().v1.promotion_codes.retrieve(promotion_code_id).to_dict()
    code = promo.get("code")
    return code.strip() or None if isinstance(code, str) else None


def _subscription(action: mapping.SubscriptionState, row: StripeEvent) -> _Result:
    if not action.subscription_id or not action.customer_id:
        return _Result(Status.IGNORED, "The subscription names no customer.")
    for price_id, plan in action.prices.items():
        StripePrice.objects.update_or_create(price_id=price_id, defaults={"plan": plan})
    state = StripeSubscription.objects.select_for_update().filter(subscription_id=action.subscription_id).first()
    if state is None:
        state = StripeSubscription(subscription_id=action.subscription_id, state_at=row.created)
    newer = state.pk is None or row.created >= state.state_at
    # An older state arriving late never overwrites a newer one; a deletion is final.
    reopened = state.pk is not None and state.status == "canceled" and not action.ended
    if newer and not reopened:
        state.customer_id = action.customer_id
        state.status = action.status
        state.plan = action.plan or state.plan
        state.seats = action.seats or state.seats
        state.trial_end = action.trial_end or state.trial_end
        state.state_at = row.created
        state.save()
    releases = [f"subscription:{action.subscription_id}"]
    if not action.ended:
        note = "" if action.plan else f"No item of the subscription names a plan ({settings.STRIPE_PLAN_FROM})."
        return _Result(Status.APPLIED, note, releases=releases)
    # A cancellation is applied by _reconcile (after this handler); held while not a referral.
    if not Referral.objects.filter(customer_id=action.customer_id).exists():
        result = _waiting(action.customer_id, what="Cancellation")
        result.releases = releases
        return result
    return _Result(Status.APPLIED, releases=releases)


def _plan_and_seats(action: mapping.InvoicePaid) -> tuple[str | None, int | None]:
    plan = action.plan
    if plan is None and action.price_id:
        plan = StripePrice.objects.filter(price_id=action.price_id).values_list("plan", flat=True).first()
    state = None
    if action.subscription_id:
        state = StripeSubscription.objects.filter(subscription_id=action.subscription_id).first()
    if plan is None and state is not None:
        plan = state.plan or None
    seats = action.seats or (state.seats if state is not None else None)
    return plan, seats


def _record_links(invoice_id: str, refs: tuple[str, ...]) -> list[str]:
    for ref in refs:
        StripePaymentLink.objects.get_or_create(payment_ref=ref, defaults={"invoice_id": invoice_id})
    return [f"payment:{ref}" for ref in refs]


def _amount(minor: int, currency: str) -> Decimal | None:
    """Major units with at most two decimals (the ledger's), or None when not representable."""
    amount = mapping.major_units(minor, currency)
    if amount != amount.quantize(Decimal("0.01")) or amount >= Decimal("1e10"):
        return None
    return amount


def _other_currency(currency: str, what: str) -> _Result | None:
    if currency == settings.PROGRAM_CURRENCY:
        return None
    return _Result(
        Status.REJECTED,
        f"{what} in {currency or 'an unknown currency'}: the program pays commission on "
        f"{settings.PROGRAM_CURRENCY} payments only. Logged, no commission.",
    )


def _invoice_paid(action: mapping.InvoicePaid, row: StripeEvent) -> _Result:
    releases = _record_links(action.invoice_id, action.payment_refs)
    if action.amount <= 0:
        return _Result(
            Status.IGNORED, "Nothing was paid (amount_paid is 0, e.g. a trial's invoice).", releases=releases
        )
    refused = _other_currency(action.currency, "Paid")
    if refused is not None:
        refused.releases = releases
        return refused
    amount = _amount(action.amount, action.currency)
    if amount is None:
        return _Result(Status.REJECTED, f"amount_paid {action.amount} {action.currency} is not a whole cent amount.")
    if not action.customer_id:
        return _Result(Status.IGNORED, "The invoice names no customer.", releases=releases)
    plan, seats = _plan_and_seats(action)
    if plan is None:
        if action.subscription_id:
            return _Result(
                Status.HELD,
                "Waiting for the subscription's customer.subscription.created/updated, whose price names the plan.",
                f"subscription:{action.subscription_id}",
                releases=releases,
            )
        return _Result(Status.REJECTED, f"The invoice's price names no plan A, B or C ({settings.STRIPE_PLAN_FROM}).")
    if not Referral.objects.filter(customer_id=action.customer_id).exists():
        result = _waiting(action.customer_id, what="Payment")
        result.releases = releases
        return result
    data = {
        "payment_id": action.invoice_id,
        "customer_id": action.customer_id,
        "amount": f"{amount:.2f}",
        "currency": action.currency,
        "plan": plan,
        "seats": seats or 1,
    }
    try:
        response = _apply(row, "payment.succeeded", data, at=action.paid_at or row.created)
    except (EventBodyError, EventRejected, EventConflict) as exc:
        return _Result(Status.REJECTED, f"Payment not applied: {exc.message}", releases=releases)
    result = _outcome(response, row)
    if result.status == Status.DUPLICATE:
        result.note = "This invoice's payment is already recorded (earns once)."
    result.releases = [*releases, f"invoice:{action.invoice_id}"]
    return result


def _payment_link(action: mapping.PaymentLink, row: StripeEvent) -> _Result:
    releases = _record_links(action.invoice_id, action.payment_refs)
    return _Result(Status.APPLIED, f"{', '.join(action.payment_refs)} paid {action.invoice_id}.", releases=releases)


def _invoice_seen(invoice_id: str) -> bool:
    """An invoice event of this invoice has been handled (so a missing payment is not late)."""
    return (
        StripeEvent.objects.filter(object_id=invoice_id, type__in=mapping.INVOICE_TYPES)
        .exclude(status__in=(Status.RECEIVED, Status.HELD))
        .exists()
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


def _refunds_settle(*, charge_id: str, invoice_id: str, currency: str) -> _Refunds:
    """Apply the charge's refunds that can be applied now, oldest first. Caller holds the lock of
    the payment's customer."""
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
        # reported exactly this sum.
        if any(total == running and at >= refund.created for total, at in reported):
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
            return _Result(
                Status.HELD,
                f"The refunds of {charge_id} could not be listed in Stripe "
                f"({type(exc).__name__}: {exc.user_message or exc}); handle this event again once Stripe answers.",
                key,
            )
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


def stripe_refunds_waited(*, now: datetime | None = None) -> int:
    """Handle again the ``charge.refunded`` events that waited STRIPE_REFUND_WAIT_SECONDS for
    their refunds (beat). Returns how many were."""
    now = now or timezone.now()
    token = _clock.set(now)
    try:
        return _refunds_waited(now)
    finally:
        _clock.reset(token)


def _refunds_waited(now: datetime) -> int:
    pks = list(
        StripeEvent.objects.filter(
            status=Status.HELD,
            type="charge.refunded",
            waiting_for__startswith="refunds:",
            received_at__lte=now - timedelta(seconds=settings.STRIPE_REFUND_WAIT_SECONDS),
        ).values_list("pk", flat=True)
    )
    return stripe_events_handle_again(pks=pks)


def _unused(action: mapping.Unused, row: StripeEvent) -> _Result:
    return _Result(Status.IGNORED, action.reason)


_HANDLERS = {
    mapping.SignUp: _sign_up,
    mapping.SubscriptionState: _subscription,
    mapping.InvoicePaid: _invoice_paid,
    mapping.PaymentLink: _payment_link,
    mapping.ChargeRefunded: _charge_refunded,
    mapping.RefundSeen: _refund_seen,
    mapping.Unused: _unused,
}


# --- reconciling what depends on order ------------------------------------------------------


def _reconcile(customer_id: str, row: StripeEvent) -> None:
    """Bring the referral in line with the latest subscription state and the latest payment,
    whatever order their events came in. Caller holds the customer's lock."""
    referral = Referral.objects.select_for_update(of=("self",)).filter(customer_id=customer_id).first()
    if referral is None:
        return
    states = list(StripeSubscription.objects.filter(customer_id=customer_id).order_by("-state_at", "-id"))
    if not states:
        return
    latest = states[0]
    last_payment = referral.payments.order_by("-paid_at", "-id").first()
    state_is_newer = last_payment is None or latest.state_at >= last_payment.paid_at
    changed: list[str] = []
    if (
        state_is_newer
        and latest.plan
        and (referral.plan, referral.seats) != (latest.plan, latest.seats or referral.seats)
    ):
        referral.plan, referral.seats = latest.plan, latest.seats or referral.seats
        changed += ["plan", "seats"]
    elif not state_is_newer and (referral.plan, referral.seats) != (last_payment.plan, last_payment.seats):
        referral.plan, referral.seats = last_payment.plan, last_payment.seats
        changed += ["plan", "seats"]
    # "New subscription" is the first payment by time, not by arrival: a renewal delivered
    # before the first invoice moves the referral's first payment (and its rollup count) back.
    first_paid = referral.payments.order_by("paid_at", "id").values_list("paid_at", flat=True).first()
    if first_paid is not None and referral.first_paid_at is not None and first_paid != referral.first_paid_at:
        counted = {"link_id": referral.link_id, "partner_id": referral.partner_id}
        # A decrement is an UPDATE: rollup_add's INSERT would check the -1 against the table.
        DailyLinkStats.objects.filter(link_id=referral.link_id, day=program_day(referral.first_paid_at)).update(
            new_subscriptions=F("new_subscriptions") - 1
        )
        rollup_add(**counted, day=program_day(first_paid), new_subscriptions=1)
        referral.first_paid_at = first_paid
        changed.append("first_paid_at")
    # Stripe's trial end, whatever the referral's status now (so the order of events cannot
    # decide whether it was recorded); a trial that ends before the sign-up keeps the link's.
    if (
        latest.trial_end is not None
        and latest.trial_end > referral.signed_up_at
        and latest.trial_end != referral.trial_ends_at
    ):
        referral.trial_ends_at = latest.trial_end
        changed.append("trial_ends_at")
    if changed:
        referral.save(update_fields=changed)
    ended = all(state.status in ("canceled", "incomplete_expired") for state in states)
    if ended and referral.status != Referral.Status.CANCELLED and state_is_newer:
        _cancel(referral, latest, row)


def _cancel(referral: Referral, state: StripeSubscription, row: StripeEvent) -> None:
    deletion = (
        StripeEvent.objects.filter(object_id=state.subscription_id, type="customer.subscription.deleted")
        .order_by("created", "id")
        .first()
    )
    source = deletion or row
    # A cancellation undone by a payment that was delivered after it is applied again: one
    # derived event per payment count, so a replay of the same situation changes nothing.
    suffix = f":cancel:{referral.payments.count()}"
    try:
        response = _apply(
            source, "subscription.cancelled", {"customer_id": referral.customer_id}, at=state.state_at, suffix=suffix
        )
    except (EventBodyError, EventRejected, EventConflict) as exc:  # pragma: no cover - the data is ours
        logger.error("Cancellation of %s not applied: %s", referral.customer_id, exc.message)
        return
    if response.status == 201 and source.pk != row.pk:
        StripeEvent.objects.filter(pk=source.pk).update(
            merchant_event_ids=[*source.merchant_event_ids, f"stripe:{source.stripe_id}{suffix}"]
        )
    elif response.status == 201:
        row.merchant_event_ids = [*row.merchant_event_ids, f"stripe:{row.stripe_id}{suffix}"]
