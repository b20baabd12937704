"""The integration's health for the admin: the last event received, the events held waiting for a
prerequisite, and the webhook's verification failures.

A request that fails verification writes nothing to the database (docs/reference.md): its failure is
counted in the cache instead (per day, kept a week) with the last one's time and reason, and
logged as a warning. Without Redis the count is per process."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.cache import cache
from django.utils import timezone
from redis.exceptions import RedisError

from commissions.stripe_billing.models import StripeEvent

logger = logging.getLogger(__name__)

_DAY_KEY = "stripe:verification-failures:{day}"
_LAST_KEY = "stripe:verification-failures:last"
_KEEP = 8 * 24 * 3600


def verification_failure_record(*, reason: str) -> None:
    now = timezone.now()
    key = _DAY_KEY.format(day=now.date().isoformat())
    logger.warning("Stripe webhook refused: %s", reason)
    try:
        cache.add(key, 0, timeout=_KEEP)
        cache.incr(key)
        cache.set(_LAST_KEY, {"at": now.isoformat(), "reason": reason[:300]}, timeout=_KEEP)
    except (RedisError, ValueError):
        logger.warning("Could not count a Stripe verification failure in the cache.")


@dataclass(frozen=True)
class StripeHealth:
    last_event: StripeEvent | None
    held: int
    failures_today: int
    failures_7d: int
    last_failure_at: datetime | None
    last_failure_reason: str


def stripe_health() -> StripeHealth:
    today = timezone.now().date()
    keys = [_DAY_KEY.format(day=(today - timedelta(days=n)).isoformat()) for n in range(7)]
    try:
        counts = cache.get_many(keys)
        last = cache.get(_LAST_KEY) or {}
    except RedisError:
        counts, last = {}, {}
    last_at = last.get("at")
    return StripeHealth(
        last_event=StripeEvent.objects.filter(source=StripeEvent.Source.WEBHOOK)
        .order_by("-received_at", "-id")
        .first(),
        held=StripeEvent.objects.filter(status=StripeEvent.Status.HELD).count(),
        failures_today=int(counts.get(keys[0], 0)),
        failures_7d=sum(int(value) for value in counts.values()),
        last_failure_at=datetime.fromisoformat(last_at) if last_at else None,
        last_failure_reason=last.get("reason", ""),
    )
