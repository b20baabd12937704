"""A short simulation through the real redirect and the real events API."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db.models import Sum
from django.test.utils import override_settings

from commissions.models import CommissionEntry, MerchantEvent, Payment, Referral, Refund
from commissions.money import cents
from config.celery_app import app as celery_app
from devtools import simulator
from devtools.simulator import partners_from_db, simulate
from tests.factories import LinkFactory, PartnerFactory
from tracking import linkcache
from tracking.models import Click, DailyLinkStats, UniqueVisitor
from tracking.rebuild import rebuild_rollups
from tracking.rollups import day_start, program_day, program_today

# A fixed end, so the days (and their weekdays) are the same whenever the test runs.
UNTIL = date(2026, 3, 2)
DAYS = 20
START = day_start(UNTIL) - timedelta(days=DAYS)
RATE = Decimal("0.20")

pytestmark = pytest.mark.django_db


def busy_merchant(patch: pytest.MonkeyPatch) -> None:
    """Little traffic but high rates, so twenty days show every kind of event."""
    patch.setattr(simulator, "SIGNUP_RATE", 0.25)
    patch.setattr(simulator, "REFUND_RATE", 0.35)
    patch.setattr(simulator, "MONTHLY_CHURN", 0.3)


def _partners():
    alice = PartnerFactory(user__email="alice@example.com", website="https://alice.example.net/")
    LinkFactory(
        partner=alice,
        description="Blog review — pricing page",
        trial_days=30,
        destination="https://crazycall.com/pricing",
    )
    LinkFactory(partner=alice, description="YouTube description", trial_days=14, destination="https://crazycall.com/")
    PartnerFactory(user__email="bob@example.com")


def _simulate(seed: int = 7, visitors_per_day: float = 6):
    return simulate(
        partners=partners_from_db(),
        seed=seed,
        days=DAYS,
        until=UNTIL,
        visitors_per_day=visitors_per_day,
        organic_per_day=0.6,
    )


@pytest.fixture(scope="module")
def simulated(django_db_setup, django_db_blocker):
    """One simulation for the module, committed like the real command does, flushed afterwards."""
    eager = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    hashers = override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"])
    with pytest.MonkeyPatch.context() as patch, django_db_blocker.unblock(), hashers:
        busy_merchant(patch)
        linkcache.clear()
        _partners()
        yield _simulate()
        call_command("flush", interactive=False, verbosity=0)
        linkcache.clear()
    celery_app.conf.task_always_eager = eager


def test_every_request_is_answered_as_the_contract_says(simulated):
    assert simulated.errors == []
    assert set(simulated.responses) == {201}
    assert simulated.clicks["recorded"] > 100
    assert "not_counted" not in simulated.clicks


def test_clicks_are_recorded_through_the_redirect_and_moved_into_the_simulated_days(simulated):
    clicks = Click.objects.all()
    assert clicks.count() == simulated.clicks["recorded"]
    assert not clicks.filter(created_at__lt=START).exists()
    assert not clicks.filter(created_at__gte=day_start(UNTIL)).exists()
    # Real browsers: the redirect's bot filter let them through, with their user agents.
    assert clicks.exclude(user_agent__startswith="Mozilla/5.0").count() == 0
    # Repeat visitors: more clicks than unique clicks, one unique click per (link, visitor).
    unique = clicks.filter(is_unique=True).count()
    assert unique < clicks.count()
    assert unique == UniqueVisitor.objects.count()
    assert not UniqueVisitor.objects.filter(first_click_at__gte=day_start(UNTIL)).exists()


def test_referrals_end_up_in_trial_paying_and_cancelled(simulated):
    statuses = set(Referral.objects.values_list("status", flat=True))
    assert {"trial", "paying", "cancelled"} <= statuses
    assert Referral.objects.count() == simulated.referrals
    assert set(Referral.objects.values_list("trial_days", flat=True)) == {14, 30}


def test_referrals_signed_up_in_the_simulated_days_after_their_click(simulated):
    for referral in Referral.objects.select_related("click"):
        assert START <= referral.click.created_at < referral.signed_up_at < day_start(UNTIL)


def test_payments_and_refunds_are_recorded_for_referrals(simulated):
    assert Payment.objects.count() > 0
    assert Refund.objects.count() > 0
    assert Payment.objects.aggregate(s=Sum("amount"))["s"] == simulated.referred_payments_total
    assert Refund.objects.aggregate(s=Sum("amount"))["s"] == simulated.referred_refunds_total


def test_customers_no_partner_referred_are_sent_too_and_answered_null(simulated):
    signups = MerchantEvent.objects.filter(type="customer.signed_up")
    assert signups.count() == simulated.events["customer.signed_up"]
    assert signups.filter(response_body__referral=None).count() == signups.count() - simulated.referrals > 0


def test_commissions_are_twenty_percent_rounded_and_refunds_reverse_them(simulated):
    for entry in CommissionEntry.objects.filter(kind="commission").select_related("payment", "referral"):
        expected = Decimal("0.00") if entry.referral.is_self_referral else cents(entry.payment.amount * RATE)
        assert entry.amount == expected
    for payment in Payment.objects.filter(referral__is_self_referral=False).prefetch_related("refunds__entry"):
        refunded = Decimal("0.00")
        for refund in payment.refunds.all():
            refunded += refund.amount
            if refunded < payment.amount:
                assert refund.entry.amount == -cents(refund.amount * RATE)
        net = payment.commission_entries.aggregate(s=Sum("amount"))["s"]
        if refunded == payment.amount:
            assert net == Decimal("0.00")
    total = CommissionEntry.objects.aggregate(s=Sum("amount"))["s"]
    assert total == simulated.commission_total


def test_the_daily_rollups_equal_a_rebuild_from_the_raw_rows(simulated):
    report = rebuild_rollups(program_day(START), program_today(), dry_run=True)
    assert report.ok, report.differences[:5]
    assert DailyLinkStats.objects.aggregate(s=Sum("clicks"))["s"] == Click.objects.count()
    assert not DailyLinkStats.objects.filter(day__gte=UNTIL).exclude(clicks=0).exists()


def test_running_the_same_simulation_again_replays_without_adding_anything(simulated, monkeypatch):
    busy_merchant(monkeypatch)
    counts = {m: m.objects.count() for m in (Click, Referral, Payment, Refund, CommissionEntry, MerchantEvent)}
    again = _simulate()
    assert again.errors == []
    assert set(again.responses) == {200}
    assert again.clicks == {"already_recorded": simulated.clicks["recorded"]}
    assert {m: m.objects.count() for m in counts} == counts
    assert again.commission_total == simulated.commission_total
