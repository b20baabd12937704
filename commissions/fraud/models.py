from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from commissions.models import CommissionEntry, Referral
from partners.models import Partner


class FraudFlag(models.Model):
    """A rule's finding about a partner (or one of its referrals), with the evidence staff need
    to judge it. Rules run again and again: ``key`` makes each finding one row."""

    class Rule(models.TextChoices):
        SELF_REFERRAL = "self_referral", "Self-referral"
        SIGNUPS_ONE_VISITOR = "signups_one_visitor", "Many sign-ups from one visitor or address"
        CLICK_BURST = "click_burst", "Click burst from one visitor"
        SHARED_PAYPAL = "shared_paypal", "One PayPal email on several partners"
        PAY_REFUND = "pay_refund", "Referral pays and refunds repeatedly"
        HIGH_CONVERSION = "high_conversion", "Conversion far above the program's"

    class Status(models.TextChoices):
        OPEN = "open", "Open (payouts wait)"
        DISMISSED = "dismissed", "Dismissed (not fraud)"
        CONFIRMED = "confirmed", "Confirmed (fraud)"

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="fraud_flags")
    referral = models.ForeignKey(Referral, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    rule = models.CharField(max_length=30, choices=Rule.choices)
    key = models.CharField(max_length=200, help_text="What the finding is about, so a rule run twice flags once.")
    evidence = models.JSONField(default=dict)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(auto_now_add=True)
    reviewed_at = models.DateTimeField(null=True, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    review_note = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["partner", "rule", "key"], name="fraud_flag_once_per_finding"),
        ]
        indexes = [models.Index(fields=["partner", "status"], name="fraud_flag_partner_status")]

    def __str__(self) -> str:
        return f"{self.get_rule_display()} · partner {self.partner_id}"


class CommissionVoid(models.Model):
    """Staff voided a commission: the ledger's void entry, who, why. Append-only; the partner
    sees the reason beside the entry."""

    entry = models.OneToOneField(CommissionEntry, on_delete=models.PROTECT, related_name="void_record")
    commission = models.ForeignKey(CommissionEntry, on_delete=models.PROTECT, related_name="+")
    reason = models.TextField()
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField(auto_now_add=True)
    flag = models.ForeignKey(FraudFlag, null=True, blank=True, on_delete=models.PROTECT, related_name="voids")

    class Meta:
        ordering = ["-at"]
        constraints = [models.CheckConstraint(condition=~Q(reason=""), name="commission_void_has_reason")]

    def __str__(self) -> str:
        return f"void of entry {self.commission_id}"

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise ValueError("Voids cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("Voids cannot be deleted.")
