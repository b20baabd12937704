"""``LedgerDay`` (the commissions page's totals per partner and program day) stays exactly equal
to the ledger: every entry written by the events service (the one-statement fast path and the
general path), refunds, a recomputation, and the page's totals and count read from it."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Count, Q, Sum
from django.urls import reverse
from django.utils import timezone

from commissions import ledgerdays
from commissions.models import CommissionEntry, LedgerDay
from commissions.selectors import commission_totals
from tests.factories import LinkFactory, PartnerFactory
from tests.reports import builders as b

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def _ledger_by_day(partner) -> dict:
    """The ledger's own sums per program day, by a GROUP BY over its rows."""
    out: dict = {}
    for entry in CommissionEntry.objects.filter(partner=partner).select_related("payment", "refund"):
        day = timezone.localtime(entry.earned_at).date()
        payments, refunds, commission, rows = out.get(day, (Decimal("0"), Decimal("0"), Decimal("0"), 0))
        if entry.kind == CommissionEntry.Kind.COMMISSION:
            payments += entry.payment.amount
        else:
            refunds += entry.refund.amount
        out[day] = (payments, refunds, commission + entry.amount, rows + 1)
    return out


def _rollup_by_day(partner) -> dict:
    rows = (
        LedgerDay.objects.filter(partner=partner)
        .values("day")
        .annotate(p=Sum("payments"), r=Sum("refunds"), c=Sum("commission"), n=Sum("entries"))
    )
    return {row["day"]: (row["p"], row["r"], row["c"], row["n"]) for row in rows if row["n"]}


def _activity(partner, *, days: int = 5, ago: int = 0) -> None:
    link = LinkFactory(partner=partner)
    now = timezone.now() - timedelta(days=ago)
    for n in range(days):
        at = now - timedelta(days=n * 3, hours=n)
        referral = b.signup(b.click(link, f"v{n}", at), at + timedelta(minutes=1))
        first = b.pay(referral, "39.00", at + timedelta(minutes=5))
        b.pay(referral, "25.00", at + timedelta(days=1))
        if n % 2 == 0:
            b.refund(first, "39.00" if n % 4 == 0 else "10.00", at + timedelta(days=2))


def test_every_entry_of_the_events_service_is_in_the_day_rows(partner):
    _activity(partner)
    assert _rollup_by_day(partner) == _ledger_by_day(partner)


def test_the_general_path_keeps_the_day_rows_equal_too(partner, settings):
    settings.EVENTS_SQL_FAST_PATH = False
    _activity(partner, days=3)
    assert _rollup_by_day(partner) == _ledger_by_day(partner)


def _ranges(partner):
    """All dates, and ranges that start and end on days with entries (a boundary day counts)."""
    days = sorted({timezone.localtime(at).date() for at in CommissionEntry.objects.values_list("earned_at", flat=True)})
    assert len(days) >= 6
    return ((None, None), (days[1], None), (None, days[-2]), (days[2], days[-3]))


def _assert_ledger_totals(partner, totals, start, end) -> None:
    entries = CommissionEntry.objects.filter(partner=partner)
    if start:
        entries = entries.filter(earned_at__date__gte=start)
    if end:
        entries = entries.filter(earned_at__date__lte=end)
    ledger = entries.aggregate(
        payments=Sum("payment__amount", filter=Q(kind="commission")),
        refunds=Sum("refund__amount", filter=Q(kind="reversal")),
        commission=Sum("amount"),
        rows=Count("id"),
    )
    assert totals.payments == (ledger["payments"] or 0)
    assert totals.refunds == (ledger["refunds"] or 0)
    assert totals.commission == (ledger["commission"] or 0)
    assert totals.rows == ledger["rows"]


def test_totals_read_from_the_day_rows_equal_the_ledger_for_any_range(partner):
    _activity(partner, days=6)
    for start, end in _ranges(partner):
        _assert_ledger_totals(partner, commission_totals(partner=partner, start=start, end=end), start, end)


def test_the_pages_totals_summed_from_the_days_it_read_equal_the_ledger(partner_client):
    # The page sums the per-day rows it reads for the entries' states (PageStates.ledger_days);
    # all in the past (an entry dated after now sends the states to the replay, which reads none).
    partner = partner_client.partner
    _activity(partner, days=6, ago=3)
    for start, end in _ranges(partner):
        query = {key: day.isoformat() for key, day in (("start", start), ("end", end)) if day}
        response = partner_client.get(reverse("commissions:commission_list"), query)
        assert response.status_code == 200
        _assert_ledger_totals(partner, response.context["totals"], start, end)
        assert response.context["page_obj"].paginator.count == response.context["totals"].rows


