"""Payout approval in the Django admin.

Staff see every payout with a balance check (the partner's ledger balance and whether the
amount matches what the partner is owed), the partner's recent commissions and the audit
trail. Only staff with ``payouts.approve_payout`` may approve, reject or re-send — checked in
the actions, in every custom URL and again in the services. Nothing here edits amounts or
statuses by hand, and the audit trail cannot be changed or deleted.
"""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import DecimalField, OuterRef, Subquery
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.views.decorators.http import require_POST

from commissions.balance import partners_with_balances
from commissions.models import CommissionEntry
from config.admin_readonly import ReadOnlyAdminMixin
from payouts.approval import two_factor_gate
from payouts.models import Payout, PayoutAudit
from payouts.services import (
    PayoutError,
    can_decide_payouts,
    payout_approve,
    payout_reject,
    payout_retry_send,
)
from payouts.tasks import poll_payout_task

RECENT_COMMISSIONS = 20


class RejectForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4, "cols": 60}),
        max_length=2000,
        help_text="Shown to the partner and sent to them by email.",
    )

    def clean_reason(self) -> str:
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError("A reason is required.")
        return reason


def _detail_text(detail: dict) -> str:
    if not isinstance(detail, dict):
        return str(detail)
    parts = []
    for key, value in detail.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items() if v not in (None, ""))
        parts.append(f"{key}: {value}")
    return "; ".join(parts)


class PayoutAuditInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = PayoutAudit
    extra = 0
    can_delete = False
    fields = ("at", "action", "actor", "details")
    readonly_fields = fields
    verbose_name = "audit entry"
    verbose_name_plural = "Audit trail (who did what, and when)"

    @admin.display(description="details")
    def details(self, obj: PayoutAudit) -> str:
        return _detail_text(obj.detail)

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.is_active and request.user.is_staff


