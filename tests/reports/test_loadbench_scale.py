"""``loadbench --merchant-scale`` (the admin's data) and ``--payouts`` (the measured partner's
payout history): consistent data, scaled down."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.db.models import Count, Q, Sum

from commissions.balance import partner_balance
from commissions.models import CommissionEntry, LedgerDay, MerchantEvent, Payment, Referral, ReferralDay, Refund
from partners.models import Partner
from payouts.models import Payout
from tests.reports.builders import monthly_differences
from tracking.rebuild import rebuild_rollups
from tracking.rollups import program_today

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def _referral_day_differences() -> dict:
    """(partner, status) whose ReferralDay count differs from COUNT(*) over the referrals (the
    referrals are copied in with the triggers off: loadbench recomputes the counts)."""
    kept = {
        (row["partner_id"], row["status"]): row["n"]
        for row in ReferralDay.objects.values("partner_id", "status").annotate(n=Sum("referrals"))
        if row["n"]
    }
    counted = {
        (row["partner_id"], row["status"]): row["n"]
        for row in Referral.objects.values("partner_id", "status").annotate(n=Count("id"))
    }
    return {
        key: (kept.get(key), counted.get(key))
        for key in kept.keys() | counted.keys()
        if kept.get(key) != counted.get(key)
    }


def test_merchant_scale_writes_the_issues_proportions_consistently():
    call_command("loadbench", "--merchant-scale", "--merchant-scale-factor", "0.001", stdout=StringIO())
    partners = Partner.objects.filter(referral_code__startswith="m")
    assert partners.count() == 10
    assert Payout.objects.count() == 200
    assert CommissionEntry.objects.count() == 2000
    assert MerchantEvent.objects.count() == 1000
    assert Payment.objects.count() + Refund.objects.count() == 2000
    # Every status, and at most one open payout per partner (the database enforces it too).
    assert set(Payout.objects.values_list("status", flat=True)) == {s.value for s in Payout.Status}
    open_per_partner = Payout.objects.filter(status__in=Payout.OPEN_STATUSES).values("partner").annotate(n=Count("id"))
    assert max(row["n"] for row in open_per_partner) == 1
    # Each refund has its reversal; the ledger day sums, the rollups and the balances agree.
    assert CommissionEntry.objects.filter(kind="reversal").count() == Refund.objects.count()
    assert (
        LedgerDay.objects.aggregate(s=Sum("commission"))["s"] == CommissionEntry.objects.aggregate(s=Sum("amount"))["s"]
    )
    assert LedgerDay.objects.aggregate(n=Sum("entries"))["n"] == 2000
    assert Referral.objects.exists() and _referral_day_differences() == {}
    for partner in partners:
        assert partner.balance == partner_balance(partner=partner)
    today = program_today()
    first = CommissionEntry.objects.order_by("earned_at").values_list("earned_at", flat=True).first()
    report = rebuild_rollups(first.date(), today, dry_run=True)
    assert report.differences == []
    assert monthly_differences() == []


def test_payouts_give_the_measured_partner_a_history_with_one_open_payout():
    args = ["--partners", "0", "--clicks", "300", "--referrals", "5", "--payments", "40", "--links", "2"]
    call_command("loadbench", *args, "--payouts", "30", "--no-progress", stdout=StringIO())
    partner = Partner.objects.get(user__email="bench@example.com")
    payouts = Payout.objects.filter(partner=partner)
    assert payouts.count() == 30
    assert payouts.filter(status__in=Payout.OPEN_STATUSES).count() == 1
    assert payouts.filter(Q(status="rejected") & Q(rejection_reason="")).count() == 0
    assert partner.balance == partner_balance(partner=partner) > 0
    assert _referral_day_differences() == {}
