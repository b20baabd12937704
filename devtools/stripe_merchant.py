"""The merchant simulator's Stripe side: the same plan, sent as the Stripe Billing webhooks a
merchant on Stripe would make Stripe send (``manage.py simulate --via stripe``).

Each merchant event of the plan becomes what Stripe sends for it, signed with
STRIPE_WEBHOOK_SECRET as Stripe signs: a sign-up is a ``checkout.session.completed`` carrying the
visitor's ``aff_click`` in ``client_reference_id``; a payment is the subscription's
``customer.subscription.updated`` (its price's ``lookup_key`` names the plan, its quantity the
seats), the ``invoice.paid`` (the invoice id is the plan's payment id, so both paths record the
same payments) and the ``invoice_payment.paid`` linking the invoice to its payment intent; a
refund is ``refund.created`` (the refund itself) and ``charge.refunded`` (the charge's cumulative
``amount_refunded``), as Stripe sends them; a cancellation is
``customer.subscription.deleted``. Objects are in the current API's shapes, amounts in the
currency's minor unit.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

WEBHOOK_PATH = "/api/v1/integrations/stripe"
API_VERSION = "2025-03-31.basil"


def stripe_signature(body: bytes, *, secret: str, timestamp: int) -> str:
    """The ``Stripe-Signature`` header: HMAC-SHA256 over "<t>.<raw body>", as Stripe signs."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


class StripeMerchant:
    """Turns the plan's merchant events into Stripe events (stateful: cumulative refunds,
    subscriptions ended and started again)."""

    def __init__(self, *, currency: str) -> None:
        self.currency = currency.lower()
        self.refunded: dict[str, int] = defaultdict(int)  # payment id -> cumulative minor units
        self.amounts: dict[str, int] = {}
        self.customers: dict[str, str] = {}  # payment id -> customer id
        self.generation: dict[str, int] = defaultdict(int)  # customer -> subscriptions ended so far

    def _minor(self, amount: str) -> int:
        from commissions.stripe_billing.mapping import exponent

        return int(Decimal(amount).scaleb(exponent(self.currency)))

    def _sub(self, customer: str) -> str:
        return f"sub_{customer}_{self.generation[customer]}"

    @staticmethod
    def _event(event_id: str, type_: str, obj: dict[str, Any], at: int) -> dict[str, Any]:
        return {
            "id": event_id,
            "object": "event",
            "api_version": API_VERSION,
            "created": at,
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": type_,
            "data": {"object": obj},
        }

    def events(self, *, event_id: str, type_: str, data: dict[str, Any], moment: datetime) -> list[dict[str, Any]]:
        at = int(moment.astimezone(UTC).timestamp())
        if type_ == "customer.signed_up":
            session = {
                "id": f"cs_{event_id}",
                "object": "checkout.session",
                "mode": "subscription",
                "status": "complete",
                "created": at,
                "customer": data["customer_id"],
                "client_reference_id": data.get("click_id"),
                "customer_details": {"email": data.get("email")},
                "metadata": {},
            }
            return [self._event(event_id, "checkout.session.completed", session, at)]
        if type_ == "payment.succeeded":
            return self._payment(event_id, data, at)
        if type_ == "payment.refunded":
            payment_id = data["payment_id"]
            self.refunded[payment_id] += self._minor(data["amount"])
            charge = {
                "id": f"ch_{payment_id}",
                "object": "charge",
                "amount": self.amounts.get(payment_id, self.refunded[payment_id]),
                "amount_refunded": self.refunded[payment_id],
                "currency": self.currency,
                "customer": self.customers.get(payment_id),
                "payment_intent": f"pi_{payment_id}",
                "refunded": self.refunded[payment_id] == self.amounts.get(payment_id),
                "created": at,
            }
            refund = {
                "id": f"re_{event_id}",
                "object": "refund",
                "amount": self._minor(data["amount"]),
                "charge": charge["id"],
                "payment_intent": charge["payment_intent"],
                "currency": self.currency,
                "status": "succeeded",
                "created": at,
            }
            # Stripe sends both: the refund itself, and the charge with its cumulative amount.
            return [
                self._event(f"{event_id}_re", "refund.created", refund, at),
                self._event(event_id, "charge.refunded", charge, at),
            ]
        if type_ == "subscription.cancelled":
            customer = data["customer_id"]
            subscription = self._subscription(customer, status="canceled", plan=None, seats=None, at=at)
            self.generation[customer] += 1
            return [self._event(event_id, "customer.subscription.deleted", subscription, at)]
        return []

    def _subscription(self, customer: str, *, status: str, plan: str | None, seats: int | None, at: int) -> dict:
        items = []
        if plan is not None:
            price = {"id": f"price_{plan}", "object": "price", "lookup_key": plan, "metadata": {"plan": plan}}
            items = [{"id": f"si_{customer}", "object": "subscription_item", "price": price, "quantity": seats}]
        return {
            "id": self._sub(customer),
            "object": "subscription",
            "customer": customer,
            "status": status,
            "currency": self.currency,
            "items": {"object": "list", "data": items, "has_more": False},
            "trial_end": None,
            "created": at,
        }

    def _payment(self, event_id: str, data: dict[str, Any], at: int) -> list[dict[str, Any]]:
        payment_id, customer, plan, seats = data["payment_id"], data["customer_id"], data["plan"], data["seats"]
        amount = self._minor(data["amount"])
        self.amounts[payment_id] = amount
        self.customers[payment_id] = customer
        sub = self._sub(customer)
        subscription = self._subscription(customer, status="active", plan=plan, seats=seats, at=at)
        line = {
            "id": f"il_{payment_id}",
            "object": "line_item",
            "amount": amount,
            "currency": self.currency,
            "quantity": seats,
            "period": {"start": at, "end": at},
            "parent": {
                "type": "subscription_item_details",
                "subscription_item_details": {
                    "subscription": sub,
                    "subscription_item": f"si_{customer}",
                    "proration": False,
                },
            },
            "pricing": {"type": "price_details", "price_details": {"price": f"price_{plan}", "product": "prod_demo"}},
        }
        invoice = {
            "id": payment_id,
            "object": "invoice",
            "customer": customer,
            "currency": self.currency,
            "amount_paid": amount,
            "status": "paid",
            "created": at,
            "status_transitions": {"paid_at": at},
            "lines": {"object": "list", "data": [line], "has_more": False},
            "parent": {"type": "subscription_details", "subscription_details": {"subscription": sub, "metadata": {}}},
        }
        invoice_payment = {
            "id": f"inpay_{payment_id}",
            "object": "invoice_payment",
            "invoice": payment_id,
            "amount_paid": amount,
            "currency": self.currency,
            "status": "paid",
            "created": at,
            "payment": {"type": "payment_intent", "payment_intent": f"pi_{payment_id}"},
        }
        return [
            self._event(f"{event_id}_sub", "customer.subscription.updated", subscription, at),
            self._event(event_id, "invoice.paid", invoice, at),
            self._event(f"{event_id}_link", "invoice_payment.paid", invoice_payment, at),
        ]

    @staticmethod
    def body(event: dict[str, Any]) -> bytes:
        return json.dumps(event, separators=(",", ":")).encode()

    @staticmethod
    def signature(body: bytes, *, secret: str) -> str:
        return stripe_signature(body, secret=secret, timestamp=int(time.time()))
