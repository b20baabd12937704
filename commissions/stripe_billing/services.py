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

Where the parts live: the handlers of sign-ups, subscriptions and payments in handlers.py, of
refunds in refunds.py, the reconciling in reconcile.py, and what they share (a handler's result,
the derived events, the customer's lock) in derived.py.
"""

from __future__ import annotations

import json
from collections import deque
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from commissions.stripe_billing import mapping
from commissions.stripe_billing.derived import Status, _lock_customer
from commissions.stripe_billing.handlers import _invoice_paid, _payment_link, _sign_up, _subscription, _unused
from commissions.stripe_billing.models import StripeEvent
from commissions.stripe_billing.reconcile import _reconcile
from commissions.stripe_billing.refunds import _charge_refunded, _clock, _refund_seen

# Events waiting on a key are handled again when it is satisfied: held ones, and not-referred
# ones (a customer referred later by another checkout or customer event).
_REHANDLED = (Status.HELD, Status.NOT_REFERRED)
# A chain of releases is short (sign-up -> invoice -> refund); this bounds a pathological one.
_MAX_HANDLED_PER_DELIVERY = 10_000


class StripePayloadError(ValueError):
    """A verified body that is not a Stripe event (no id, type, created or data.object)."""


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


def stripe_refunds_waited(*, now: datetime | None = None) -> int:
    """Handle again the ``charge.refunded`` events that waited STRIPE_REFUND_WAIT_SECONDS for
    their refunds, and the refund events that waited as long for their ``charge.refunded``
    (beat). Returns how many were."""
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
            type__in=("charge.refunded", *mapping.REFUND_TYPES),
            waiting_for__startswith="refunds:",
            received_at__lte=now - timedelta(seconds=settings.STRIPE_REFUND_WAIT_SECONDS),
        ).values_list("pk", flat=True)
    )
    return stripe_events_handle_again(pks=pks)


_HANDLERS = {
    mapping.SignUp: _sign_up,
    mapping.SubscriptionState: _subscription,
    mapping.InvoicePaid: _invoice_paid,
    mapping.PaymentLink: _payment_link,
    mapping.ChargeRefunded: _charge_refunded,
    mapping.RefundSeen: _refund_seen,
    mapping.Unused: _unused,
}
