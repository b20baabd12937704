"""Issue 20: the Referrals page's count comes from ``ReferralDay`` and the dashboard's active
trials and subscriptions from ``ReferralCount`` (both kept by triggers on the referrals,
commissions/referraldays.py); both stay exactly equal to ``COUNT(*)`` over the referrals after
sign-ups, payments, cancellations, expiries, a move to another partner, deletes and a rebuild,
for every filter the page offers."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from commissions import referraldays
from commissions.models import Referral, ReferralCount, ReferralDay
from commissions.selectors import referral_count, referral_list, status_sort_keys
from commissions.services import referrals_expire_trials
from config.paging import SeekPaginator
from tests.commissions.conftest import cancelled, paid
from tests.commissions.test_pages import refer  # noqa: F401 (a fixture)
from tests.factories import ClickFactory, LinkFactory, PartnerFactory, ReferralFactory
from tracking.reports import partner_summary

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def _assert_counts_equal(partner) -> None:
    _assert_status_counts_equal(partner)
    today = timezone.localdate()
    links = [None, *partner.links.values_list("pk", flat=True)]
    for status in (None, *Referral.Status.values):
        for link_id in links:
            for start, end in ((None, None), (today - timedelta(days=3), None), (None, today - timedelta(days=4))):
                expected = referral_list(partner=partner, status=status, link_id=link_id, start=start, end=end).count()
                got = referral_count(partner=partner, status=status, link_id=link_id, start=start, end=end)
                if got is None:  # the trial filters of a link or dates: the paginator counts
                    assert status in (Referral.Status.TRIAL, Referral.Status.EXPIRED)
                    assert (link_id, start, end) != (None, None, None)
                    continue
                assert got == expected, (status, link_id, start, end)


def _assert_status_counts_equal(partner) -> None:
    kept: dict[str, int] = {}
    for status, n in ReferralCount.objects.filter(partner=partner).values_list("status", "referrals"):
        kept[status] = kept.get(status, 0) + n
    counted: dict[str, int] = {}
    for status in Referral.objects.filter(partner=partner).values_list("status", flat=True):
        counted[status] = counted.get(status, 0) + 1
    assert {status: n for status, n in kept.items() if n} == counted
    # The dashboard's numbers: the counters, less the trials that ended before the expiry task ran.
    summary = partner_summary(partner)
    now = timezone.now()
    mine = Referral.objects.filter(partner=partner)
    assert summary.active_trials == mine.filter(status=Referral.Status.TRIAL, trial_ends_at__gt=now).count()
    assert summary.active_subscriptions == mine.filter(status=Referral.Status.PAYING).count()


def test_the_day_counts_equal_count_star_through_every_write_path(partner_client, refer, send):  # noqa: F811
    partner = partner_client.partner
    other_link = LinkFactory(partner=partner)
    now = timezone.now()
    for n in range(6):
        refer(f"cus_{n}", created=now - timedelta(days=n * 2), link=other_link if n % 2 else None)
    _assert_counts_equal(partner)
    send(paid("pay_1", "cus_1"))
    send(paid("pay_2", "cus_2"))
    send(cancelled("cus_2"))
    _assert_counts_equal(partner)
    Referral.objects.filter(customer_id="cus_5").update(trial_ends_at=now - timedelta(minutes=1))
    _assert_counts_equal(partner)  # an ended trial the expiry task has not seen yet no longer counts
    referrals_expire_trials()
    _assert_counts_equal(partner)
    # A referral moved to another partner (staff correcting an attribution) and one deleted.
    elsewhere = PartnerFactory()
    moved = Referral.objects.get(customer_id="cus_3")
    Referral.objects.filter(pk=moved.pk).update(partner=elsewhere, link=LinkFactory(partner=elsewhere))
    # Referrals written by the ORM directly (staff, imports), then deleted in one statement.
    for n in range(3):
        ReferralFactory(customer_id=f"cus_f{n}", click__link=other_link, signed_up_at=now - timedelta(days=5))
    _assert_counts_equal(partner)
    Referral.objects.filter(partner=partner, customer_id__startswith="cus_f").delete()
    _assert_counts_equal(partner)
    _assert_counts_equal(elsewhere)
    # A rebuild gives the same rows' sums.
    before = sorted(ReferralDay.objects.values_list("partner_id", "link_id", "day", "status").distinct())
    call_command("rebuild_ledger_days")
    after = sorted(ReferralDay.objects.values_list("partner_id", "link_id", "day", "status").distinct())
    assert before == after or set(after) <= set(before)
    _assert_counts_equal(partner)


def test_the_referrals_page_shows_the_rollups_count_without_counting_the_referrals(
    partner_client,
    refer,  # noqa: F811
    django_assert_max_num_queries,
):
    now = timezone.now()
    for n in range(30):
        refer(f"cus_{n}", created=now - timedelta(hours=n))
    response = partner_client.get(reverse("commissions:referral_list"), {"page": 2})
    assert response.context["page_obj"].paginator.count == 30
    assert len(response.context["referrals"]) == 5
    # The rollups are what the page reads: a wrong row shows in its count. Without a link or
    # dates the status counters, with them the day counts.
    partner = partner_client.partner
    link = partner.links.get()
    ReferralCount.objects.filter(partner=partner).update(referrals=0)
    response = partner_client.get(reverse("commissions:referral_list"))
    assert response.context["page_obj"].paginator.count == 0
    response = partner_client.get(reverse("commissions:referral_list"), {"link": link.pk})
    assert response.context["page_obj"].paginator.count == 30
    ReferralDay.objects.filter(partner=partner).update(referrals=0)
    response = partner_client.get(reverse("commissions:referral_list"), {"link": link.pk})
    assert response.context["page_obj"].paginator.count == 0
    referraldays.recompute(partner_ids=[partner.pk])
    response = partner_client.get(reverse("commissions:referral_list"), {"status": "trial"})
    assert response.context["page_obj"].paginator.count == 30
    response = partner_client.get(reverse("commissions:referral_list"), {"status": "trial", "link": link.pk})
    assert response.context["page_obj"].paginator.count == 30  # a trial filter of a link counts the referrals


def test_sorted_by_status_the_pages_read_status_by_status_in_the_same_order_as_the_sort(partner_client):
    """sort=status / -status read each status's ids from the index (status_sort_keys): every
    page holds exactly the rows of the database's own sort, ended trials still stored as trials
    included, whatever the filters."""
    partner = partner_client.partner
    links = [LinkFactory(partner=partner), LinkFactory(partner=partner)]
    now = timezone.now()
    n = 0
    for days_ago in (1, 3, 3, 8, 20, 40):
        for status in Referral.Status.values:
            for link in links:
                n += 1
                at = now - timedelta(days=days_ago, minutes=n % 3)  # ties on signed_up_at too
                ReferralFactory(
                    click__link=link, status=status, signed_up_at=at.replace(second=0, microsecond=0)
                )  # trial_ends_at 14 days on: the 20- and 40-day-old trials have ended, unmarked
    today = timezone.localdate()
    for sort in ("status", "-status"):
        for link_id in (None, links[1].pk):
            for start in (None, today - timedelta(days=10)):
                filters = {"sort": sort, "link_id": link_id, "start": start, "end": None, "status": None}
                expected = list(referral_list(partner=partner, **filters).values_list("pk", flat=True))
                count, keys = status_sort_keys(partner=partner, **filters)
                assert count == len(expected)
                queryset = referral_list(partner=partner, **filters)
                paginator = SeekPaginator(queryset, 7, count=count, keys=keys)
                got = [row.pk for number in paginator.page_range for row in paginator.page(number).object_list]
                assert got == expected, (sort, link_id, start)
    response = partner_client.get(reverse("commissions:referral_list"), {"sort": "-status"})
    assert [row.pk for row in response.context["referrals"]] == list(
        referral_list(partner=partner, sort="-status").values_list("pk", flat=True)[:25]
    )


def test_the_rebuild_command_repairs_drifted_status_counts(partner_client, refer, send):  # noqa: F811
    partner = partner_client.partner
    for n in range(3):
        refer(f"cus_r{n}")
    send(paid("pay_r0", "cus_r0"))
    # A dump restored with its triggers off: the counters say nothing, or something wrong.
    ReferralCount.objects.filter(partner=partner).update(referrals=0)
    ReferralCount.objects.create(partner=partner, status=Referral.Status.CANCELLED, referrals=7)
    call_command("rebuild_ledger_days")
    _assert_status_counts_equal(partner)


def test_referrals_inserted_together_in_one_statement_each_count_once(partner_client):
    # Several referrals of one partner, link, day and status in one INSERT (an import would write
    # them so): the row-level trigger adds each to both tables.
    partner = partner_client.partner
    link = LinkFactory(partner=partner)
    now = timezone.now() - timedelta(hours=1)
    clicks = ClickFactory.create_batch(3, link=link)
    Referral.objects.bulk_create(
        [
            ReferralFactory.build(click=click, link=link, partner=partner, signed_up_at=now, status=status)
            for click, status in zip(clicks, ("trial", "trial", "paying"), strict=True)
        ]
    )
    _assert_counts_equal(partner)
    assert ReferralDay.objects.filter(partner=partner).count() == 2  # (trial, paying): one row each


def test_the_statement_level_insert_triggers_of_before_0021_keep_the_same_counts(partner_client, refer, send):  # noqa: F811
    """Migration 0021 both ways, inside this test's transaction: referrals written under either
    INSERT trigger design give the counts ``COUNT(*)`` gives."""
    from django.db import connection

    partner = partner_client.partner
    with connection.schema_editor() as editor:
        referraldays.use_statement_insert_triggers(editor)
    refer("cus_s0")
    refer("cus_s1")
    send(paid("pay_s0", "cus_s0"))
    _assert_counts_equal(partner)
    with connection.schema_editor() as editor:
        referraldays.use_row_insert_trigger(editor)
    refer("cus_r0")
    send(paid("pay_r0", "cus_r0"))
    _assert_counts_equal(partner)
