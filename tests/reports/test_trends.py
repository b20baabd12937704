"""Trend series: aligned with their days, zero-filled, summing to the totals, in program days."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.db.models import Sum
from django.utils import timezone

from commissions.models import CommissionEntry, Referral
from tests.factories import LinkFactory, PartnerFactory
from tests.reports import builders as b
from tracking.models import Click
from tracking.reports import partner_trends, period_presets
from tracking.rollups import day_start, program_today

pytestmark = pytest.mark.django_db


def test_every_series_has_one_value_per_day_and_sums_to_the_range_totals(partner):
    now = timezone.now()
    links = [partner.links.get(), LinkFactory(partner=partner)]
    for i in range(12):
        link = links[i % 2]
        at = now - timedelta(days=i * 3, hours=i)
        first = b.click(link, f"visitor-{i % 5}", at)
        b.click(link, f"visitor-{i % 5}", at + timedelta(minutes=1))
        if i % 3 == 0:
            referral = b.signup(first, at + timedelta(minutes=5))
            payment = b.pay(referral, f"{40 + i}.50", at + timedelta(minutes=10))
            if i % 2 == 0:
                b.refund(payment, "10.00", at + timedelta(minutes=20))
    other = PartnerFactory()
    b.pay(b.signup(b.click(other.links.get(), "x", now), now), "999.00", now)

    end = program_today()
    start = end - timedelta(days=29)
    trends = partner_trends(partner, start, end)

    assert trends.days == [start + timedelta(days=i) for i in range(30)]
    for series in (trends.commission, trends.new_trials, trends.new_subscriptions, trends.unique_clicks):
        assert len(series) == 30
    since, until = day_start(start), day_start(end + timedelta(days=1))
    entries = CommissionEntry.objects.filter(partner=partner, earned_at__gte=since, earned_at__lt=until)
    referrals = Referral.objects.filter(partner=partner)
    assert trends.totals == {
        "commission": entries.aggregate(total=Sum("amount"))["total"],
        "new_trials": referrals.filter(signed_up_at__gte=since, signed_up_at__lt=until).count(),
        "new_subscriptions": referrals.filter(first_paid_at__gte=since, first_paid_at__lt=until).count(),
        "unique_clicks": Click.objects.filter(
            link__partner=partner, is_unique=True, created_at__gte=since, created_at__lt=until
        ).count(),
    }
    assert trends.totals["unique_clicks"] > 0 and trends.totals["commission"] > 0
    assert 0 in trends.unique_clicks  # days without activity are zero-filled


def test_days_are_calendar_days_in_the_program_time_zone(settings, partner):
    settings.TIME_ZONE = "America/New_York"
    link = partner.links.get()
    # 03:30 UTC on March 10 is still March 9 in New York.
    b.click(link, "night-owl", datetime(2026, 3, 10, 3, 30, tzinfo=UTC))
    trends = partner_trends(partner, date(2026, 3, 9), date(2026, 3, 10))
    assert trends.unique_clicks == [1, 0]


def test_a_range_without_activity_is_all_zeros(partner):
    trends = partner_trends(partner, date(2020, 1, 1), date(2020, 1, 7))
    assert trends.is_empty
    assert trends.commission == [Decimal("0.00")] * 7
    assert trends.unique_clicks == [0] * 7


def test_period_presets_cover_the_calendar():
    presets = period_presets(date(2026, 3, 15))
    assert presets["7d"] == (date(2026, 3, 9), date(2026, 3, 15))
    assert presets["30d"] == (date(2026, 2, 14), date(2026, 3, 15))
    assert presets["90d"] == (date(2025, 12, 16), date(2026, 3, 15))
    assert presets["this_month"] == (date(2026, 3, 1), date(2026, 3, 15))
    assert presets["last_month"] == (date(2026, 2, 1), date(2026, 2, 28))
    assert period_presets(date(2026, 1, 5))["last_month"] == (date(2025, 12, 1), date(2025, 12, 31))
