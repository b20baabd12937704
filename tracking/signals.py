"""Keep the redirect's in-process link cache honest."""

from __future__ import annotations

from django.core.signals import setting_changed
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from tracking import linkcache
from tracking.models import Link


@receiver(post_save, sender=Link, dispatch_uid="tracking_link_saved")
@receiver(post_delete, sender=Link, dispatch_uid="tracking_link_deleted")
def _forget_link(sender, instance: Link, **kwargs) -> None:
    linkcache.forget(link_id=instance.pk, code=instance.code)


@receiver(setting_changed, dispatch_uid="tracking_settings_changed")
def _settings_changed(sender, setting: str, **kwargs) -> None:
    # Cached entries hold the destination resolved against these settings.
    if setting in ("MERCHANT_ALLOWED_HOSTS", "DEFAULT_LANDING_URL"):
        linkcache.clear()
