"""Payout approval in the Django admin.

Staff see every payout with a balance check (the partner's ledger balance and whether the
amount matches what the partner is owed), the partner's recent commissions and the audit
trail. Only staff with ``payouts.approve_payout`` may approve, reject, check with PayPal or mark
failed — checked in the actions, in every custom URL and again in the services. Nothing here
edits amounts or statuses by hand (every change goes through payouts/states.py), and the audit
trail cannot be changed or deleted. When any payout needs attention, the list opens on those.
"""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.views.decorators.http import require_POST

from commissions.balance import partner_balance
from commissions.display import format_money
from commissions.models import CommissionEntry
from config.admin_paging import EstimatedCountPaginator
from config.admin_readonly import ReadOnlyAdminMixin
from partners.emails import normalize_email
from partners.models import Partner, User
from payouts.approval import two_factor_gate
from payouts.models import Payout, PayoutAudit
from payouts.services import (
    PayoutError,
    can_decide_payouts,
    payout_approve,
    payout_check_now,
    payout_reject,
    payout_staff_mark_failed,
)

RECENT_COMMISSIONS = 20


class RejectForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4, "cols": 60}),
        max_length=2000,
        help_text="Shown to the partner and sent to them by email.",
    )
    title = "Reject payouts"
    intro = "The partner is told the reason by email; the amount goes back to their balance."
    submit = "Reject"

    def clean_reason(self) -> str:
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError("A reason is required.")
        return reason


class MarkFailedForm(RejectForm):
    title = "Mark failed and return to balance"
    intro = (
        "Only for a payout PayPal does not have. Look for its sender_batch_id in PayPal's dashboard first: "
        "a payout whose batch PayPal shows cannot be marked failed. The amount goes back to the partner's "
        "balance and the partner is told the reason."
    )
    submit = "Mark failed"


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


class PayoutStatusFilter(admin.SimpleListFilter):
    """The status filter, opening on what needs staff instead of every payout ever made: the
    payouts that need attention while any exist, else those waiting for a decision (requested,
    and any needing attention). "All" is one click away."""

    title = "status"
    parameter_name = "status"
    NEEDS_ACTION = "needs_action"
    ALL = "all"

    @staticmethod
    def needs_action_statuses() -> list[str]:
        return [Payout.Status.PENDING, Payout.Status.ATTENTION]

    def default(self) -> str:
        if not hasattr(self, "_default"):
            attention = Payout.objects.filter(status=Payout.Status.ATTENTION).exists()
            self._default = Payout.Status.ATTENTION if attention else self.NEEDS_ACTION
        return self._default

    def lookups(self, request, model_admin):
        return [(self.NEEDS_ACTION, "Needs action"), (self.ALL, "All"), *Payout.Status.choices]

    def choices(self, changelist):
        chosen = self.value() or self.default()
        for value, title in self.lookup_choices:
            yield {
                "selected": chosen == value,
                "query_string": changelist.get_query_string({self.parameter_name: value}),
                "display": title,
            }

    def queryset(self, request, queryset):
        value = self.value()
        if value is None and request.method != "GET":
            return queryset  # an action posted from the list acts on the rows it names
        if value is None and request.GET.get("q"):
            return queryset  # a search looks through every payout unless a status is chosen
        value = value or self.default()
        if value == self.ALL:
            return queryset
        if value == self.NEEDS_ACTION:
            return queryset.filter(status__in=self.needs_action_statuses())
        return queryset.filter(status=value)


