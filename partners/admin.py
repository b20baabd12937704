from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from commissions.models import PartnerRate
from config.admin_paging import EstimatedCountPaginator
from partners.models import ApiToken, Partner, User


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
    """The partner's own commission rates (CONTRACT.md "Per-partner rates"). A change is a new
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
    list_display = ["name", "email", "referral_code", "paypal_email", "commission_total", "balance", "created_at"]
    search_fields = ["user__email", "referral_code", "paypal_email", "name"]
    list_select_related = ["user"]
    # Merchant scale: no full count; an estimated one past 10,000 partners.
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    list_per_page = 50
    readonly_fields = [
        "referral_code",
        "commission_total",
        "balance",
        "balance_updated_at",
        "accepted_terms_at",
        "created_at",
    ]
    inlines = [PartnerRateInline, ApiTokenInline]

    @admin.display(ordering="user__email")
    def email(self, obj: Partner) -> str:
        return obj.user.email
