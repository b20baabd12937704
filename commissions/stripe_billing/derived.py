"""What a Stripe event's handler answers, and the derived events it applies through the events
API's service (``commissions.services.event_receive``): shared by the handlers
(commissions/stripe_billing/handlers.py, refunds.py and reconcile.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import stripe
from django.conf import settings

from commissions.events import ParsedEvent, canonical_sha256
from commissions.schemas import EVENT_ADAPTER
from commissions.services import EventResponse, event_receive
from commissions.stripe_billing import mapping
from commissions.stripe_billing.models import (
    StripeCustomer,
    StripeEvent,
)

Status = StripeEvent.Status


@dataclass
class _Result:
    status: str
    note: str = ""
    waiting_for: str = ""
    merchant_event_ids: list[str] = field(default_factory=list)
    releases: list[str] = field(default_factory=list)  # keys now satisfied


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


def _waiting(customer_id: str, *, what: str, releases: list[str] | None = None) -> _Result:
    """A payment, refund or cancellation of a customer who is not a referral: held until a
    checkout or customer event of the customer has been handled, then logged only."""
    seen = StripeCustomer.objects.filter(customer_id=customer_id, signup_seen=True).exists()
    if seen:
        note = f"{what}: the customer is not a referral."
        return _Result(Status.NOT_REFERRED, note, f"customer:{customer_id}", releases=releases or [])
    return _Result(
        Status.HELD,
        f"{what}: waiting for the customer's checkout.session.completed or customer.created.",
        f"customer:{customer_id}",
        releases=releases or [],
    )


def _stripe_unreachable(what: str, exc: stripe.StripeError, key: str) -> _Result:
    """Held on ``key`` while Stripe's API does not answer (applying the event without what it
    was asked could lose a partner's money for good): handled again from the admin."""
    return _Result(
        Status.HELD,
        f"{what} ({type(exc).__name__}: {exc.user_message or exc}); handle this event again once Stripe answers.",
        key,
    )


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


def _invoice_seen(invoice_id: str) -> bool:
    """An invoice event of this invoice has been handled (so a missing payment is not late)."""
    return (
        StripeEvent.objects.filter(object_id=invoice_id, type__in=mapping.INVOICE_TYPES)
        .exclude(status__in=(Status.RECEIVED, Status.HELD))
        .exists()
    )
