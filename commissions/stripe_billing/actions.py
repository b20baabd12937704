"""The actions a Stripe event can mean for the partner program (``mapping.action_for`` makes
them from Stripe's objects; commissions/stripe_billing/handlers.py and refunds.py apply them). They
say what happened, in Stripe's ids and minor units, and nothing about how it is applied."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class SignUp:
    """A customer who may have come through a partner's link."""

    customer_id: str | None
    click_id: str | None
    email: str | None
    # The promotion code the customer entered at checkout: its text when the object is expanded,
    # else only its id (``promo_…``), which the connector looks up through Stripe's API.
    promo_code: str | None = None
    promotion_code_id: str | None = None


@dataclass(frozen=True)
class SubscriptionState:
    subscription_id: str
    customer_id: str | None
    status: str
    plan: str | None
    seats: int | None
    trial_end: datetime | None
    prices: dict[str, str]  # price id -> plan, for the prices whose plan the item names

    @property
    def ended(self) -> bool:
        return self.status in ("canceled", "incomplete_expired")


@dataclass(frozen=True)
class InvoicePaid:
    invoice_id: str
    customer_id: str | None
    amount: int  # minor units
    currency: str
    subscription_id: str | None
    price_id: str | None
    plan: str | None  # when the line's price is an expanded object naming it
    seats: int | None
    paid_at: datetime | None
    payment_refs: tuple[str, ...]  # payment intents / charges the invoice names (older shapes, or expanded payments)


@dataclass(frozen=True)
class PaymentLink:
    invoice_id: str
    payment_refs: tuple[str, ...]


@dataclass(frozen=True)
class RefundInfo:
    """One Stripe refund (``re_…``) of a charge."""

    refund_id: str
    charge_id: str | None
    payment_intent: str | None
    amount: int  # minor units
    currency: str
    status: str  # pending, requires_action, succeeded, failed, canceled
    created: datetime | None


@dataclass(frozen=True)
class ChargeRefunded:
    charge_id: str
    customer_id: str | None
    amount_refunded: int  # cumulative, minor units
    currency: str
    invoice_id: str | None  # older shapes only
    payment_refs: tuple[str, ...]  # its payment intent (first, when it has one) and the charge itself
    # The charge's refunds when the object carries their whole list (older API versions, or an
    # endpoint that expands ``refunds``); empty otherwise (the current API's default).
    refunds: tuple[RefundInfo, ...] = ()


@dataclass(frozen=True)
class RefundSeen:
    """``refund.created`` / ``refund.updated`` / ``refund.failed`` / ``charge.refund.updated``."""

    refund: RefundInfo
    customer_id: str | None = None


@dataclass(frozen=True)
class Unused:
    reason: str


Action = SignUp | SubscriptionState | InvoicePaid | PaymentLink | ChargeRefunded | RefundSeen | Unused