def test_another_partners_entries_stay_in_their_own_rows(partner):
    other = PartnerFactory()
    _activity(partner, days=2)
    _activity(other, days=2)
    assert _rollup_by_day(partner) == _ledger_by_day(partner)
    assert _rollup_by_day(other) == _ledger_by_day(other)


def test_a_recomputation_repairs_drifted_rows(partner):
    _activity(partner, days=3)
    LedgerDay.objects.filter(partner=partner).update(commission=Decimal("999.99"), entries=0)
    ledgerdays.recompute(partner_ids=[partner.pk])
    assert _rollup_by_day(partner) == _ledger_by_day(partner)


def test_a_deleted_entry_leaves_the_day_rows(partner):
    _activity(partner, days=2)
    # The ledger is append-only in the app; a repair by hand must still leave the sums right.
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM commissions_commissionentry WHERE kind = 'reversal'")
    assert _rollup_by_day(partner) == _ledger_by_day(partner)


def test_the_page_shows_the_ledgers_totals_and_last_page(partner_client):
    partner = partner_client.partner
    _activity(partner, days=8)
    rows = CommissionEntry.objects.filter(partner=partner).count()
    response = partner_client.get(reverse("commissions:commission_list"), {"page": 9999})
    assert response.status_code == 200
    page = response.context["page_obj"]
    assert page.paginator.count == rows
    expected = list(
        CommissionEntry.objects.filter(partner=partner).order_by("-earned_at", "-id").values_list("pk", flat=True)
    )
    assert [entry.pk for entry in page.object_list] == expected[(page.number - 1) * 25 :]
    assert (
        response.context["totals"].commission
        == CommissionEntry.objects.filter(partner=partner).aggregate(s=Sum("amount"))["s"]
    )


def test_the_rebuild_command_repairs_every_partner(partner):
    from django.core.management import call_command

    _activity(partner, days=2)
    LedgerDay.objects.all().delete()
    call_command("rebuild_ledger_days")
    assert _rollup_by_day(partner) == _ledger_by_day(partner)


@pytest.mark.django_db(transaction=True)
def test_concurrent_payments_and_refunds_of_one_partner_neither_wait_nor_drift(settings):
    """Payments (the one-statement path) and refunds (the ORM path) of one partner on one link
    and day, from several threads at once: no deadlock (the two paths take the daily link rollup
    and the ledger day in opposite orders, so the ledger day never waits), exact sums."""
    import threading

    partner = PartnerFactory()
    link = LinkFactory(partner=partner)
    now = timezone.now()
    referrals = [b.signup(b.click(link, f"c{n}", now), now + timedelta(seconds=1)) for n in range(4)]
    paid = [b.pay(referral, "30.00", now + timedelta(seconds=2)) for referral in referrals]
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(6):
                if i % 2:
                    b.refund(paid[n], "1.00", now + timedelta(seconds=3 + i))
                else:
                    b.pay(referrals[n], "20.00", now + timedelta(seconds=3 + i))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert _rollup_by_day(partner) == _ledger_by_day(partner)


def test_entries_inserted_together_in_one_statement_each_count_once(partner):
    # The ledger written again by one INSERT (as a repair or an import would): commissions and
    # reversals, several on one day. The row-level trigger adds each entry, to the day's row it
    # created for the first.
    _activity(partner, days=4)
    ledger = list(CommissionEntry.objects.filter(partner=partner).order_by("pk").values())
    CommissionEntry.objects.filter(partner=partner).delete()
    assert _rollup_by_day(partner) == {}
    days = [timezone.now() - timedelta(days=1), timezone.now() - timedelta(days=6)]
    CommissionEntry.objects.bulk_create(
        [CommissionEntry(**{**row, "id": None, "earned_at": days[n % 2]}) for n, row in enumerate(ledger)]
    )
    assert len(ledger) == 10 and len(_ledger_by_day(partner)) == 2
    assert _rollup_by_day(partner) == _ledger_by_day(partner)
    assert LedgerDay.objects.filter(partner=partner, entries__gt=0).count() == 2


def test_the_statement_level_insert_trigger_of_before_0021_keeps_the_same_rows(partner):
    """Migration 0021 both ways, inside this test's transaction: entries written under either
    INSERT trigger give the rows a GROUP BY over the ledger gives."""
    with connection.schema_editor() as editor:
        ledgerdays.use_statement_insert_trigger(editor)
    _activity(partner, days=2)
    assert _rollup_by_day(partner) == _ledger_by_day(partner)
    with connection.schema_editor() as editor:
        ledgerdays.use_row_insert_trigger(editor)
    _activity(partner, days=2, ago=1)
    assert _rollup_by_day(partner) == _ledger_by_day(partner)
