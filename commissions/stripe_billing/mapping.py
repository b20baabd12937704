"""Stripe's objects, read: every Stripe shape the connector understands is read here and nowhere
else, in the current API's shapes and, where they differ, the older ones.

``action_for(event_type, obj)`` turns the ``data.object`` of a Stripe event into one of the
small actions of commissions/stripe_billing/actions.py, which say what the event means for the
partner program and nothing about how it is applied (commissions/stripe_billing/services.py and
its handlers apply them through the commissions services).

Shapes that moved between API versions (docs/stripe.md lists them):

* an invoice's subscription: ``parent.subscription_details.subscription`` (2025 "Basil" and
  later) or the top-level ``subscription`` (before);
* an invoice line's price: ``pricing.price_details.price`` (an id; Basil and later) or ``price``
  (an object with its ``lookup_key`` and ``metadata``; before); its subscription and proration
  under ``parent.subscription_item_details`` or at the top level;
* a charge's refunds: listed on the charge (``refunds.data``) before 2022-11-15, not any more
  (refund events carry them one by one; the API lists them);
* which invoice a charge paid: an ``invoice_payment`` object (``invoice_payment.paid`` events,
  the invoice's ``payments`` list) names the invoice and its payment intent or charge (Basil and
  later); before, ``charge.invoice`` and ``invoice.charge`` / ``invoice.payment_intent`` did.

Amounts are integers in the currency's minor unit: ``major_units`` divides by 10 ** exponent
(0 for zero-decimal currencies such as JPY, 3 for BHD, JOD, KWD, OMR and TND, 2 otherwise).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.conf import settings

from commissions.stripe_billing.actions import (
    Action,
    ChargeRefunded,
    InvoicePaid,
    PaymentLink,
    RefundInfo,
    RefundSeen,
    SignUp,
    SubscriptionState,
    Unused,
)

# https://docs.stripe.com/currencies#zero-decimal (ISK, HUF and TWD are two-decimal in the API).
ZERO_DECIMAL_CURRENCIES = frozenset(
    {"BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF"}
)
THREE_DECIMAL_CURRENCIES = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})
PLANS = ("A", "B", "C")


def exponent(currency: str) -> int:
    code = currency.upper()
    if code in ZERO_DECIMAL_CURRENCIES:
        return 0
    if code in THREE_DECIMAL_CURRENCIES:
        return 3
    return 2


def major_units(amount: int, currency: str) -> Decimal:
    """``amount`` minor units as an exact Decimal of major units (no rounding)."""
    return Decimal(int(amount)).scaleb(-exponent(currency))


def moment(value: Any) -> datetime | None:
    """A Stripe timestamp (Unix seconds) as an aware datetime."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return datetime.fromtimestamp(value, tz=UTC)


