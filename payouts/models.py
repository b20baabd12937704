from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Upper

from partners.models import Partner


def new_sender_batch_id() -> str:
    """A ``sender_batch_id`` no other installation will ever use: PayPal refuses a reused one for
    30 days, so a restored or second database must not repeat ids ("payout 7" is not unique)."""
    return f"ppanel-{secrets.token_hex(12)}"


class Payout(models.Model):
    class Status(models.TextChoices):
        # The transitions between these live in payouts/states.py, and only there.
        PENDING = "pending", "Requested"
        APPROVED = "approved", "Approved"
        SENDING = "sending", "Sending"  # an attempt to hand it to PayPal is under way or scheduled
        UNKNOWN = "unknown", "Unknown outcome"  # an answer was lost: PayPal may have it
        ATTENTION = "attention", "Needs attention"  # staff must look (reason in attention_reason)
        SENT = "sent", "Sent"  # PayPal has the batch (paypal_batch_id); waiting for the item's outcome
        PAID = "paid", "Paid"
        REJECTED = "rejected", "Rejected"
        FAILED = "failed", "Failed"  # PayPal did not pay it: the amount is back in the balance
        RETURNED = "returned", "Returned"  # paid or sent, then returned/reversed/refunded/blocked

    # Statuses that hold the money: they count against the balance (docs/reference.md's "pending,
    # approved, processing": sending, unknown, attention and sent are the stages of processing).
    OPEN_STATUSES = (
        Status.PENDING,
        Status.APPROVED,
        Status.SENDING,
        Status.UNKNOWN,
        Status.ATTENTION,
        Status.SENT,
    )
    COUNTED_STATUSES = (*OPEN_STATUSES, Status.PAID)
    # Stages after approval where the money may be on its way: never failed automatically once
    # ``outcome_unknown`` is set.
    IN_FLIGHT_STATUSES = (Status.SENDING, Status.UNKNOWN, Status.ATTENTION, Status.SENT)

    class Method(models.TextChoices):
        PAYPAL = "paypal", "PayPal"

    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, related_name="payouts")
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3)
    method = models.CharField(max_length=20, choices=Method.choices, default=Method.PAYPAL)
    paypal_email = models.EmailField(max_length=254)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    # Stable across every retry of this payout, unique across installations.
    sender_batch_id = models.CharField(max_length=64, unique=True, default=new_sender_batch_id, editable=False)
    requested_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    rejection_reason = models.TextField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    paypal_batch_id = models.CharField(max_length=64, blank=True)
    paypal_item_id = models.CharField(max_length=64, blank=True)
    paypal_transaction_id = models.CharField(max_length=64, blank=True)
    failure_reason = models.TextField(blank=True)
    send_attempts = models.PositiveSmallIntegerField(default=0)
    # Set once any attempt's answer was lost (timeout, 5xx, unreadable, a worker that died):
    # PayPal may have the batch, so the payout is never failed or returned automatically again.
    outcome_unknown = models.BooleanField(default=False)
    attempt_started_at = models.DateTimeField(null=True, blank=True)  # an attempt in flight
    next_action_at = models.DateTimeField(null=True, blank=True)  # when the periodic job looks again
    checked_at = models.DateTimeField(null=True, blank=True)  # last time PayPal was asked
    attention_reason = models.TextField(blank=True)  # for staff: why it waits for them
    paypal_item_status = models.CharField(max_length=20, blank=True)  # PayPal's transaction_status
    returned_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-requested_at", "-id"]
        permissions = [("approve_payout", "Can approve or reject payouts")]
        constraints = [
            # At most one open payout per partner, whatever the application code does.
            models.UniqueConstraint(
                fields=["partner"],
                condition=Q(status__in=["pending", "approved", "sending", "unknown", "attention", "sent"]),
                name="payout_one_open_per_partner",
            ),
            # A payout whose batch PayPal may have is never failed or returned by the code alone:
            # staff marking it failed clear the flag in the same statement (payouts/states.py).
            models.CheckConstraint(
                condition=~Q(status="failed") | Q(outcome_unknown=False), name="payout_failed_only_when_known"
            ),
            models.CheckConstraint(condition=Q(amount__gt=0), name="payout_amount_positive"),
            models.CheckConstraint(
                condition=~Q(status="rejected") | ~Q(rejection_reason=""), name="payout_rejection_has_reason"
            ),
        ]
        indexes = [
            models.Index(fields=["partner", "status"], name="payout_partner_status"),
            models.Index(fields=["status", "requested_at"], name="payout_status_requested"),
            # The periodic job's "what is due" query.
            models.Index(
                fields=["next_action_at"],
                condition=Q(next_action_at__isnull=False),
                name="payout_next_action_due",
            ),
            # The admin changelist at merchant scale: its order, and its search by PayPal email
            # (iexact compares UPPER()) and batch id, each an index lookup.
            models.Index(fields=["requested_at", "id"], name="payout_requested_id"),
            models.Index(Upper("paypal_email"), name="payout_paypal_email_upper"),
            models.Index(fields=["paypal_batch_id"], name="payout_paypal_batch"),
        ]

    def __str__(self) -> str:
        return f"Payout #{self.pk} {self.amount} {self.currency} ({self.status})"

    @property
    def unclaimed(self) -> bool:
        return self.status == self.Status.SENT and self.paypal_item_status == "UNCLAIMED"

    @property
    def partner_status(self) -> str:
        """The status in the partner's words. Every stage between approval and PayPal's word is
        "Pending" for the partner: staff see the detail."""
        if self.status == self.Status.PAID:
            return "Paid"
        if self.status == self.Status.REJECTED:
            return "Rejected"
        if self.status == self.Status.FAILED:
            return "Not paid — returned to balance"
        if self.status == self.Status.RETURNED:
            return "Returned by PayPal — back in your balance"
        if self.unclaimed:
            return "Waiting for you to claim it at PayPal"
        return "Pending"

    @property
    def partner_badge(self) -> str:
        """CSS badge suffix for ``partner_status`` (badge-pending, badge-paid, …)."""
        if self.status in (self.Status.PAID, self.Status.REJECTED, self.Status.FAILED):
            return self.status
        if self.status == self.Status.RETURNED:
            return "failed"
        return "pending"


