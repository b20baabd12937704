"""Daily rollups: the incremental counters equal a rebuild from the raw rows, a rebuild finds
and repairs drift, and concurrent writers lose nothing."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from commissions.models import Payment, Referral
from commissions.money import cents
from config.celery_app import app as celery_app
from tests.factories import LinkFactory, PartnerFactory
from tests.reports import builders as b
from tracking import monthly
from tracking.models import DailyLinkStats, LinkMonthlyStats
from tracking.rebuild import rebuild_rollups, rebuild_rollups_task
from tracking.reports import partner_summary
from tracking.rollups import program_day, rollup_add

# Europe/Warsaw switches to summer time at 01:00 UTC on 2026-03-29: days there are not UTC
# days, and one of them is 23 hours long.
BASE = datetime(2026, 3, 28, 22, 30, tzinfo=UTC)


def _snapshot() -> dict:
    return {
        (row.link_id, row.day): (row.clicks, row.unique_clicks, row.new_trials, row.new_subscriptions, row.commission)
        for row in DailyLinkStats.objects.all()
    }


_click = st.tuples(st.just("click"), st.integers(0, 2), st.integers(0, 4), st.integers(-72 * 60, 72 * 60))
_signup = st.tuples(st.just("signup"), st.integers(0, 40), st.integers(0, 30 * 60), st.just(0))
_pay = st.tuples(st.just("pay"), st.integers(0, 20), st.integers(1, 99_999), st.integers(0, 40 * 60))
_refund = st.tuples(st.just("refund"), st.integers(0, 20), st.integers(1, 100), st.integers(0, 30 * 60))
_cancel = st.tuples(st.just("cancel"), st.integers(0, 20), st.just(0), st.integers(0, 30 * 60))
OPERATIONS = st.lists(st.one_of(_click, _click, _signup, _pay, _refund, _cancel), min_size=1, max_size=30)


class _Rollback(Exception):
    pass


def _isolated(body: Callable[[], None]) -> None:
    """Run one hypothesis example in a transaction that is rolled back afterwards."""
    try:
        with transaction.atomic():
            body()
            raise _Rollback
    except _Rollback:
        pass


@pytest.mark.django_db
@hypothesis_settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(operations=OPERATIONS)
def test_a_rebuild_equals_the_incremental_counts_after_any_sequence_of_clicks_and_events(settings, operations):
    settings.TIME_ZONE = "Europe/Warsaw"

    def play() -> None:
        partner = PartnerFactory()
        links = [partner.links.get(), LinkFactory(partner=partner, trial_days=30), LinkFactory(partner=partner)]
        clicks, referrals, payments = [], [], []
        for kind, a, c, minutes in operations:
            if kind == "click":
                clicks.append(b.click(links[a], f"visitor-{c}", BASE + timedelta(minutes=minutes)))
            elif kind == "signup" and clicks:
                source = clicks[a % len(clicks)]
                if not Referral.objects.filter(click=source).exists():
                    referrals.append(b.signup(source, source.created_at + timedelta(minutes=c)))
            elif kind == "pay" and referrals:
                referral = referrals[a % len(referrals)]
                amount = f"{Decimal(c) / 100:.2f}"
                payments.append(b.pay(referral, amount, referral.signed_up_at + timedelta(minutes=minutes)))
            elif kind == "refund" and payments:
                payment = Payment.objects.get(payment_id=payments[a % len(payments)])
                left = payment.amount - payment.refunded_amount
                amount = max(Decimal("0.01"), cents(left * c / 100))
                if left > 0 and amount <= left:
                    b.refund(payment.payment_id, f"{amount:.2f}", payment.paid_at + timedelta(minutes=minutes))
            elif kind == "cancel" and referrals:
                referral = referrals[a % len(referrals)]
                b.cancel(referral, referral.signed_up_at + timedelta(minutes=minutes))

        before = _snapshot()
        assert b.monthly_differences() == []
        first, last = program_day(BASE - timedelta(days=4)), program_day(BASE + timedelta(days=4))
        report = rebuild_rollups(first, last, dry_run=True)
        assert report.differences == []
        report = rebuild_rollups(first, last)
        assert report.rows_written == 0
        assert _snapshot() == before

    _isolated(play)


@pytest.fixture
def drifted(partner):
    """A partner whose counters were tampered with in three ways."""
    link = partner.links.get()
    day = date(2026, 2, 10)
    at = datetime(2026, 2, 10, 12, tzinfo=UTC)
    b.click(link, "a", at)
    b.click(link, "a", at)
    b.pay(b.signup(b.click(link, "b", at), at), "50.00", at)
    # Too many clicks on a real day, counters on a day with no raw rows, a missing row.
    rollup_add(link_id=link.pk, partner_id=partner.pk, day=day, clicks=5)
    rollup_add(
        link_id=link.pk, partner_id=partner.pk, day=date(2026, 2, 11), unique_clicks=2, commission=Decimal("1.50")
    )
    b.click(link, "c", datetime(2026, 2, 12, 9, tzinfo=UTC))
    DailyLinkStats.objects.filter(day=date(2026, 2, 12)).delete()
    return partner, link


@pytest.mark.django_db
def test_a_dry_run_reports_each_wrong_counter_and_writes_nothing(drifted):
    _, link = drifted
    report = rebuild_rollups(date(2026, 2, 1), date(2026, 2, 28), dry_run=True)
    found = {(d.link_id, d.day, d.counter, d.old, d.new) for d in report.differences}
    assert found == {
        (link.pk, date(2026, 2, 10), "clicks", 8, 3),
        (link.pk, date(2026, 2, 11), "unique_clicks", 2, 0),
        (link.pk, date(2026, 2, 11), "commission", Decimal("1.50"), Decimal("0.00")),
        (link.pk, date(2026, 2, 12), "clicks", 0, 1),
        (link.pk, date(2026, 2, 12), "unique_clicks", 0, 1),
    }
    assert DailyLinkStats.objects.get(day=date(2026, 2, 10)).clicks == 8


@pytest.mark.django_db
def test_a_rebuild_repairs_the_counters_and_a_second_one_finds_nothing(drifted):
    partner, link = drifted
    report = rebuild_rollups(date(2026, 2, 1), date(2026, 2, 28))
    assert len(report.differences) == 5 and report.rows_written == 3
    rows = {row.day: row for row in DailyLinkStats.objects.filter(link=link)}
    assert (rows[date(2026, 2, 10)].clicks, rows[date(2026, 2, 10)].unique_clicks) == (3, 2)
    assert rows[date(2026, 2, 10)].new_trials == 1 and rows[date(2026, 2, 10)].new_subscriptions == 1
    assert rows[date(2026, 2, 10)].commission == Decimal("10.00")
    assert (rows[date(2026, 2, 11)].unique_clicks, rows[date(2026, 2, 11)].commission) == (0, Decimal("0.00"))
    assert rows[date(2026, 2, 12)].partner_id == partner.pk
    assert rebuild_rollups(date(2026, 2, 1), date(2026, 2, 28)).ok


@pytest.mark.django_db
def test_a_rebuild_brings_the_commission_kpi_back_to_the_ledger(drifted):
    partner, _ = drifted
    assert b.monthly_differences() == []  # the month rows followed the tampering, the deletion too
    assert partner_summary(partner).commission == Decimal("11.50")  # 10.00 + the drift
    rebuild_rollups(date(2026, 2, 1), date(2026, 2, 28), partner_id=partner.pk)
    assert partner_summary(partner).commission == Decimal("10.00")
    assert b.monthly_differences() == []


@pytest.mark.django_db
def test_month_rows_follow_inserts_updates_and_deletes_of_daily_rows(partner):
    link = LinkFactory(partner=partner)
    for day in (date(2026, 1, 31), date(2026, 2, 1), date(2026, 2, 27)):
        rollup_add(link_id=link.pk, partner_id=partner.pk, day=day, clicks=2, commission=Decimal("1.25"))
    rollup_add(link_id=link.pk, partner_id=partner.pk, day=date(2026, 2, 1), unique_clicks=1)
    DailyLinkStats.objects.filter(day=date(2026, 2, 27)).update(clicks=7)
    DailyLinkStats.objects.filter(day=date(2026, 1, 31)).delete()
    months = {m.month: (m.clicks, m.unique_clicks, m.commission) for m in LinkMonthlyStats.objects.filter(link=link)}
    assert months == {date(2026, 1, 1): (0, 0, Decimal("0.00")), date(2026, 2, 1): (9, 1, Decimal("2.50"))}
    assert b.monthly_differences() == []


@pytest.mark.django_db
def test_month_rows_follow_a_daily_row_moved_to_another_month_or_link_and_many_rows_at_once(partner):
    link, other = LinkFactory(partner=partner), LinkFactory(partner=partner)
    for day in (date(2026, 3, 30), date(2026, 3, 31), date(2026, 4, 1)):
        rollup_add(link_id=link.pk, partner_id=partner.pk, day=day, clicks=3, new_trials=1, commission=Decimal("2.10"))
    DailyLinkStats.objects.filter(link=link, day=date(2026, 3, 31)).update(day=date(2026, 5, 2))
    DailyLinkStats.objects.filter(link=link, day=date(2026, 3, 30)).update(link=other, clicks=5)
    DailyLinkStats.objects.filter(link__partner=partner).update(new_subscriptions=2)  # several rows, one statement
    DailyLinkStats.objects.filter(link=link, day=date(2026, 4, 1)).update(clicks=3)  # unchanged: no trigger call
    months = {
        (m.link_id, m.month): (m.clicks, m.new_trials, m.new_subscriptions, m.commission)
        for m in LinkMonthlyStats.objects.filter(partner=partner)
    }
    assert months == {
        (link.pk, date(2026, 3, 1)): (0, 0, 0, Decimal("0.00")),
        (link.pk, date(2026, 4, 1)): (3, 1, 2, Decimal("2.10")),
        (link.pk, date(2026, 5, 1)): (3, 1, 2, Decimal("2.10")),
        (other.pk, date(2026, 3, 1)): (5, 1, 2, Decimal("2.10")),
    }
    assert b.monthly_differences() == []


@pytest.mark.django_db
@pytest.mark.postgres
def test_recompute_rebuilds_the_month_rows_of_daily_rows_written_with_triggers_off(partner):
    link = LinkFactory(partner=partner)
    rollup_add(link_id=link.pk, partner_id=partner.pk, day=date(2026, 6, 3), clicks=4)
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
        rollup_add(link_id=link.pk, partner_id=partner.pk, day=date(2026, 6, 4), clicks=6)
        rollup_add(link_id=link.pk, partner_id=partner.pk, day=date(2026, 7, 1), clicks=1)
        cursor.execute("SET session_replication_role = origin")
    assert b.monthly_differences() != []
    monthly.recompute([partner.pk])
    assert b.monthly_differences() == []
    assert LinkMonthlyStats.objects.get(link=link, month=date(2026, 6, 1)).clicks == 10


@pytest.mark.django_db
def test_a_link_with_rollups_can_still_be_deleted(partner):
    link = LinkFactory(partner=partner)
    rollup_add(link_id=link.pk, partner_id=partner.pk, day=date(2026, 2, 3), clicks=4)
    link.delete()
    assert not LinkMonthlyStats.objects.filter(link_id=link.pk).exists()


@pytest.mark.django_db
def test_a_rebuild_for_one_partner_leaves_the_others_alone(drifted):
    partner, _ = drifted
    other = PartnerFactory()
    other_link = other.links.get()
    rollup_add(link_id=other_link.pk, partner_id=other.pk, day=date(2026, 2, 10), clicks=7)
    report = rebuild_rollups(date(2026, 2, 1), date(2026, 2, 28), partner_id=partner.pk)
    assert {d.link_id for d in report.differences} == {partner.links.get().pk}
    assert DailyLinkStats.objects.get(link=other_link).clicks == 7


@pytest.mark.django_db
def test_the_command_prints_the_differences_and_a_summary(drifted, capsys):
    call_command("rebuild_rollups", "--start", "2026-02-01", "--end", "2026-02-28")
    out = capsys.readouterr().out
    assert f"link {drifted[1].pk} 2026-02-10 clicks: 8 -> 3" in out
    assert "5 differences" in out
    call_command("rebuild_rollups", "--start", "2026-02-01", "--end", "2026-02-28")
    assert "0 differences" in capsys.readouterr().out


@pytest.mark.django_db
def test_the_celery_task_is_registered_by_name_and_rebuilds_a_range(drifted):
    assert "tracking.rollups.rebuild_rollups_task" in celery_app.tasks
    result = rebuild_rollups_task.delay("2026-02-01", "2026-02-28").get()
    assert result["difference_count"] == 5
    assert result["differences"][0]["old"] in {"8", "2", "1.50", "0"}
    assert rebuild_rollups_task.delay("2026-02-01", "2026-02-28").get()["difference_count"] == 0


@pytest.mark.django_db
def test_a_rebuild_spanning_several_chunks_covers_every_day(partner):
    link = partner.links.get()
    for month in range(1, 7):
        b.click(link, f"v{month}", datetime(2025, month, 15, 12, tzinfo=UTC))
    DailyLinkStats.objects.all().delete()
    report = rebuild_rollups(date(2025, 1, 1), date(2025, 6, 30))
    assert report.rows_written == 6
    assert DailyLinkStats.objects.filter(link=link).count() == 6


def _run_threads(count: int, target: Callable[[int], None]) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(count)

    def run(index: int) -> None:
        try:
            barrier.wait()
            target(index)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_increments_from_threads_lose_nothing():
    partner = PartnerFactory()
    link = partner.links.get()
    day = date(2026, 1, 1)

    def add(index: int) -> None:
        for _ in range(50):
            with transaction.atomic():
                rollup_add(
                    link_id=link.pk,
                    partner_id=partner.pk,
                    day=day,
                    clicks=1,
                    unique_clicks=index % 2,
                    new_trials=1,
                    commission=Decimal("0.01"),
                )

    _run_threads(8, add)
    row = DailyLinkStats.objects.get(link=link, day=day)
    assert (row.clicks, row.unique_clicks, row.new_trials, row.commission) == (400, 200, 400, Decimal("4.00"))
    month = LinkMonthlyStats.objects.get(link=link)
    assert (month.clicks, month.unique_clicks, month.new_trials, month.commission) == (400, 200, 400, Decimal("4.00"))


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_rebuild_running_while_clicks_arrive_leaves_exact_counters():
    partner = PartnerFactory()
    link = partner.links.get()
    now = datetime.now(UTC)
    today = program_day(now)
    finished: list[int] = []
    rebuilds: list[int] = []

    def work(index: int) -> None:
        if index == 0:
            while len(finished) < 3:
                rebuild_rollups(today - timedelta(days=1), today + timedelta(days=1))
                rebuilds.append(1)
            return
        for n in range(60):
            b.click(link, f"visitor-{index}-{n % 20}", now)
        finished.append(index)

    _run_threads(4, work)
    assert rebuilds
    assert rebuild_rollups(today - timedelta(days=1), today + timedelta(days=1), dry_run=True).ok
    row = DailyLinkStats.objects.get(link=link, day=today)
    assert (row.clicks, row.unique_clicks) == (180, 60)
