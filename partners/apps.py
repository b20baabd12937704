from django.apps import AppConfig


class PartnersConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "partners"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        user_logged_in.connect(staff_session_expiry, dispatch_uid="partners.staff_session_expiry")


def staff_session_expiry(sender, request, user, **kwargs) -> None:
    """A staff session ends STAFF_SESSION_SECONDS after login, set as the session is created
    (config.middleware.PrivateCacheMiddleware applies the same limit to older sessions)."""
    from datetime import timedelta

    from django.conf import settings
    from django.utils import timezone

    session = getattr(request, "session", None)
    if user.is_staff and session is not None and session.get_expiry_age() > settings.STAFF_SESSION_SECONDS:
        session.set_expiry(timezone.now() + timedelta(seconds=settings.STAFF_SESSION_SECONDS))
