from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.db import models

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


@admin.register(Partner)
class PartnerAdmin(admin.ModelAdmin):
    # A website typed without a scheme is https (Django 6's default; the partner forms say so too).
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    list_display = ["name", "email", "referral_code", "paypal_email", "commission_total", "balance", "created_at"]
    search_fields = ["user__email", "referral_code", "paypal_email", "name"]
    list_select_related = ["user"]
    readonly_fields = [
        "referral_code",
        "commission_total",
        "balance",
        "balance_updated_at",
        "accepted_terms_at",
        "created_at",
    ]
    inlines = [ApiTokenInline]

    @admin.display(ordering="user__email")
    def email(self, obj: Partner) -> str:
        return obj.user.email
