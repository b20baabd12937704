"""Recompute the commissions page's ledger day sums (``LedgerDay``) from the ledger and the
referrals' counts (``ReferralDay``, ``ReferralCount``) from the referrals, and the referrals' copies of
their clicks' sub-IDs (``commissions/referralsubs.py``), with the day function
re-created for the current ``PROGRAM_TIME_ZONE`` (run it after changing that, or after restoring
a dump loaded with triggers off). PostgreSQL only."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from commissions import ledgerdays, referraldays, referralsubs


class Command(BaseCommand):
    help = (
        "Recompute LedgerDay (the commissions page's totals per partner and day) from the ledger, and "
        "ReferralDay and ReferralCount (the referrals' counts) and the referrals' sub-IDs from the referrals."
    )

    def add_arguments(self, parser):
        parser.add_argument("--partner", type=int, action="append", help="Only these partner ids (repeatable).")

    def handle(self, *args, **options):
        if not ledgerdays.kept():
            raise CommandError("Ledger day sums are kept on PostgreSQL only; SQLite reads the ledger directly.")
        ledgerdays.recompute(partner_ids=options["partner"])
        # The referrals' day counts use the same day function; their status counts come along
        # (commissions/referraldays.py).
        referraldays.recompute(partner_ids=options["partner"])
        referralsubs.recompute(partner_ids=options["partner"])
        self.stdout.write(self.style.SUCCESS("Ledger day sums, referral counts and sub-IDs recomputed."))
