"""The Stripe event log and the integration's health in the admin (read-only: the code writes it).

The event list opens with the health panel: the last event received, the events held waiting for
a prerequisite (a link to them) and the webhook's verification failures."""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.utils.html import format_html

from commissions.admin import ReadOnlyAdmin
from commissions.stripe_billing.health import stripe_health
from commissions.stripe_billing.models import StripeEvent, StripeSubscription
from commissions.stripe_billing.services import stripe_events_handle_again


@admin.register(StripeEvent)
class StripeEventAdmin(ReadOnlyAdmin):
    list_display = ("stripe_id", "type", "status", "customer_id", "waiting_for", "note_short", "created", "received_at")
    list_filter = ("status", "type", "source")
    search_fields = ("=stripe_id", "=customer_id", "=object_id")
    date_hierarchy = "received_at"
    readonly_fields = ("payload_json",)
    fields = (
        "stripe_id",
        "type",
        "status",
        "note",
        "waiting_for",
        "customer_id",
        "object_id",
        "merchant_event_ids",
        "created",
        "received_at",
        "handled_at",
        "source",
        "api_version",
        "livemode",
        "payload_json",
    )
    actions = ("handle_again",)

    @admin.display(description="note")
    def note_short(self, obj: StripeEvent) -> str:
        return obj.note if len(obj.note) <= 90 else obj.note[:89] + "…"

    @admin.display(description="payload")
    def payload_json(self, obj: StripeEvent):
        return format_html("<pre>{}</pre>", json.dumps(obj.payload, indent=2, ensure_ascii=False))

    @admin.action(description="Handle the selected held or not-referred events again")
    def handle_again(self, request, queryset):
        count = stripe_events_handle_again(pks=list(queryset.values_list("pk", flat=True)))
        messages.info(request, f"{count} event(s) handled again; see their status.")

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "stripe_health": stripe_health()}
        return super().changelist_view(request, extra_context=extra_context)


@admin.register(StripeSubscription)
class StripeSubscriptionAdmin(ReadOnlyAdmin):
    list_display = ("subscription_id", "customer_id", "status", "plan", "seats", "trial_end", "state_at")
    list_filter = ("status", "plan")
    search_fields = ("=subscription_id", "=customer_id")
