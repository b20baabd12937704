"""``manage.py simulate``: play the merchant's side for N days (see devtools/simulator.py)."""

from __future__ import annotations

import sys
from datetime import date

from django.core.management.base import BaseCommand, CommandError, CommandParser

from devtools.simulator import partners_from_db, simulate


class Command(BaseCommand):
    help = (
        "Simulate the merchant over the last N days through the public interfaces: visitors follow "
        "partners' links (/r/<code>) and the merchant posts signed events to /api/v1/events. "
        "Deterministic for a seed; running it again with the same arguments replays (no duplicates)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, default=30, help="Number of days to simulate (default 30).")
        parser.add_argument("--seed", type=int, default=1, help="Random seed (default 1).")
        parser.add_argument(
            "--partner",
            action="append",
            dest="partners",
            metavar="EMAIL",
            help="Only this partner's links (repeatable). Default: every active partner.",
        )
        parser.add_argument(
            "--visitors-per-day",
            type=float,
            default=20.0,
            help="Average unique visitors a day per partner (default 20; grows over the period).",
        )
        parser.add_argument(
            "--until",
            type=date.fromisoformat,
            default=None,
            help="The simulated days end at the start of this day (YYYY-MM-DD; default today).",
        )
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")
        parser.add_argument(
            "--via",
            choices=("events", "stripe"),
            default="events",
            help="How the merchant reports: signed /api/v1/events (default) or Stripe Billing webhooks "
            "to /api/v1/integrations/stripe (signed with STRIPE_WEBHOOK_SECRET).",
        )

    def handle(self, *args, **options) -> None:
        if options["days"] < 1 or options["days"] > 3650:
            raise CommandError("--days must be between 1 and 3650.")
        if options["visitors_per_day"] < 0:
            raise CommandError("--visitors-per-day must not be negative.")
        partners = partners_from_db(options["partners"])
        if options["partners"]:
            found = {p.email for p in partners}
            missing = sorted({e.lower() for e in options["partners"]} - found)
            if missing:
                raise CommandError(f"No active partner with email {', '.join(missing)}.")
        if not partners:
            raise CommandError("There are no active partners to simulate (run `manage.py demo` first).")
        summary = simulate(
            partners=partners,
            seed=options["seed"],
            days=options["days"],
            until=options["until"],
            visitors_per_day=options["visitors_per_day"],
            progress=not options["no_progress"],
            progress_file=sys.stderr,
            via=options["via"],
        )
        for line in summary.lines():
            self.stdout.write(line)
        if summary.errors:
            for error in summary.errors[:5]:
                self.stderr.write(error)
            raise CommandError(f"{len(summary.errors)} requests were not answered as expected.")