@admin.register(Payout)
class PayoutAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "partner_link",
        "amount_display",
        "status_badge",
        "balance_check",
        "paypal_email",
        "requested_at",
        "decided_by",
        "paypal_batch_id",
    )
    list_display_links = ("id",)
    list_filter = ("status", "method")
    search_fields = ("=id", "partner__user__email", "partner__name", "paypal_email", "paypal_batch_id")
    list_select_related = ("partner__user", "decided_by")
    date_hierarchy = "requested_at"
    ordering = ("-requested_at", "-id")
    inlines = (PayoutAuditInline,)
    actions = ("approve_and_send", "reject", "retry_send", "check_paypal")
    change_form_template = "payouts/admin/change_form.html"
    fieldsets = (
        (None, {"fields": ("partner_link", "amount_display", "status", "paypal_email", "method")}),
        ("Balance check", {"fields": ("balance_check_detail",)}),
        ("Decision", {"fields": ("requested_at", "decided_at", "decided_by", "rejection_reason")}),
        (
            "PayPal",
            {
                "fields": (
                    "sender_batch_id",
                    "send_attempts",
                    "sent_at",
                    "paypal_batch_id",
                    "paypal_item_id",
                    "paypal_transaction_id",
                    "paid_at",
                    "failure_reason",
                )
            },
        ),
        ("Partner's recent commissions", {"fields": ("commission_history",)}),
    )

    # -- permissions: view for payout staff, no hand edits for anyone --------------------------
    def has_view_permission(self, request, obj=None) -> bool:
        return super().has_view_permission(request, obj) or can_decide_payouts(request.user)

    def has_approve_permission(self, request) -> bool:
        return can_decide_payouts(request.user)

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Payout._meta.fields] + [
            "partner_link",
            "amount_display",
            "balance_check_detail",
            "sender_batch_id",
            "commission_history",
        ]

    def get_queryset(self, request):
        balance = partners_with_balances().filter(pk=OuterRef("partner_id")).values("ledger_balance")[:1]
        return (
            super()
            .get_queryset(request)
            .annotate(
                partner_ledger_balance=Subquery(balance, output_field=DecimalField(max_digits=12, decimal_places=2))
            )
        )

    # -- columns ------------------------------------------------------------------------------
    @admin.display(description="partner", ordering="partner__name")
    def partner_link(self, obj: Payout) -> str:
        url = reverse("admin:partners_partner_change", args=[obj.partner_id])
        return format_html('<a href="{}">{}</a><br><small>{}</small>', url, obj.partner.name, obj.partner.user.email)

    @admin.display(description="amount", ordering="amount")
    def amount_display(self, obj: Payout) -> str:
        return f"{obj.amount} {obj.currency}"

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: Payout) -> str:
        if obj.failure_reason and obj.status in Payout.OPEN_STATUSES:
            return format_html("{}<br><small>⚠ {}</small>", obj.get_status_display(), obj.failure_reason[:140])
        return obj.get_status_display()

    def _balance_check(self, obj: Payout) -> tuple[str, str]:
        balance = getattr(obj, "partner_ledger_balance", None)
        if balance is None:
            return "", ""
        balance = Decimal(balance).quantize(Decimal("0.01"))
        if obj.status not in Payout.OPEN_STATUSES:
            return f"Ledger balance {balance}", ""
        # The ledger balance already has this open payout taken off: what the partner is owed
        # for it is balance + amount.
        owed = balance + obj.amount
        if balance == 0:
            return f"✓ Matches: owed {owed}, ledger balance after it {balance}", "ok"
        if balance > 0:
            return f"✓ Covered: owed {owed}; {balance} more earned since the request", "ok"
        return f"✗ {-balance} more than owed ({owed}): a refund came in after the request", "bad"

    @admin.display(description="balance check")
    def balance_check(self, obj: Payout) -> str:
        text, state = self._balance_check(obj)
        return format_html('<span class="payout-check-{}">{}</span>', state or "info", text)

    @admin.display(description="balance check")
    def balance_check_detail(self, obj: Payout) -> str:
        return self.balance_check(obj)

    @admin.display(description="sender_batch_id")
    def sender_batch_id(self, obj: Payout) -> str:
        return obj.sender_batch_id

    @admin.display(description="recent commissions")
    def commission_history(self, obj: Payout) -> str:
        entries = list(
            CommissionEntry.objects.filter(partner_id=obj.partner_id)
            .select_related("payment", "referral")
            .order_by("-earned_at", "-id")[:RECENT_COMMISSIONS]
        )
        if not entries:
            return "No commissions yet."
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} {}</td></tr>",
            (
                (
                    e.earned_at.strftime("%Y-%m-%d %H:%M"),
                    e.get_kind_display(),
                    e.referral.customer_id,
                    e.payment.payment_id,
                    e.amount,
                    e.payment.currency,
                )
                for e in entries
            ),
        )
        return format_html(
            "<table><thead><tr><th>earned</th><th>kind</th><th>customer</th><th>payment</th>"
            "<th>commission</th></tr></thead><tbody>{}</tbody></table><p>Latest {} entries.</p>",
            rows,
            len(entries),
        )

    # -- actions --------------------------------------------------------------------------------
    def _require(self, request: HttpRequest) -> None:
        if not can_decide_payouts(request.user):
            raise PermissionDenied("You are not allowed to act on payouts.")

    @admin.action(description="Approve and send", permissions=["approve"])
    def approve_and_send(self, request: HttpRequest, queryset):
        self._require(request)
        if (verify := two_factor_gate(request)) is not None:
            return verify
        for payout_id in queryset.order_by("pk").values_list("pk", flat=True):
            self._approve_one(request, payout_id)

    def _approve_one(self, request: HttpRequest, payout_id: int) -> None:
        try:
            payout = payout_approve(payout_id=payout_id, actor=request.user)
        except PayoutError as exc:
            self.message_user(request, str(exc), messages.ERROR)
        else:
            if payout.status == Payout.Status.PENDING:
                self.message_user(
                    request,
                    f"Payout #{payout.pk}: your approval is recorded. It is above "
                    f"{settings.PAYOUT_SECOND_APPROVAL_ABOVE} {payout.currency}, so a second staff member must approve it.",
                    messages.WARNING,
                )
                return
            self.message_user(
                request, f"Payout #{payout.pk} approved: {payout.amount} {payout.currency} is being sent to PayPal."
            )

    @admin.action(description="Reject (a reason is required)", permissions=["approve"])
    def reject(self, request: HttpRequest, queryset):
        self._require(request)
        if (verify := two_factor_gate(request)) is not None:
            return verify
        payouts = list(queryset.select_related("partner__user").order_by("pk"))
        form = RejectForm(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            for payout in payouts:
                self._reject_one(request, payout.pk, form.cleaned_data["reason"])
            return None
        return self._reject_page(request, payouts, form, action_url="")

    def _reject_one(self, request: HttpRequest, payout_id: int, reason: str) -> None:
        try:
            payout = payout_reject(payout_id=payout_id, actor=request.user, reason=reason)
        except PayoutError as exc:
            self.message_user(request, str(exc), messages.ERROR)
        else:
            self.message_user(request, f"Payout #{payout.pk} rejected; the partner has been told why.")

    def _reject_page(self, request: HttpRequest, payouts, form: RejectForm, *, action_url: str) -> TemplateResponse:
        context = {
            **self.admin_site.each_context(request),
            "title": "Reject payouts",
            "opts": self.model._meta,
            "payouts": payouts,
            "form": form,
            "action_url": action_url,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "payouts/admin/reject.html", context)

    @admin.action(description="Retry sending to PayPal (safe: never pays twice)", permissions=["approve"])
    def retry_send(self, request: HttpRequest, queryset) -> None:
        self._require(request)
        for payout_id in queryset.order_by("pk").values_list("pk", flat=True):
            self._retry_one(request, payout_id)

    def _retry_one(self, request: HttpRequest, payout_id: int) -> None:
        try:
            payout_retry_send(payout_id=payout_id, actor=request.user)
        except PayoutError as exc:
            self.message_user(request, str(exc), messages.ERROR)
        else:
            self.message_user(request, f"Payout #{payout_id} queued for sending.")

    @admin.action(description="Check PayPal status now", permissions=["approve"])
    def check_paypal(self, request: HttpRequest, queryset) -> None:
        self._require(request)
        ids = list(
            queryset.filter(status=Payout.Status.PROCESSING).exclude(paypal_batch_id="").values_list("pk", flat=True)
        )
        for payout_id in ids:
            poll_payout_task.delay(payout_id)
        self.message_user(request, f"Asked PayPal about {len(ids)} processing payout(s).")

    # -- buttons on the change page (custom URLs) ----------------------------------------------
    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("<int:payout_id>/approve/", wrap(self.approve_view), name="payouts_payout_approve"),
            path("<int:payout_id>/reject/", wrap(self.reject_view), name="payouts_payout_reject"),
            path("<int:payout_id>/retry/", wrap(self.retry_view), name="payouts_payout_retry"),
            *super().get_urls(),
        ]

    def _change_url(self, payout_id: int) -> str:
        return reverse("admin:payouts_payout_change", args=[payout_id])

    def approve_view(self, request: HttpRequest, payout_id: int) -> HttpResponse:
        self._require(request)
        return require_POST(self._approve_post)(request, payout_id)

    def _approve_post(self, request: HttpRequest, payout_id: int) -> HttpResponse:
        get_object_or_404(Payout, pk=payout_id)
        if (verify := two_factor_gate(request)) is not None:
            return verify
        self._approve_one(request, payout_id)
        return HttpResponseRedirect(self._change_url(payout_id))

    def reject_view(self, request: HttpRequest, payout_id: int) -> HttpResponse:
        self._require(request)
        if (verify := two_factor_gate(request)) is not None:
            return verify
        payout = get_object_or_404(Payout.objects.select_related("partner__user"), pk=payout_id)
        form = RejectForm(request.POST if request.method == "POST" else None)
        if request.method == "POST" and form.is_valid():
            self._reject_one(request, payout.pk, form.cleaned_data["reason"])
            return HttpResponseRedirect(self._change_url(payout.pk))
        action_url = reverse("admin:payouts_payout_reject", args=[payout.pk])
        response = self._reject_page(request, [payout], form, action_url=action_url)
        if request.method == "POST":
            response.status_code = 400
        return response

    def retry_view(self, request: HttpRequest, payout_id: int) -> HttpResponse:
        self._require(request)
        return require_POST(self._retry_post)(request, payout_id)

    def _retry_post(self, request: HttpRequest, payout_id: int) -> HttpResponse:
        get_object_or_404(Payout, pk=payout_id)
        self._retry_one(request, payout_id)
        return HttpResponseRedirect(self._change_url(payout_id))

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context["can_decide_payouts"] = can_decide_payouts(request.user)
        return super().render_change_form(request, context, add=add, change=change, form_url=form_url, obj=obj)


@admin.register(PayoutAudit)
class PayoutAuditAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The audit trail: read-only for everyone, never deleted."""

    list_display = ("at", "payout", "action", "actor", "details")
    list_filter = ("action",)
    search_fields = ("=payout__id", "actor__email")
    list_select_related = ("payout", "actor")
    date_hierarchy = "at"

    @admin.display(description="details")
    def details(self, obj: PayoutAudit) -> str:
        return _detail_text(obj.detail)

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in PayoutAudit._meta.fields] + ["details"]