def _id(value: Any) -> str | None:
    """An id that may be expanded into its object."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list:
    data = _dict(value).get("data")
    return data if isinstance(data, list) else []


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _minor(value: Any) -> int:
    """An amount in minor units, 0 when it is none."""
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def plan_of_price(price: Any) -> str | None:
    """The plan (A, B or C) a price object names in its ``lookup_key`` or ``metadata.plan``
    (the STRIPE_PLAN_FROM setting), or None."""
    price = _dict(price)
    if settings.STRIPE_PLAN_FROM == "metadata":
        value = _dict(price.get("metadata")).get("plan")
    else:
        value = price.get("lookup_key")
    if not isinstance(value, str):
        return None
    value = value.strip().upper()
    return value if value in PLANS else None


SIGNUP_TYPES = ("checkout.session.completed", "customer.created", "customer.updated")
SUBSCRIPTION_TYPES = ("customer.subscription.created", "customer.subscription.updated", "customer.subscription.deleted")
INVOICE_TYPES = ("invoice.paid", "invoice.payment_succeeded")
REFUND_TYPES = ("refund.created", "refund.updated", "refund.failed", "charge.refund.updated")
USED_TYPES = (
    *SIGNUP_TYPES,
    *SUBSCRIPTION_TYPES,
    *INVOICE_TYPES,
    "invoice_payment.paid",
    "charge.refunded",
    *REFUND_TYPES,
)


def _aff_click(metadata: Any) -> str | None:
    value = _dict(metadata).get("aff_click")
    return value.strip() or None if isinstance(value, str) else None


def _promotion_code(session: dict) -> tuple[str | None, str | None]:
    """(the code's text, its id) of the first promotion code a checkout session applied: under
    ``discounts[].promotion_code`` (an id, or the object when expanded), or under
    ``total_details.breakdown.discounts[].discount.promotion_code`` (when the breakdown is expanded)."""
    candidates = [_dict(entry).get("promotion_code") for entry in session.get("discounts") or [] if entry]
    breakdown = _dict(_dict(session.get("total_details")).get("breakdown")).get("discounts")
    if isinstance(breakdown, list):
        candidates += [_dict(_dict(item).get("discount")).get("promotion_code") for item in breakdown]
    for promo in candidates:
        code = _dict(promo).get("code")
        if isinstance(code, str) and code.strip():
            return code.strip(), _id(promo)
        if _id(promo):
            return None, _id(promo)
    return None, None


def _checkout(session: dict) -> SignUp:
    reference = session.get("client_reference_id")
    click = reference.strip() or None if isinstance(reference, str) else None
    email = _dict(session.get("customer_details")).get("email") or session.get("customer_email")
    promo_code, promotion_code_id = _promotion_code(session)
    return SignUp(
        customer_id=_id(session.get("customer")),
        click_id=click or _aff_click(session.get("metadata")),
        email=email if isinstance(email, str) else None,
        promo_code=promo_code,
        promotion_code_id=promotion_code_id,
    )


def _customer(customer: dict) -> SignUp:
    email = customer.get("email")
    return SignUp(
        customer_id=_id(customer),
        click_id=_aff_click(customer.get("metadata")),
        email=email if isinstance(email, str) else None,
    )


def _quantity(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 1 else None


def _subscription(subscription: dict, event_type: str) -> SubscriptionState:
    items = _list(subscription.get("items"))
    prices: dict[str, str] = {}
    plan, seats = None, None
    for item in items:
        price = _dict(item.get("price")) or _dict(item.get("plan"))
        item_plan = plan_of_price(price)
        if item_plan is not None:
            if _id(price):
                prices[_id(price)] = item_plan
            # The first item naming a plan is the subscription's plan; its quantity the seats.
            if plan is None:
                plan, seats = item_plan, _quantity(item.get("quantity"))
    if seats is None and items:
        seats = _quantity(items[0].get("quantity"))
    status = _text(subscription.get("status"))
    if event_type == "customer.subscription.deleted":
        status = "canceled"
    return SubscriptionState(
        subscription_id=_id(subscription) or "",
        customer_id=_id(subscription.get("customer")),
        status=status,
        plan=plan,
        seats=seats,
        trial_end=moment(subscription.get("trial_end")),
        prices=prices,
    )


def _line_details(line: dict) -> tuple[bool, bool, str | None]:
    """(is a subscription line, is a proration, its subscription id), either shape."""
    parent = _dict(line.get("parent"))
    details = _dict(parent.get("subscription_item_details"))
    if parent.get("type") == "subscription_item_details" and details:
        return True, bool(details.get("proration")), _id(details.get("subscription"))
    # Older versions: type "subscription" (or an invoice item of a subscription), proration on the line.
    subscription = _id(line.get("subscription"))
    is_subscription = line.get("type") == "subscription" or subscription is not None
    return is_subscription, bool(line.get("proration")), subscription


def _line_price(line: dict) -> tuple[str | None, str | None]:
    """(price id, plan when the price object is expanded on the line)."""
    price = _dict(line.get("pricing")).get("price_details")
    price = _dict(price).get("price") if price else None
    if price is None:
        price = line.get("price") or line.get("plan")
    return _id(price), plan_of_price(price) if isinstance(price, dict) else None


def _invoice_line(invoice: dict) -> dict | None:
    """The line whose price and quantity are the payment's plan and seats: a subscription line that
    charges something, a regular one before a proration (the latest of them)."""
    lines = [line for line in _list(invoice.get("lines")) if isinstance(line, dict)]
    charged = [line for line in lines if isinstance(line.get("amount"), int) and line["amount"] > 0]
    ranked = sorted(
        charged,
        key=lambda line: (
            _line_details(line)[0],
            not _line_details(line)[1],
            _dict(line.get("period")).get("end") or 0,
        ),
    )
    return ranked[-1] if ranked else (lines[-1] if lines else None)


def _invoice(invoice: dict) -> InvoicePaid:
    subscription = _id(_dict(_dict(invoice.get("parent")).get("subscription_details")).get("subscription"))
    subscription = subscription or _id(invoice.get("subscription"))
    line = _invoice_line(invoice) or {}
    price_id, plan = _line_price(line)
    subscription = subscription or _line_details(line)[2]
    refs = [_id(invoice.get("payment_intent")), _id(invoice.get("charge"))]
    for payment in _list(invoice.get("payments")):  # expanded (stripe_sync asks for it)
        refs.extend(_payment_refs(_dict(payment).get("payment")))
    return InvoicePaid(
        invoice_id=_id(invoice) or "",
        customer_id=_id(invoice.get("customer")),
        amount=_minor(invoice.get("amount_paid")),
        currency=_text(invoice.get("currency")).upper(),
        subscription_id=subscription,
        price_id=price_id,
        plan=plan,
        seats=_quantity(line.get("quantity")),
        paid_at=moment(_dict(invoice.get("status_transitions")).get("paid_at")),
        payment_refs=tuple(ref for ref in refs if ref),
    )


def _payment_refs(payment: Any) -> list[str]:
    payment = _dict(payment)
    return [ref for ref in (_id(payment.get("payment_intent")), _id(payment.get("charge"))) if ref]


def _invoice_payment(invoice_payment: dict) -> PaymentLink | Unused:
    invoice = _id(invoice_payment.get("invoice"))
    refs = tuple(_payment_refs(invoice_payment.get("payment")))
    if invoice is None or not refs:
        return Unused("The invoice payment names no invoice or no payment.")
    return PaymentLink(invoice_id=invoice, payment_refs=refs)


def refund_info(refund: Any) -> RefundInfo | None:
    """A refund object (its charge and payment intent may be expanded), or None without an id."""
    refund = _dict(refund)
    if not _id(refund):
        return None
    return RefundInfo(
        refund_id=_id(refund) or "",
        charge_id=_id(refund.get("charge")),
        payment_intent=_id(refund.get("payment_intent")),
        amount=_minor(refund.get("amount")),
        currency=_text(refund.get("currency")).upper(),
        status=_text(refund.get("status")),
        created=moment(refund.get("created")),
    )


def _charge(charge: dict) -> ChargeRefunded:
    refs = [_id(charge.get("payment_intent")), _id(charge)]
    # The list counts only when it is whole (``has_more`` false) and not empty.
    listed = _dict(charge.get("refunds"))
    infos = [refund_info(item) for item in _list(listed)] if listed.get("has_more") is False else []
    return ChargeRefunded(
        charge_id=_id(charge) or "",
        customer_id=_id(charge.get("customer")),
        amount_refunded=_minor(charge.get("amount_refunded")),
        currency=_text(charge.get("currency")).upper(),
        invoice_id=_id(charge.get("invoice")),
        payment_refs=tuple(ref for ref in refs if ref),
        refunds=tuple(info for info in infos if info is not None),
    )


def _refund(refund: dict) -> RefundSeen | Unused:
    info = refund_info(refund)
    if info is None or not info.charge_id:
        return Unused("The refund names no charge (not a card or bank payment's refund): nothing to reverse.")
    return RefundSeen(refund=info, customer_id=_id(refund.get("customer")))


def action_for(event_type: str, obj: Any) -> Action:
    """What one Stripe event means for the program."""
    obj = _dict(obj)
    if not _id(obj):
        return Unused("The event's data.object has no id.")
    if event_type == "checkout.session.completed":
        return _checkout(obj)
    if event_type in ("customer.created", "customer.updated"):
        return _customer(obj)
    if event_type in SUBSCRIPTION_TYPES:
        return _subscription(obj, event_type)
    if event_type in INVOICE_TYPES:
        return _invoice(obj)
    if event_type == "invoice_payment.paid":
        return _invoice_payment(obj)
    if event_type == "charge.refunded":
        return _charge(obj)
    if event_type in REFUND_TYPES:
        return _refund(obj)
    return Unused(f"{event_type} is not used by the partner program (logged only).")
