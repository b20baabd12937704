from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.utils.html import format_html

from config.admin_readonly import ReadOnlyAdminMixin
from tracking.models import Click, Creative, DailyLinkStats, Link, PromoCode
from tracking.services import CODE_RE
from tracking.validators import validate_destination


class ReadOnlyAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Browsable, never editable: rows written by the tracking and reporting code."""


class LinkAdminForm(forms.ModelForm):
    destination = forms.CharField(
        required=False, max_length=2000, help_text="Empty: the default landing page.", widget=forms.URLInput
    )

    class Meta:
        model = Link
        fields = [
            "partner",
            "code",
            "destination",
            "trial_days",
            "description",
            "creative",
            "is_default",
            "is_active",
            "pass_sub_ids",
        ]

    def clean_destination(self) -> str:
        destination = (self.cleaned_data.get("destination") or "").strip()
        if destination:
            validate_destination(destination)
        return destination

    def clean_code(self) -> str:
        code = (self.cleaned_data.get("code") or "").strip()
        if not CODE_RE.match(code):
            raise ValidationError("3 to 40 letters, digits, hyphens or underscores.")
        return code

    def clean_trial_days(self) -> int:
        days = self.cleaned_data.get("trial_days")
        if days not in settings.TRIAL_LENGTHS:
            raise ValidationError(f"Trial length must be one of {settings.TRIAL_LENGTHS}.")
        return days


@admin.register(Link)
class LinkAdmin(admin.ModelAdmin):
    form = LinkAdminForm
    list_display = ["code", "partner_email", "destination_shown", "trial_days", "is_default", "is_active", "created_at"]
    list_filter = ["is_active", "is_default", "trial_days", "creative__kind"]
    search_fields = ["code", "partner__user__email", "description"]
    list_select_related = ["partner__user"]
    raw_id_fields = ["partner", "creative"]
    readonly_fields = ["created_at"]
    ordering = ["-created_at"]

    @admin.display(description="Partner", ordering="partner__user__email")
    def partner_email(self, obj: Link) -> str:
        return obj.partner.user.email

    @admin.display(description="Destination")
    def destination_shown(self, obj: Link) -> str:
        return obj.destination or f"(default) {settings.DEFAULT_LANDING_URL}"


@admin.register(Click)
class ClickAdmin(ReadOnlyAdmin):
    list_display = ["id", "link", "partner_email", "visitor_id", "created_at", "is_unique"]
    list_filter = ["is_unique"]
    search_fields = ["=link__code", "=visitor_id", "=id"]
    list_select_related = ["link__partner__user"]
    fields = ["id", "link", "visitor_id", "created_at", "is_unique", "ip_hash", "user_agent", "referer"]
    readonly_fields = fields
    ordering = ["-created_at"]
    # Counting millions of clicks for "x of y" on every page view is not worth it.
    show_full_result_count = False

    @admin.display(description="Partner", ordering="link__partner__user__email")
    def partner_email(self, obj: Click) -> str:
        return obj.link.partner.user.email


class CreativeAdminForm(forms.ModelForm):
    class Meta:
        model = Creative
        fields = ["kind", "title", "image", "text", "is_active"]

    def clean(self) -> dict:
        cleaned = super().clean()
        kind = cleaned.get("kind")
        if kind in Creative.IMAGE_KINDS and not cleaned.get("image"):
            self.add_error("image", "Banners, logos and screenshots need an image.")
        if kind == Creative.Kind.TEXT and not (cleaned.get("text") or "").strip():
            self.add_error("text", "A ready text creative needs its text.")
        return cleaned


@admin.register(Creative)
class CreativeAdmin(admin.ModelAdmin):
    form = CreativeAdminForm
    list_display = ["title", "kind", "dimensions", "thumbnail", "is_active", "created_at"]
    list_filter = ["kind", "is_active"]
    search_fields = ["title", "text"]
    list_editable = ["is_active"]
    readonly_fields = ["dimensions", "thumbnail", "created_at"]
    fields = ["kind", "title", "image", "thumbnail", "dimensions", "text", "is_active", "created_at"]

    @admin.display(description="Dimensions")
    def dimensions(self, obj: Creative) -> str:
        return f"{obj.width} × {obj.height}" if obj.width and obj.height else "—"

    @admin.display(description="Preview")
    def thumbnail(self, obj: Creative) -> str:
        if not obj.image:
            return "—"
        return format_html('<img src="{}" alt="{}" height="40">', obj.image.url, obj.title)


@admin.register(DailyLinkStats)
class DailyLinkStatsAdmin(ReadOnlyAdmin):
    list_display = [
        "day",
        "link",
        "partner",
        "clicks",
        "unique_clicks",
        "new_trials",
        "new_subscriptions",
        "commission",
    ]
    list_filter = ["day"]
    search_fields = ["=link__code", "partner__user__email"]
    list_select_related = ["link", "partner__user"]
    date_hierarchy = "day"
    ordering = ["-day", "link_id"]
    show_full_result_count = False


class PromoCodeAdminForm(forms.ModelForm):
    class Meta:
        model = PromoCode
        fields = ["partner", "code", "trial_days", "description", "is_active"]

    def clean_code(self) -> str:
        code = (self.cleaned_data.get("code") or "").strip()
        if not CODE_RE.match(code):
            raise ValidationError("3 to 40 letters, digits, hyphens or underscores.")
        # The database refuses a second spelling (promo_code_unique_ci); say so as a form error.
        taken = PromoCode.objects.filter(code__iexact=code).exclude(pk=self.instance.pk)
        if taken.exists():
            raise ValidationError("This code is taken (codes match whatever their case).")
        return code


@admin.register(PromoCode)
class PromoCodeAdmin(admin.ModelAdmin):
    """Staff create a partner's codes here, and approve a partner's request by activating it."""

    form = PromoCodeAdminForm
    list_display = ["code", "partner_email", "trial_days", "is_active", "requested_at", "created_at"]
    list_filter = ["is_active", "trial_days"]
    search_fields = ["code", "partner__user__email"]
    list_select_related = ["partner__user"]
    raw_id_fields = ["partner"]
    readonly_fields = ["requested_at", "created_at"]
    ordering = ["-created_at"]
    actions = ["approve"]

    @admin.display(description="Partner", ordering="partner__user__email")
    def partner_email(self, obj: PromoCode) -> str:
        return obj.partner.user.email

    @admin.action(description="Approve (activate) the selected codes")
    def approve(self, request, queryset) -> None:
        count = queryset.filter(is_active=False).update(is_active=True)
        self.message_user(request, f"{count} code(s) activated.")
