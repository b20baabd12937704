from django.apps import AppConfig


class CommissionsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "commissions"

    def ready(self) -> None:
        from commissions.receivers import resolve_sign_ups_awaiting
        from tracking.click_writes import clicks_stored

        clicks_stored.connect(resolve_sign_ups_awaiting, dispatch_uid="commissions_resolve_sign_ups_awaiting")
