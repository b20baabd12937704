"""Stripe webhooks as Stripe sends them, built from Stripe's own example objects.

``tests/fixtures/stripe/`` holds Stripe's example API objects unchanged (their README and
licence beside them). A ``StripeWorld`` loads copies and sets the fields one consistent scenario
needs (ids that refer to each other, amounts, times), in the current API's shapes; ``sign`` makes
the ``Stripe-Signature`` header exactly as Stripe does (HMAC-SHA256 over "<t>.<raw body>").
"""

from __future__ import annotations

import copy
import functools
import hashlib
import hmac
import itertools
import json
import time
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "stripe"
API_VERSION = "2025-03-31.basil"
WEBHOOK_PATH = "/api/v1/integrations/stripe"


@functools.cache
def _load(name: str) -> str:
    return (FIXTURES / f"{name}.json").read_text()


def fixture(name: str) -> dict[str, Any]:
    """A fresh copy of one of Stripe's example objects."""
    return json.loads(_load(name))


def sign(body: bytes, *, secret: str, timestamp: int | None = None) -> str:
    timestamp = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def post(
    client, event: dict, *, secret: str = "whsec_test_secret", timestamp: int | None = None, body: bytes | None = None
):
    body = json.dumps(event).encode() if body is None else body
    return client.post(
        WEBHOOK_PATH,
        data=body,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=sign(body, secret=secret, timestamp=timestamp),
    )


