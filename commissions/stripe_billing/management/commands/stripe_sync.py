"""``manage.py stripe_sync --since YYYY-MM-DD``: apply what missed webhooks left out (commissions/stripe_billing/sync.py)."""

from __future__ import annotations

import sys
from datetime import date

import stripe
from django.core.management.base import BaseCommand, CommandError, CommandParser

from commissions.stripe_billing.sync import stripe_sync


class Command(BaseCommand):
    help = (
        "Read the checkouts, paid invoices and refunds created since a day from the Stripe API "
        "(STRIPE_API_KEY, STRIPE_API_BASE) and apply whatever the webhooks missed. Idempotent."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--since", type=date.fromisoformat, required=True, help="YYYY-MM-DD (UTC)")
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def handle(self, *args, **options) -> None:
        try:
            summary = stripe_sync(since=options["since"], progress=not options["no_progress"], progress_file=sys.stderr)
        except stripe.StripeError as exc:
            raise CommandError(f"Stripe answered: {exc.user_message or exc}") from exc
        for line in summary.lines():
            self.stdout.write(line)
