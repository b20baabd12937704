from django.apps import AppConfig


class FraudConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "commissions.fraud"
    label = "fraud"
    verbose_name = "Fraud review"
