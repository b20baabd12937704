from django.apps import AppConfig


class StripeBillingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "commissions.stripe_billing"
    label = "stripe_billing"
    verbose_name = "Stripe Billing"
