"""Reconciling what depends on order: a referral's plan, seats, trial end, first payment and
cancellation settled from the latest subscription state and payment times."""

from __future__ import annotations

import logging

from django.db.models import F

from commissions.events import EventBodyError
from commissions.models import Referral
from commissions.services import EventConflict, EventRejected
from commissions.stripe_billing.derived import _apply
from commissions.stripe_billing.models import (
    StripeEvent,
    StripeSubscription,
)
from tracking.models import DailyLinkStats
from tracking.rollups import program_day, rollup_add

logger = logging.getLogger(__name__)

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
