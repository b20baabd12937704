"""Recompute the daily rollups of a day range from the raw rows and report the differences."""

from __future__ import annotations

from datetime import date, timedelta

from django.core.management.base import BaseCommand, CommandError

from tracking.rebuild import rebuild_rollups
from tracking.rollups import program_today


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"Not a date (YYYY-MM-DD): {value!r}") from None


class Command(BaseCommand):
    help = (
        "Rebuild DailyLinkStats for --start..--end (inclusive, days in the program time zone) "
        "from clicks, referrals and commission entries; prints every counter that differed."
    )

    def add_arguments(self, parser):
        parser.add_argument("--start", type=_date, help="First day (default: 30 days ago).")
        parser.add_argument("--end", type=_date, help="Last day (default: today).")
        parser.add_argument("--partner", type=int, default=None, help="Only this partner id.")
        parser.add_argument("--dry-run", action="store_true", help="Report differences, write nothing.")
        parser.add_argument("--show", type=int, default=50, help="How many differences to print.")

    def handle(self, *args, start: date | None, end: date | None, partner, dry_run, show, **options):
        end = end or program_today()
        start = start or end - timedelta(days=29)
        if start > end:
            raise CommandError("--start must not be after --end.")
        report = rebuild_rollups(start, end, partner_id=partner, dry_run=dry_run)
        for difference in report.differences[:show]:
            self.stdout.write(str(difference))
        if len(report.differences) > show:
            self.stdout.write(f"… and {len(report.differences) - show} more.")
        style = self.style.SUCCESS if report.ok else self.style.WARNING
        self.stdout.write(style(report.summary()))
