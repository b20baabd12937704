"""The event log, referrals, payments, refunds and the commission ledger in the admin.

All read-only: they are an audit record of what the merchant told us and what it earned.
Nobody adds, edits or deletes them here — corrections are new ledger entries made by the
services, never edits.
"""

from __future__ import annotations

import json

from django.contrib import admin
from django.db.models import Q
from django.urls import reverse
from django.utils.html import format_html

from commissions.models import AwaitingClick, CommissionEntry, MerchantEvent, Payment, Referral, Refund
from config.admin_paging import EstimatedCountPaginator
from config.admin_readonly import ReadOnlyAdminMixin
from partners.emails import normalize_email
from partners.models import Partner, User


class ResponseStatusFilter(admin.SimpleListFilter):
    """The events API's answers (201 applied, 200 changed nothing, 409 a reused id), without
    the DISTINCT over the whole event log that a field filter runs on every page."""

    title = "response status"
    parameter_name = "response_status"

    def lookups(self, request, model_admin):
        return [("201", "201 applied"), ("200", "200 no change"), ("409", "409 reused id")]

    def queryset(self, request, queryset):
        if self.value() in {"200", "201", "409"}:
            return queryset.filter(response_status=int(self.value()))
        return queryset


class ReadOnlyAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """View only: no add, change or delete, for anyone (superusers included)."""

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields] + list(self.readonly_fields)


@admin.register(MerchantEvent)
class MerchantEventAdmin(ReadOnlyAdmin):
    list_display = ("event_id", "type", "outcome", "response_status", "created", "received_at", "referral_link")
    # Merchant scale (a million events): no full count, an estimated one past 10,000 rows, date
    # ranges instead of the date hierarchy (its year/month lists are a DISTINCT over every row).
    list_filter = ("type", "outcome", ResponseStatusFilter, ("received_at", admin.DateFieldListFilter))
    search_fields = ("=event_id",)
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    list_per_page = 50
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
    # Millions of rows: see MerchantEventAdmin. Search is exact (an index lookup each), not a
    # substring scan of every entry's partner.
    list_filter = ("kind", ("earned_at", admin.DateFieldListFilter))
    search_fields = ("=partner__referral_code", "=partner__user__email", "=payment__payment_id")
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    list_per_page = 50
    list_select_related = ("partner__user", "payment", "refund", "referral")

    def get_search_results(self, request, queryset, search_term):
        """Entries of the partner whose email or referral code is the term, or of the payment
        whose id it is: index lookups, where Django's search ORs the joined columns into a join
        of every ledger row (millions at merchant scale)."""
        term = search_term.strip()
        if not term:
            return queryset, False
        partner_ids = list(
            # Each an index lookup (emails are stored normalised: partners/emails.py).
            Partner.objects.filter(
                Q(user_id__in=User.objects.filter(email=normalize_email(term)).values("pk")) | Q(referral_code=term)
            ).values_list("pk", flat=True)
        )
        payment_ids = list(Payment.objects.filter(payment_id=term).values_list("pk", flat=True))
        return queryset.filter(Q(partner_id__in=partner_ids) | Q(payment_id__in=payment_ids)), False


@admin.register(AwaitingClick)
class AwaitingClickAdmin(ReadOnlyAdmin):
    """Sign-ups that waited (or still wait) for a click still in the click buffer; resolved ones
    show when their click landed."""

    list_display = ("customer_id", "click_id", "created_at", "resolved_at")
    list_filter = (("resolved_at", admin.EmptyFieldListFilter),)
    search_fields = ("=customer_id", "=click_id")
    list_select_related = ("event",)
