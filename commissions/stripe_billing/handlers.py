"""Handlers of the Stripe events that sign up, describe subscriptions and pay (refunds:
refunds.py): each maps one action (actions.py) to a result, through the events API's service."""

from __future__ import annotations

import stripe
from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email

from commissions.events import EventBodyError
from commissions.models import Referral
from commissions.services import EventConflict, EventRejected
from commissions.stripe_billing import mapping
from commissions.stripe_billing.derived import (
    Status,
    _amount,
    _apply,
    _other_currency,
    _outcome,
    _Result,
    _stripe_unreachable,
    _waiting,
)
from commissions.stripe_billing.models import (
    StripeCustomer,
    StripeEvent,
    StripePaymentLink,
    StripePrice,
    StripeSubscription,
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
            # Not applied without its code (that would lose the partner's customer for good).
            what = f"The promotion code {action.promotion_code_id} could not be looked up in Stripe"
            return _stripe_unreachable(what, exc, f"promotion_code:{action.promotion_code_id}")
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
        return _waiting(action.customer_id, what="Cancellation", releases=releases)
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
        return _waiting(action.customer_id, what="Payment", releases=releases)
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


def _unused(action: mapping.Unused, row: StripeEvent) -> _Result:
    return _Result(Status.IGNORED, action.reason)