class PayoutAudit(models.Model):
    """Who did what to a payout, and when. Written by the services only; read-only in the admin."""

    class Action(models.TextChoices):
        # A transition of payouts/states.py is recorded under its target status; the others are
        # what happened without changing the status.
        REQUESTED = "requested", "Requested"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        SENDING = "sending", "Sending"
        UNKNOWN = "unknown", "Outcome unknown"
        ATTENTION = "attention", "Needs attention"
        SENT = "sent", "Sent to PayPal"
        PAID = "paid", "Paid"
        FAILED = "failed", "Failed"
        RETURNED = "returned", "Returned"
        ATTEMPT = "attempt", "Attempt"
        SEND_RETRY = "send_retry", "Send retried"  # written before the state machine; old rows only
        CHECKED = "checked", "Checked with PayPal"
        STAFF_CHECK = "staff_check", "Staff asked to check with PayPal"
        # Four eyes (payouts/approval.py): the first of two approvals; the payout stays pending.
        APPROVAL_RECORDED = "approval_recorded", "First approval recorded"

    payout = models.ForeignKey(Payout, on_delete=models.PROTECT, related_name="audit")
    action = models.CharField(max_length=20, choices=Action.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    at = models.DateTimeField(auto_now_add=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.payout_id} {self.action}"

    def save(self, *args, **kwargs) -> None:
        # Append-only: a correction is a new entry, never an edit of what happened.
        if not self._state.adding:
            raise ValueError("Payout audit entries cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("Payout audit entries cannot be deleted.")


class PayoutApproval(models.Model):
    """One staff member's approval of a payout, made after two-factor verification. A payout
    above PAYOUT_SECOND_APPROVAL_ABOVE is sent only once two different staff members approved
    it (payouts/approval.py). Append-only, like the audit."""

    payout = models.ForeignKey(Payout, on_delete=models.PROTECT, related_name="approvals")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["at", "id"]
        constraints = [
            # Never the same person twice: the second approval must be someone else's.
            models.UniqueConstraint(fields=["payout", "actor"], name="payout_approval_once_per_staff")
        ]

    def __str__(self) -> str:
        return f"{self.payout_id} approved by {self.actor_id}"

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise ValueError("Payout approvals cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("Payout approvals cannot be deleted.")
