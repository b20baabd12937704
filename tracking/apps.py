from django.apps import AppConfig


class TrackingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "tracking"

    def ready(self) -> None:
        from tracking import signals  # noqa: F401 - connects the link-cache receivers
