"""The event log, referrals, payments, refunds and the commission ledger in the admin.

All read-only: they are an audit record of what the merchant told us and what it earned.
Nobody adds, edits or deletes them here — corrections are new ledger entries made by the
services, never edits.
"""

from __future__ import annotations

import json

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from commissions.models import AwaitingClick, CommissionEntry, MerchantEvent, Payment, Referral, Refund
from config.admin_readonly import ReadOnlyAdminMixin


class ReadOnlyAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """View only: no add, change or delete, for anyone (superusers included)."""

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields] + list(self.readonly_fields)


@admin.register(MerchantEvent)
class MerchantEventAdmin(ReadOnlyAdmin):
    list_display = ("event_id", "type", "outcome", "response_status", "created", "received_at", "referral_link")
    list_filter = ("type", "outcome", "response_status")
    search_fields = ("=event_id",)
    date_hierarchy = "received_at"
    list_select_related = ("referral",)
    readonly_fields = ("raw_body", "response_json")
    fields = (
        "event_id",
        "type",
        "outcome",
        "created",
        "received_at",
        "referral",
        "awaiting",
        "raw_body",
        "body_sha256",
        "response_status",
        "response_json",
    )

    @admin.display(description="referral")
    def referral_link(self, obj: MerchantEvent):
        if obj.referral_id is None:
            return "—"
        url = reverse("admin:commissions_referral_change", args=[obj.referral_id])
        return format_html('<a href="{}">#{}</a>', url, obj.referral_id)

    @admin.display(description="raw body")
    def raw_body(self, obj: MerchantEvent):
        return format_html("<pre>{}</pre>", obj.body)

    @admin.display(description="response body")
    def response_json(self, obj: MerchantEvent):
        return format_html("<pre>{}</pre>", json.dumps(obj.response_body, indent=2, ensure_ascii=False))


@admin.register(Referral)
class ReferralAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "customer_id",
        "partner",
        "status",
        "self_referral_flag",
        "signed_up_at",
        "trial_ends_at",
        "plan",
        "seats",
        "total_paid",
        "total_commission",
    )
    list_filter = ("is_self_referral", "status", "trial_days")
    search_fields = ("=customer_id", "email", "partner__referral_code", "partner__user__email")
    list_select_related = ("partner__user",)
    date_hierarchy = "signed_up_at"

    @admin.display(description="self-referral", ordering="is_self_referral")
    def self_referral_flag(self, obj: Referral):
        if obj.is_self_referral:
            return format_html("<strong>{}</strong>", "⚠ SELF-REFERRAL")
        return "—"


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    list_display = (
        "payment_id",
        "referral",
        "partner",
        "plan",
        "seats",
        "amount",
        "refunded_amount",
        "currency",
        "paid_at",
    )
    list_filter = ("plan", "currency")
    search_fields = ("=payment_id", "=referral__customer_id", "partner__referral_code")
    list_select_related = ("referral", "partner__user")
    date_hierarchy = "paid_at"


@admin.register(Refund)
class RefundAdmin(ReadOnlyAdmin):
    list_display = ("id", "payment", "amount", "refunded_at")
    search_fields = ("=payment__payment_id",)
    list_select_related = ("payment",)
    date_hierarchy = "refunded_at"


@admin.register(CommissionEntry)
class CommissionEntryAdmin(ReadOnlyAdmin):
    list_display = ("id", "partner", "kind", "amount", "earned_at", "payment", "refund", "referral", "created_at")
    list_filter = ("kind",)
    search_fields = ("partner__referral_code", "partner__user__email", "=payment__payment_id")
    list_select_related = ("partner__user", "payment", "refund", "referral")
    date_hierarchy = "earned_at"


@admin.register(AwaitingClick)
class AwaitingClickAdmin(ReadOnlyAdmin):
    """Sign-ups that waited (or still wait) for a click still in the click buffer; resolved ones
    show when their click landed."""

    list_display = ("customer_id", "click_id", "created_at", "resolved_at")
    list_filter = (("resolved_at", admin.EmptyFieldListFilter),)
    search_fields = ("=customer_id", "=click_id")
    list_select_related = ("event",)