@admin.register(Payout)
class PayoutAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "partner_link",
        "amount_display",
        "status_badge",
        "balance_check",
        "paypal_email_display",
        "requested_at",
        "decided_by",
        "paypal_batch_id",
    )
    list_display_links = ("id",)
    # Merchant scale (200,000 payouts): no full count, an estimated one past 10,000 rows, a date
    # range filter instead of the date hierarchy (a DISTINCT over every payout on each page).
    list_filter = (PayoutStatusFilter, "method", ("requested_at", admin.DateFieldListFilter))
    search_fields = ("=id", "=partner__user__email", "partner__name", "=paypal_email", "=paypal_batch_id")
    list_select_related = ("partner__user", "decided_by")
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    list_per_page = 50
    ordering = ("-requested_at", "-id")
    inlines = (PayoutAuditInline,)
    actions = ("approve_and_send", "reject", "check_paypal", "mark_failed")
    change_form_template = "payouts/admin/change_form.html"
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "partner_link",
                    "amount_display",
                    "status",
                    "attention_reason",
                    "paypal_email_display",
                    "method",
                )
            },
        ),
        ("Balance check", {"fields": ("balance_check_detail",)}),
        ("Decision", {"fields": ("requested_at", "decided_at", "decided_by", "rejection_reason")}),
        (
            "PayPal",
            {
                "fields": (
                    "sender_batch_id",
                    "send_attempts",
                    "outcome_unknown",
                    "sent_at",
                    "paypal_batch_id",
                    "paypal_item_id",
                    "paypal_item_status",
                    "paypal_transaction_id",
                    "checked_at",
                    "next_action_at",
                    "paid_at",
                    "returned_at",
                    "failure_reason",
                )
            },
        ),
        ("Partner's recent commissions", {"fields": ("commission_history",)}),
    )

    def get_search_results(self, request, queryset, search_term):
        """The payouts of partners whose email is the term (or whose name contains it), whose
        PayPal email or batch id is the term, or whose id it is: each an index lookup, where
        Django's search ORs the joined columns into a scan of every payout (merchant scale)."""
        term = search_term.strip()
        if not term:
            return queryset, False
        partner_ids = list(
            # Emails are stored normalised (partners/emails.py): the unique index; names are
            # scanned (10,000s).
            Partner.objects.filter(
                Q(user_id__in=User.objects.filter(email=normalize_email(term)).values("pk")) | Q(name__icontains=term)
            ).values_list("pk", flat=True)
        )
        matches = Q(partner_id__in=partner_ids) | Q(paypal_email__iexact=term) | Q(paypal_batch_id=term)
        if term.isdigit():
            matches |= Q(pk=int(term))
        return queryset.filter(matches), False

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
            "paypal_email_display",
            "commission_history",
        ]

    # The list's balance check reads the partner's maintained balance (Partner.balance, kept by
    # commissions/balance.py after every money event and hourly): a ledger sum per row was ~40 ms
    # of SQL at merchant scale. The payout's own page recomputes it from the ledger, exactly.

    # -- columns ------------------------------------------------------------------------------
    @admin.display(description="partner", ordering="partner__name")
    def partner_link(self, obj: Payout) -> str:
        url = reverse("admin:partners_partner_change", args=[obj.partner_id])
        return format_html('<a href="{}">{}</a><br><small>{}</small>', url, obj.partner.name, obj.partner.user.email)

    @admin.display(description="amount", ordering="amount")
    def amount_display(self, obj: Payout) -> str:
        return format_money(obj.amount, currency=obj.currency)

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: Payout) -> str:
        note = obj.attention_reason if obj.status == Payout.Status.ATTENTION else ""
        if not note and obj.status in Payout.OPEN_STATUSES:
            note = obj.failure_reason
        if obj.unclaimed:
            note = "PayPal holds it until the receiver claims it (returned after 30 days)."
        if note:
            return format_html("{}<br><small>⚠ {}</small>", obj.get_status_display(), note[:240])
        return obj.get_status_display()

    @admin.display(description="PayPal email", ordering="paypal_email")
    def paypal_email_display(self, obj: Payout) -> str:
        """The email the payout was requested with; flagged when the partner has changed theirs since."""
        current = obj.partner.paypal_email
        if current and current.strip().lower() != obj.paypal_email.strip().lower():
            return format_html(
                '{}<br><small class="payout-check-bad">⚠ the partner\'s PayPal email is now {}; this payout '
                "goes to the address it was requested with</small>",
                obj.paypal_email,
                current,
            )
        return obj.paypal_email

    def _balance_check(self, obj: Payout, balance: Decimal, label: str = "Ledger balance") -> tuple[str, str]:
        balance = Decimal(balance).quantize(Decimal("0.01"))
        if obj.status not in Payout.OPEN_STATUSES:
            return f"{label} {balance}", ""
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
        """From the maintained balance, with the time it was computed at."""
        partner = obj.partner
        text, state = self._balance_check(obj, partner.balance, label="Balance")
        when = partner.balance_updated_at
        as_of = f"balance as of {timezone.localtime(when):%Y-%m-%d %H:%M}" if when else "balance not computed yet"
        return format_html('<span class="payout-check-{}">{}</span><br><small>{}</small>', state or "info", text, as_of)

    @admin.display(description="balance check")
    def balance_check_detail(self, obj: Payout) -> str:
        """From the ledger, exactly (the payout's page: one query)."""
        text, state = self._balance_check(obj, partner_balance(partner=obj.partner))
        return format_html('<span class="payout-check-{}">{}</span>', state or "info", text)

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

    def _reject_page(
        self, request: HttpRequest, payouts, form: RejectForm, *, action_url: str, action: str = "reject"
    ) -> TemplateResponse:
        context = {
            **self.admin_site.each_context(request),
            "title": form.title,
            "opts": self.model._meta,
            "payouts": payouts,
            "form": form,
            "action": action,
            "action_url": action_url,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "payouts/admin/reject.html", context)

    @admin.action(description="Check with PayPal now (safe: never pays twice)", permissions=["approve"])
    def check_paypal(self, request: HttpRequest, queryset) -> None:
        self._require(request)
        for payout_id in queryset.order_by("pk").values_list("pk", flat=True):
            self._check_one(request, payout_id)

    def _check_one(self, request: HttpRequest, payout_id: int) -> None:
        try:
            payout_check_now(payout_id=payout_id, actor=request.user)
        except PayoutError as exc:
            self.message_user(request, str(exc), messages.ERROR)
        else:
            payout = Payout.objects.get(pk=payout_id)
            self.message_user(request, f"Payout #{payout_id} checked with PayPal: {payout.get_status_display()}.")

    @admin.action(description="Mark failed and return to balance (a reason is required)", permissions=["approve"])
    def mark_failed(self, request: HttpRequest, queryset):
        self._require(request)
        if (verify := two_factor_gate(request)) is not None:
            return verify
        payouts = list(queryset.select_related("partner__user").order_by("pk"))
        form = MarkFailedForm(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            for payout in payouts:
                self._mark_failed_one(request, payout.pk, form.cleaned_data["reason"])
            return None
        return self._reject_page(request, payouts, form, action_url="", action="mark_failed")

    def _mark_failed_one(self, request: HttpRequest, payout_id: int, reason: str) -> None:
        try:
            payout_staff_mark_failed(payout_id=payout_id, actor=request.user, reason=reason)
        except PayoutError as exc:
            self.message_user(request, str(exc), messages.ERROR)
        else:
            self.message_user(request, f"Payout #{payout_id} marked failed; its amount is back in the balance.")

    # -- buttons on the change page (custom URLs) ----------------------------------------------
    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("<int:payout_id>/approve/", wrap(self.approve_view), name="payouts_payout_approve"),
            path("<int:payout_id>/reject/", wrap(self.reject_view), name="payouts_payout_reject"),
            path("<int:payout_id>/check/", wrap(self.check_view), name="payouts_payout_check"),
            path("<int:payout_id>/mark-failed/", wrap(self.mark_failed_view), name="payouts_payout_mark_failed"),
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
        return self._reason_view(request, payout_id, RejectForm, self._reject_one, "reject")

    def _reason_view(self, request: HttpRequest, payout_id: int, form_class, act, action: str) -> HttpResponse:
        """A decision that needs a reason, on its own page: reject, or mark failed."""
        self._require(request)
        if (verify := two_factor_gate(request)) is not None:
            return verify
        payout = get_object_or_404(Payout.objects.select_related("partner__user"), pk=payout_id)
        form = form_class(request.POST if request.method == "POST" else None)
        if request.method == "POST" and form.is_valid():
            act(request, payout.pk, form.cleaned_data["reason"])
            return HttpResponseRedirect(self._change_url(payout.pk))
        action_url = reverse(f"admin:payouts_payout_{action}", args=[payout.pk])
        response = self._reject_page(request, [payout], form, action_url=action_url, action=action)
        if request.method == "POST":
            response.status_code = 400
        return response

    def check_view(self, request: HttpRequest, payout_id: int) -> HttpResponse:
        self._require(request)
        return require_POST(self._check_post)(request, payout_id)

    def _check_post(self, request: HttpRequest, payout_id: int) -> HttpResponse:
        get_object_or_404(Payout, pk=payout_id)
        self._check_one(request, payout_id)
        return HttpResponseRedirect(self._change_url(payout_id))

    def mark_failed_view(self, request: HttpRequest, payout_id: int) -> HttpResponse:
        return self._reason_view(request, payout_id, MarkFailedForm, self._mark_failed_one, "mark_failed")

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context["can_decide_payouts"] = can_decide_payouts(request.user)
        if obj is not None:
            S = Payout.Status
            context["can_check"] = obj.status in (S.APPROVED, S.SENDING, S.UNKNOWN, S.ATTENTION, S.SENT, S.PAID)
            context["can_mark_failed"] = obj.status in (S.ATTENTION, S.UNKNOWN) or (
                obj.status == S.SENDING and not obj.attempt_started_at
            )
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
