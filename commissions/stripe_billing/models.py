"""What the Stripe Billing connector keeps: every verified Stripe event (the Stripe event log),
and the few facts later events need that a single event does not carry (a customer's lock row,
subscriptions' latest state, prices' plans, which payment belongs to which invoice).

The money itself is never here: payments, refunds and the ledger are the commissions app's,
written through its services (commissions/stripe_billing/services.py).
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q


class StripeEvent(models.Model):
    """One verified Stripe event (or one object ``manage.py stripe_sync`` found), stored before it
    is handled, unique on Stripe's event id: a redelivery finds the row and changes nothing."""

    class Status(models.TextChoices):
        RECEIVED = "received", "Received, not handled yet"
        APPLIED = "applied", "Applied"
        DUPLICATE = "duplicate", "Already known (no change)"
        HELD = "held", "Held: waiting for a prerequisite"
        NOT_REFERRED = "not_referred", "Not a referral (logged only)"
        IGNORED = "ignored", "Not used (logged only)"
        REJECTED = "rejected", "Not applied (see the note)"

    class Source(models.TextChoices):
        WEBHOOK = "webhook", "Webhook"
        SYNC = "sync", "stripe_sync"

    stripe_id = models.CharField(max_length=255, unique=True, help_text="Stripe's event id (sync: sync:<object>).")
    type = models.CharField(max_length=100)
    api_version = models.CharField(max_length=40, blank=True)
    livemode = models.BooleanField(default=False)
    created = models.DateTimeField(help_text="When Stripe created the event.")
    received_at = models.DateTimeField(auto_now_add=True)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.WEBHOOK)
    payload = models.JSONField(help_text="The event as Stripe sent it.")
    object_id = models.CharField(max_length=255, blank=True, help_text="data.object.id")
    customer_id = models.CharField(max_length=255, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.RECEIVED)
    # What a held (or not-referred) event waits for: "customer:<id>", "invoice:<id>",
    # "payment:<payment intent or charge id>" or "subscription:<id>". When that arrives, the
    # event is handled again.
    waiting_for = models.CharField(max_length=300, blank=True)
    note = models.TextField(blank=True)
    handled_at = models.DateTimeField(null=True, blank=True)
    # The ids of the merchant events (commissions' event log) this event was applied as.
    merchant_event_ids = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [
            models.Index(fields=["waiting_for"], condition=~Q(waiting_for=""), name="stripe_event_waiting"),
            models.Index(fields=["status", "received_at"], name="stripe_event_status"),
            models.Index(fields=["customer_id", "created"], name="stripe_event_customer"),
            models.Index(fields=["object_id"], name="stripe_event_object"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.stripe_id}"


class StripeCustomer(models.Model):
    """A Stripe customer the connector has heard of. Its row is locked while any event of the
    customer is handled, so that an invoice and the checkout that refers its customer, arriving
    at once, cannot both miss each other."""

    customer_id = models.CharField(max_length=255, unique=True)
    # A checkout or customer event of this customer has been handled: a payment of a customer
    # who is still not a referral then is "not referred" rather than "held".
    signup_seen = models.BooleanField(default=False)

    def __str__(self) -> str:
        return self.customer_id


class StripeSubscription(models.Model):
    """The latest known state of a Stripe subscription (events may arrive in any order: an older
    state never overwrites a newer one)."""

    subscription_id = models.CharField(max_length=255, unique=True)
    customer_id = models.CharField(max_length=255, db_index=True)
    status = models.CharField(max_length=30)
    plan = models.CharField(max_length=1, blank=True)
    seats = models.PositiveIntegerField(null=True, blank=True)
    trial_end = models.DateTimeField(null=True, blank=True)
    # The Stripe event time of the state kept here.
    state_at = models.DateTimeField()

    def __str__(self) -> str:
        return self.subscription_id


class StripePrice(models.Model):
    """A price's plan, learned from the subscriptions that use it (the current API's invoice lines
    name their price by id only)."""

    price_id = models.CharField(max_length=255, unique=True)
    plan = models.CharField(max_length=1)

    def __str__(self) -> str:
        return f"{self.price_id} -> {self.plan}"


class StripePaymentLink(models.Model):
    """Which invoice a payment intent or charge paid: the current API names the link only in
    ``invoice_payment`` objects, older ones in ``invoice.charge`` / ``charge.invoice``."""

    payment_ref = models.CharField(max_length=255, unique=True, help_text="pi_… or ch_…")
    invoice_id = models.CharField(max_length=255)

    def __str__(self) -> str:
        return f"{self.payment_ref} -> {self.invoice_id}"


class StripeRefund(models.Model):
    """One Stripe refund of a charge, as the refund events, the charge's ``refunds`` list (older
    API versions) or the API told it. Each is applied once, as its own ``payment.refunded`` dated
    at its own creation, in the order Stripe created them, whatever order they were heard of in."""

    refund_id = models.CharField(max_length=255, unique=True)
    charge_id = models.CharField(max_length=255, db_index=True)
    payment_intent = models.CharField(max_length=255, blank=True)
    amount = models.BigIntegerField(help_text="Minor units of the currency.")
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=20, blank=True)
    created = models.DateTimeField(help_text="When Stripe created the refund.")
    # The Stripe time of the state kept here (an older state arriving late never overwrites it).
    state_at = models.DateTimeField()
    # Applied to the ledger (or found already refunded through the events API): never again.
    applied = models.BooleanField(default=False)

    class Meta:
        constraints = [
            # Refunds are positive amounts: the last line of defence against a bad object.
            models.CheckConstraint(condition=Q(amount__gt=0), name="stripe_refund_amount_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.refund_id} ({self.charge_id})"
