"""Delete raw clicks past a retention age; reports keep their numbers (tracking/retention.py)."""

from __future__ import annotations

import re
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError

from tracking.retention import DEFAULT_BATCH, RetentionError, clicks_prune

_AGE = re.compile(r"(\d+)d")


def _age(value: str) -> timedelta:
    match = _AGE.fullmatch(value.strip())
    if not match:
        raise CommandError(f"--older-than takes days, e.g. 400d, not {value!r}.")
    return timedelta(days=int(match.group(1)))


class Command(BaseCommand):
    help = (
        "Delete clicks older than --older-than (e.g. 400d; must exceed the attribution window) in batches. "
        "Every report reads the rollups and stays exactly equal; clicks a referral points to are kept. "
        "Safe to stop and rerun. Run it monthly from cron or a systemd timer."
    )

    def add_arguments(self, parser):
        parser.add_argument("--older-than", required=True, help="Retention age in days, e.g. 400d.")
        parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH, help="Clicks per transaction.")
        parser.add_argument("--dry-run", action="store_true", help="Count what would be deleted; delete nothing.")

    def handle(self, *args, older_than: str, batch_size: int, dry_run: bool, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        try:
            total = clicks_prune(older_than=_age(older_than), batch_size=batch_size, dry_run=dry_run)
        except RetentionError as exc:
            raise CommandError(str(exc)) from None
        verb = "Would delete" if dry_run else "Deleted"
        self.stdout.write(self.style.SUCCESS(f"{verb} {total} clicks older than {older_than}."))
