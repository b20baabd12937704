from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.db import models
from django.db.models import Count

from commissions.models import PartnerRate
from config.admin_paging import EstimatedCountPaginator
from partners.models import ApiToken, Partner, ProgramTerms, TermsAcceptance, User
from partners.services import partners_approve, partners_decline, terms_publish
from partners.terms import render_terms


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ["email"]
    list_display = ["email", "first_name", "is_staff", "is_active", "date_joined"]
    search_fields = ["email", "first_name", "last_name"]
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Personal info", {"fields": ("first_name", "last_name")}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Important dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)


class ApiTokenInline(admin.TabularInline):
    model = ApiToken
    extra = 0
    fields = ["name", "prefix", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class PartnerRateInline(admin.TabularInline):
    """The partner's own commission rates (docs/reference.md, "Merchant events API": each partner's rate). A change is a new
    row from a moment on; rows already saved are history and cannot be edited or deleted
    (commissions computed at a rate keep it). Without any row the program's COMMISSION_RATE applies."""

    model = PartnerRate
    extra = 0
    fields = ["rate", "valid_from", "created_at"]
    readonly_fields = ["created_at"]
    can_delete = False
    verbose_name = "own commission rate"
    verbose_name_plural = "own commission rates (history; none: the program's rate)"

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Partner)
class PartnerAdmin(admin.ModelAdmin):
    # A website typed without a scheme is https (Django 6's default; the partner forms say so too).
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    list_display = [
        "name",
        "email",
        "status",
        "referral_code",
        "paypal_email",
        "commission_total",
        "balance",
        "created_at",
    ]
    list_filter = ["status"]
    search_fields = ["user__email", "referral_code", "paypal_email", "name"]
    list_select_related = ["user"]
    # Merchant scale: no full count; an estimated one past 10,000 partners.
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    list_per_page = 50
    readonly_fields = [
        "referral_code",
        "status",
        "status_changed_at",
        "status_changed_by",
        "commission_total",
        "balance",
        "balance_updated_at",
        "accepted_terms_at",
        "accepted_terms_version",
        "created_at",
    ]
    inlines = [PartnerRateInline, ApiTokenInline]
    actions = ["approve_applications", "decline_applications"]

    @admin.action(description="Approve the selected applications (email each partner)", permissions=["change"])
    def approve_applications(self, request, queryset) -> None:
        done = partners_approve(partner_ids=queryset.values_list("pk", flat=True), actor=request.user)
        self.message_user(request, f"{len(done)} partner(s) approved; their links count from now on.")
        skipped = queryset.count() - len(done)
        if skipped:
            self.message_user(request, f"{skipped} already approved, left as they were.", messages.WARNING)

    @admin.action(description="Decline the selected applications (email each partner)", permissions=["change"])
    def decline_applications(self, request, queryset) -> None:
        done = partners_decline(partner_ids=queryset.values_list("pk", flat=True), actor=request.user)
        self.message_user(request, f"{len(done)} application(s) declined.")
        skipped = queryset.count() - len(done)
        if skipped:
            self.message_user(
                request, f"{skipped} not pending (only applications under review can be declined).", messages.WARNING
            )

    @admin.display(ordering="user__email")
    def email(self, obj: Partner) -> str:
        return obj.user.email


class TermsAcceptanceInline(admin.TabularInline):
    model = TermsAcceptance
    extra = 0
    fields = ["partner", "accepted_at"]
    readonly_fields = fields
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ProgramTerms)
class ProgramTermsAdmin(admin.ModelAdmin):
    """Staff write a new version; a published version is never edited (partners accepted that
    text), so "change" shows it read-only and a correction is a new version."""

    list_display = ["version", "summary_of_changes", "published_at", "created_by", "acceptances_count"]
    fields = ["text", "summary_of_changes"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("created_by").annotate(accepted_by=Count("acceptances"))

    @admin.display(description="accepted by", ordering="accepted_by")
    def acceptances_count(self, obj: ProgramTerms) -> int:
        return obj.accepted_by

    @admin.display(description="rendered")
    def rendered(self, obj: ProgramTerms):
        return render_terms(obj.text)

    def get_fields(self, request, obj=None):
        return ["version", "published_at", "created_by", "summary_of_changes", "rendered"] if obj else self.fields

    def get_readonly_fields(self, request, obj=None):
        return self.get_fields(request, obj) if obj else []

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_changeform_initial_data(self, request):
        latest = ProgramTerms.objects.order_by("-version").first()
        return {"text": latest.text} if latest else {}

    def save_model(self, request, obj, form, change) -> None:
        if change:
            return
        published = terms_publish(
            text=form.cleaned_data["text"],
            summary_of_changes=form.cleaned_data["summary_of_changes"],
            actor=request.user,
        )
        obj.pk, obj.version, obj.published_at = published.pk, published.version, published.published_at
