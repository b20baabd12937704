"""Fraud review in the admin: the flags with their evidence (dismiss / confirm), and voiding a
commission with a reason."""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.template.response import TemplateResponse
from django.utils.html import format_html

from commissions.fraud.models import CommissionVoid, FraudFlag
from commissions.fraud.services import FraudReviewError, commission_void, flags_review
from commissions.models import CommissionEntry


@admin.register(FraudFlag)
class FraudFlagAdmin(admin.ModelAdmin):
    list_display = ["created_at", "partner", "rule", "status", "evidence_summary", "referral_id"]
    list_filter = ["status", "rule"]
    search_fields = ["partner__user__email", "partner__name", "key"]
    list_select_related = ["partner__user"]
    readonly_fields = [
        "partner",
        "referral",
        "rule",
        "key",
        "evidence_pretty",
        "status",
        "created_at",
        "reviewed_at",
        "reviewed_by",
        "review_note",
    ]
    exclude = ["evidence"]
    actions = ["dismiss", "confirm"]

    @admin.display(description="evidence")
    def evidence_summary(self, obj: FraudFlag) -> str:
        return ", ".join(f"{key}: {value}" for key, value in obj.evidence.items() if not isinstance(value, list))[:200]

    @admin.display(description="evidence")
    def evidence_pretty(self, obj: FraudFlag) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.evidence, indent=2, sort_keys=True))

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(description="Dismiss: not fraud (the partner's payouts can be approved)", permissions=["change"])
    def dismiss(self, request, queryset) -> None:
        done = flags_review(flag_ids=queryset.values_list("pk", flat=True), actor=request.user, status="dismissed")
        self.message_user(request, f"{done} flag(s) dismissed.")

    @admin.action(description="Confirm: fraud (payouts stay blocked until dismissed)", permissions=["change"])
    def confirm(self, request, queryset) -> None:
        done = flags_review(flag_ids=queryset.values_list("pk", flat=True), actor=request.user, status="confirmed")
        self.message_user(request, f"{done} flag(s) confirmed.")


class VoidableCommission(CommissionEntry):
    class Meta:
        proxy = True
        verbose_name = "commission to void"
        verbose_name_plural = "void a commission"


class VoidForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), max_length=2000, label="Reason (the partner reads it)"
    )


@admin.register(VoidableCommission)
class VoidableCommissionAdmin(admin.ModelAdmin):
    list_display = ["earned_at", "partner", "referral_id", "amount", "voided"]
    list_filter = ["earned_at"]
    search_fields = ["partner__user__email", "payment__payment_id", "referral__customer_id"]
    list_select_related = ["partner__user"]
    actions = ["void"]

    def get_queryset(self, request):
        return super().get_queryset(request).filter(kind=CommissionEntry.Kind.COMMISSION, amount__gt=0)

    @admin.display(boolean=True)
    def voided(self, obj) -> bool:
        return CommissionVoid.objects.filter(commission_id=obj.pk).exists()

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return request.user.has_perm("commissions.change_commissionentry") if obj is None else False

    @admin.action(description="Void the selected commissions (a reason is required)")
    def void(self, request, queryset):
        form = VoidForm(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            for entry_id in queryset.order_by("pk").values_list("pk", flat=True):
                try:
                    commission_void(entry_id=entry_id, actor=request.user, reason=form.cleaned_data["reason"])
                except FraudReviewError as exc:
                    self.message_user(request, f"Entry {entry_id}: {exc}", messages.ERROR)
                else:
                    self.message_user(request, f"Entry {entry_id} voided; the partner sees the reason.")
            return None
        return TemplateResponse(
            request,
            "fraud/admin/void.html",
            {
                **self.admin_site.each_context(request),
                "title": "Void commissions",
                "opts": self.model._meta,
                "entries": queryset.select_related("partner__user"),
                "form": form,
                "action_checkbox_name": ACTION_CHECKBOX_NAME,
            },
        )


@admin.register(CommissionVoid)
class CommissionVoidAdmin(admin.ModelAdmin):
    list_display = ["at", "commission", "reason", "actor"]
    readonly_fields = ["entry", "commission", "reason", "actor", "at", "flag"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
