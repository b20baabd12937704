"""``loadbench``: synthetic data that is internally consistent (uniques, ledger, rollups)."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db.models import Count, F, Min, Q, Sum
from django.urls import reverse

from commissions.balance import partner_balance
from commissions.events import canonical_sha256
from commissions.models import CommissionEntry, MerchantEvent, Payment, Referral
from partners.models import Partner
from tests.reports.builders import monthly_differences
from tracking.models import Click, DailyLinkStats, UniqueVisitor
from tracking.rebuild import rebuild_rollups
from tracking.rollups import program_today

pytestmark = pytest.mark.django_db

ARGS = [
    "--partners",
    "2",
    "--clicks",
    "2000",
    "--referrals",
    "30",
    "--payments",
    "120",
    "--links",
    "12",
    "--no-progress",
]


def _run(*extra: str) -> str:
    out = StringIO()
    call_command("loadbench", *ARGS, *extra, stdout=out)
    return out.getvalue()


def _whole_history_rebuild(**kwargs):
    today = program_today()
    return rebuild_rollups(today - timedelta(days=400), today, **kwargs)


def test_a_small_run_leaves_rollups_equal_to_a_rebuild_from_its_rows():
    output = _run("--seed", "7")
    assert "bench@example.com / bench" in output
    report = _whole_history_rebuild(dry_run=True)
    assert report.differences == []
    # The monthly table follows the rollups even though the rows were loaded without triggers.
    assert monthly_differences() == []
    assert report.rows_checked > 0
    bench = Partner.objects.get(user__email="bench@example.com")
    assert Click.objects.filter(link__partner=bench).count() == 2000
    assert bench.links.count() == 12
    assert Referral.objects.filter(partner=bench).count() == 30
    assert Payment.objects.filter(partner=bench).count() == 120
    assert Partner.objects.count() == 3


def test_the_measured_partner_logs_in_with_the_printed_credentials(client):
    _run()
    response = client.post(reverse("partners:login"), {"username": "bench@example.com", "password": "bench"})
    assert response.status_code == 302
    assert client.get(reverse("partners:dashboard")).status_code == 200


def test_unique_clicks_match_the_unique_visitor_rows_and_repeat_visitors_exist():
    _run("--seed", "11")
    clicks = Click.objects.all()
    assert clicks.filter(is_unique=True).count() == UniqueVisitor.objects.count()
    assert clicks.filter(is_unique=False).exists()  # returning visitors
    pairs = clicks.values("link_id", "visitor_id").annotate(
        n=Count("pk"), uniques=Count("pk", filter=Q(is_unique=True)), first=Min("created_at")
    )
    firsts = {(v.link_id, v.visitor_id): v.first_click_at for v in UniqueVisitor.objects.all()}
    for pair in pairs:
        assert pair["uniques"] == 1
        assert firsts[(pair["link_id"], pair["visitor_id"])] == pair["first"]
    unique_first = clicks.filter(is_unique=True).values_list("link_id", "visitor_id", "created_at")
    assert all(firsts[(link, visitor)] == at for link, visitor, at in unique_first)


def test_the_ledger_adds_up_and_the_dashboard_balance_is_current():
    _run("--seed", "3")
    for referral in Referral.objects.annotate(entries=Sum("commission_entries__amount")):
        assert referral.total_commission == (referral.entries or 0)
    payments = Payment.objects.annotate(refunded=Sum("refunds__amount"))
    assert all(p.refunded_amount == (p.refunded or 0) for p in payments)
    assert not Payment.objects.filter(refunded_amount__gt=F("amount")).exists()
    assert CommissionEntry.objects.filter(kind="commission").count() == Payment.objects.count()
    assert MerchantEvent.objects.filter(type="payment.succeeded").count() == Payment.objects.count()
    for event in MerchantEvent.objects.all()[:50]:
        assert event.body_sha256 == canonical_sha256(json.loads(event.body))  # replays would match
    for partner in Partner.objects.all():
        assert partner.balance == partner_balance(partner=partner)
    paying = Referral.objects.filter(first_paid_at__isnull=False)
    assert not paying.filter(first_paid_at__lt=F("signed_up_at")).exists()
    assert not Referral.objects.filter(signed_up_at__lt=F("click__created_at")).exists()


def test_running_twice_adds_more_data_and_never_collides():
    _run("--seed", "5")
    rows_after_first = DailyLinkStats.objects.aggregate(clicks=Sum("clicks"))["clicks"]
    _run("--seed", "5")  # the same seed: ids, codes and emails still differ per run
    assert Partner.objects.filter(user__email="bench@example.com").count() == 1
    assert Partner.objects.count() == 5
    assert Click.objects.count() == 2 * rows_after_first
    assert _whole_history_rebuild(dry_run=True).differences == []


def test_impossible_requests_are_refused_with_a_message():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="referrals cannot exceed"):
        call_command("loadbench", "--clicks", "5", "--referrals", "10", "--payments", "0", "--partners", "0")


def test_every_reference_written_points_at_an_existing_row():
    # On PostgreSQL loadbench may skip the per-row foreign-key triggers; prove nothing dangles.
    _run("--seed", "13")
    from commissions.models import Refund

    for model in (Click, UniqueVisitor, Referral, MerchantEvent, Payment, Refund, CommissionEntry, DailyLinkStats):
        for field in model._meta.concrete_fields:
            if not field.is_relation:
                continue
            dangling = model.objects.exclude(**{f"{field.attname}__isnull": True}).exclude(
                **{f"{field.attname}__in": field.related_model.objects.values("pk")}
            )
            assert not dangling.exists(), f"{model.__name__}.{field.name}"


def test_clicks_carry_realistic_sub_ids_referrers_devices_and_countries_in_their_rollups():
    from tracking.models import DailyDimensionStats

    _run("--seed", "5")
    clicks = Click.objects.all()
    assert clicks.exclude(sub1="").exists() and clicks.filter(sub1="").exists()
    assert set(clicks.values_list("device", flat=True)) >= {"desktop", "mobile"}
    assert clicks.exclude(referrer_host="").exists() and clicks.exclude(country="").exists()
    for dimension in ("sub1", "referrer", "device", "country"):
        assert DailyDimensionStats.objects.filter(dimension=dimension).exists()
    assert _whole_history_rebuild(dry_run=True).differences == []
