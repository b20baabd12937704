"""Raw-click retention: delete clicks past an age, leaving every report as it was.

No report reads raw clicks: the numbers live in the daily rollups (and their monthly sums),
which are counted as each click is written and never recomputed from clicks unless an operator
runs ``rebuild_rollups`` (so never run it over pruned days: it would count the clicks that are
gone). Unique clicks are decided by ``UniqueVisitor`` rows, which stay, so a visitor whose old
click was pruned is still not counted unique again. Attribution needs a click only inside the
attribution window, so the retention age must be longer than the window. A click that a
referral points to (the referral's timeline shows it) is kept whatever its age.

Each batch is its own short transaction, one link at a time along the (link, created_at) index,
so pruning a large table neither holds long locks nor scans it whole for every batch, and can be
stopped and run again at any point.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from config.errors import PortalError

logger = logging.getLogger(__name__)

DEFAULT_BATCH = 5_000


class RetentionError(PortalError):
    """A retention age that would break attribution."""


def prune_cutoff(*, older_than: timedelta, now: datetime | None = None) -> datetime:
    window = timedelta(days=settings.ATTRIBUTION_WINDOW_DAYS)
    if older_than <= window:
        raise RetentionError(
            f"Clicks younger than the attribution window ({settings.ATTRIBUTION_WINDOW_DAYS} days) can still "
            f"be attributed; choose an age above it, not {older_than.days} days."
        )
    return (now or timezone.now()) - older_than


def clicks_prune(
    *,
    older_than: timedelta,
    batch_size: int = DEFAULT_BATCH,
    now: datetime | None = None,
    dry_run: bool = False,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Delete the clicks created before ``now - older_than`` that no referral points to; return
    how many were deleted (or, with ``dry_run``, would be)."""
    from commissions.models import Referral
    from tracking.models import Click, Link

    cutoff = prune_cutoff(older_than=older_than, now=now)
    total = 0
    for link_id in Link.objects.order_by("pk").values_list("pk", flat=True).iterator():
        old = Click.objects.filter(link_id=link_id, created_at__lt=cutoff).exclude(
            Exists(Referral.objects.filter(click_id=OuterRef("pk")))
        )
        if dry_run:
            total += old.count()
            continue
        while True:
            with transaction.atomic():
                ids = list(old.order_by("created_at").values_list("pk", flat=True)[:batch_size])
                if ids:
                    Click.objects.filter(pk__in=ids).delete()
            total += len(ids)
            if ids and progress is not None:
                progress(total)
            if len(ids) < batch_size:
                break
    logger.info("Pruned %d clicks created before %s.", total, cutoff.isoformat())
    return total