class StripeWorld:
    """Consistent Stripe objects for one merchant account. ``at`` values are Unix seconds."""

    def __init__(self, *, currency: str = "usd", prefix: str = "t") -> None:
        self.currency = currency
        self.prefix = prefix
        self._ids = itertools.count(1)

    def new_id(self, kind: str) -> str:
        return f"{kind}_{self.prefix}{next(self._ids):05d}"

    def event(self, type_: str, obj: dict, *, at: int, event_id: str | None = None) -> dict:
        event = fixture("event")
        event.update(id=event_id or self.new_id("evt"), type=type_, created=at, api_version=API_VERSION)
        event["data"] = {"object": obj}
        return event

    # --- objects ----------------------------------------------------------------------------
    def checkout(
        self,
        *,
        customer: str,
        click_id: str | None,
        email: str = "jane@example.org",
        at: int,
        via_metadata: bool = False,
    ) -> dict:
        session = fixture("checkout.session")
        session.update(id=self.new_id("cs_test"), customer=customer, mode="subscription", status="complete", created=at)
        session["customer_details"]["email"] = email
        session["client_reference_id"] = None if via_metadata else click_id
        session["metadata"] = {"aff_click": click_id} if via_metadata and click_id else {}
        return self.event("checkout.session.completed", session, at=at)

    def customer_created(
        self, *, customer: str, click_id: str | None, at: int, type_: str = "customer.created"
    ) -> dict:
        obj = fixture("customer")
        obj.update(
            id=customer, created=at, email="jane@example.org", metadata={"aff_click": click_id} if click_id else {}
        )
        return self.event(type_, obj, at=at)

    def price(self, *, plan: str, unit_amount: int, price_id: str | None = None, via: str = "lookup_key") -> dict:
        price = fixture("price")
        price.update(id=price_id or f"price_plan_{plan}", currency=self.currency, unit_amount=unit_amount)
        price["unit_amount_decimal"] = str(unit_amount)
        price["lookup_key"] = plan if via == "lookup_key" else None
        price["metadata"] = {"plan": plan} if via == "metadata" else {}
        return price

    def subscription(
        self,
        type_: str,
        *,
        sub: str,
        customer: str,
        price: dict,
        quantity: int,
        status: str,
        at: int,
        trial_end: int | None = None,
    ) -> dict:
        obj = fixture("subscription")
        obj.update(id=sub, customer=customer, status=status, currency=self.currency, created=at, trial_end=trial_end)
        obj["trial_start"] = at if trial_end else None
        obj["cancel_at_period_end"] = False
        obj["cancel_at"] = obj["canceled_at"] = obj["ended_at"] = at if status == "canceled" else None
        item = obj["items"]["data"][0]
        item.update(id=f"si_{sub}", subscription=sub, quantity=quantity, price=copy.deepcopy(price))
        item["plan"]["id"] = price["id"]
        return self.event(type_, obj, at=at)

    def invoice(
        self,
        type_: str,
        *,
        invoice: str,
        customer: str,
        sub: str | None,
        lines: list[tuple[int, str, int, bool]],
        at: int,
        shape: str = "current",
    ) -> dict:
        """``lines``: (amount, price id, quantity, proration) in minor units. ``shape="older"``
        writes the pre-2025 shapes (top-level subscription, the line's expanded price)."""
        obj = fixture("invoice")
        total = sum(line[0] for line in lines)
        obj.update(
            id=invoice,
            customer=customer,
            currency=self.currency,
            amount_due=total,
            amount_paid=total,
            amount_remaining=0,
            amount_overpaid=0,
            status="paid",
            created=at,
            subtotal=total,
            total=total,
            billing_reason="subscription_cycle",
        )
        obj["status_transitions"]["paid_at"] = at
        template = obj["lines"]["data"][0]
        obj["lines"]["data"] = []
        for n, (amount, price_id, quantity, proration) in enumerate(lines):
            line = copy.deepcopy(template)
            line.update(
                id=f"il_{invoice}_{n}", invoice=invoice, amount=amount, currency=self.currency, quantity=quantity
            )
            line["period"] = {"start": at, "end": at + n}
            if shape == "current":
                line["parent"] = {
                    "type": "subscription_item_details",
                    "invoice_item_details": None,
                    "subscription_item_details": {
                        "invoice_item": None,
                        "proration": proration,
                        "proration_details": {"credited_items": None},
                        "subscription": sub,
                        "subscription_item": f"si_{sub}",
                    },
                }
                line["pricing"] = {
                    "type": "price_details",
                    "price_details": {"price": price_id, "product": "prod_1"},
                    "unit_amount_decimal": None,
                }
            else:
                del line["parent"], line["pricing"]
                line.update(type="subscription", subscription=sub, proration=proration)
                line["price"] = self.price(
                    plan=price_id.removeprefix("price_plan_"), unit_amount=amount, price_id=price_id
                )
            obj["lines"]["data"].append(line)
        if shape == "current":
            obj["parent"] = {
                "type": "subscription_details",
                "quote_details": None,
                "subscription_details": {"metadata": {}, "subscription": sub},
            }
        else:
            del obj["parent"]
            obj["subscription"] = sub
        return self.event(type_, obj, at=at)

    def invoice_payment(self, *, invoice: str, payment_intent: str, amount: int, at: int) -> dict:
        obj = fixture("invoice_payment")
        obj.update(
            id=self.new_id("inpay"),
            invoice=invoice,
            amount_paid=amount,
            amount_requested=amount,
            currency=self.currency,
            status="paid",
            created=at,
        )
        obj["payment"] = {"type": "payment_intent", "payment_intent": payment_intent}
        obj["status_transitions"]["paid_at"] = at
        return self.event("invoice_payment.paid", obj, at=at)

    def charge_refunded(
        self,
        *,
        charge: str,
        customer: str,
        payment_intent: str | None,
        amount: int,
        amount_refunded: int,
        at: int,
        invoice: str | None = None,
        refunds: list[dict] | None = None,
    ) -> dict:
        obj = fixture("charge")
        obj.update(
            id=charge,
            customer=customer,
            payment_intent=payment_intent,
            amount=amount,
            amount_captured=amount,
            captured=True,
            amount_refunded=amount_refunded,
            refunded=amount_refunded == amount,
            currency=self.currency,
            created=at,
        )
        if invoice is not None:  # older versions
            obj["invoice"] = invoice
        if refunds is None:  # the current API: a charge no longer lists its refunds
            del obj["refunds"]
        else:  # older versions list them (refund objects as ``refund`` builds them)
            obj["refunds"] = {
                "object": "list",
                "data": refunds,
                "has_more": False,
                "url": f"/v1/charges/{charge}/refunds",
            }
        return self.event("charge.refunded", obj, at=at)

    def refund_object(
        self, *, refund: str, charge: str, payment_intent: str | None, amount: int, at: int, status: str = "succeeded"
    ) -> dict:
        obj = fixture("refund")
        obj.update(
            id=refund, charge=charge, payment_intent=payment_intent, amount=amount, currency=self.currency, created=at
        )
        obj["status"] = status
        return obj

    def refund(self, type_: str = "refund.created", *, at: int, **kwargs) -> dict:
        """A refund event (``refund.created``, ``refund.updated``, ``charge.refund.updated``)."""
        return self.event(type_, self.refund_object(at=kwargs.pop("created", at), **kwargs), at=at)
