from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from partners.models import Partner


class Payout(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        APPROVED = "approved", "Approved"
        PROCESSING = "processing", "Processing"
        PAID = "paid", "Paid"
        REJECTED = "rejected", "Rejected"
        FAILED = "failed", "Failed"

    # Statuses that hold the money: they count against the balance.
    OPEN_STATUSES = (Status.PENDING, Status.APPROVED, Status.PROCESSING)
    COUNTED_STATUSES = (*OPEN_STATUSES, Status.PAID)

    class Method(models.TextChoices):
        PAYPAL = "paypal", "PayPal"

    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, related_name="payouts")
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3)
    method = models.CharField(max_length=20, choices=Method.choices, default=Method.PAYPAL)
    paypal_email = models.EmailField(max_length=254)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
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

    class Meta:
        ordering = ["-requested_at", "-id"]
        permissions = [("approve_payout", "Can approve or reject payouts")]
        constraints = [
            # At most one open payout per partner, whatever the application code does.
            models.UniqueConstraint(
                fields=["partner"],
                condition=Q(status__in=["pending", "approved", "processing"]),
                name="payout_one_open_per_partner",
            ),
            models.CheckConstraint(condition=Q(amount__gt=0), name="payout_amount_positive"),
            models.CheckConstraint(
                condition=~Q(status="rejected") | ~Q(rejection_reason=""), name="payout_rejection_has_reason"
            ),
        ]
        indexes = [
            models.Index(fields=["partner", "status"], name="payout_partner_status"),
            models.Index(fields=["status", "requested_at"], name="payout_status_requested"),
        ]

    def __str__(self) -> str:
        return f"Payout #{self.pk} {self.amount} {self.currency} ({self.status})"

    @property
    def sender_batch_id(self) -> str:
        """Stable per payout: a retry after a timeout reuses it and PayPal refuses a second batch."""
        return f"partnerpanel-payout-{self.pk}"

    @property
    def partner_status(self) -> str:
        """The status in the partner's words: Pending, Paid or Rejected (failed ones were not paid)."""
        if self.status == self.Status.PAID:
            return "Paid"
        if self.status in (self.Status.REJECTED,):
            return "Rejected"
        if self.status == self.Status.FAILED:
            return "Not paid — returned to balance"
        return "Pending"

    @property
    def partner_badge(self) -> str:
        """CSS badge suffix for ``partner_status`` (badge-pending, badge-paid, …)."""
        if self.status in (self.Status.PAID, self.Status.REJECTED, self.Status.FAILED):
            return self.status
        return "pending"


class PayoutAudit(models.Model):
    """Who did what to a payout, and when. Written by the services only; read-only in the admin."""

    class Action(models.TextChoices):
        REQUESTED = "requested", "Requested"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        SENT = "sent", "Sent to PayPal"
        SEND_RETRY = "send_retry", "Send retried"
        PAID = "paid", "Paid"
        FAILED = "failed", "Failed"
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
