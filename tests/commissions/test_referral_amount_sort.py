"""Issue 20: the Referrals page sorted by paid or by commission, either way, reads its ids band by
band (the 0.00 rows newest first, then the rest by the amount: ``amount_sort_keys``) instead of
sorting every referral; every page holds exactly the rows of the database's own sort. Neither
total can go below 0.00."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from commissions.models import Referral
from commissions.selectors import amount_sort_keys, referral_list
from config.paging import SeekPaginator
from tests.factories import LinkFactory, ReferralFactory

pytestmark = pytest.mark.django_db

AMOUNTS = (Decimal("0.00"), Decimal("0.00"), Decimal("49.00"), Decimal("3.20"), Decimal("0.00"), Decimal("9.80"))


@pytest.fixture
def referrals(partner_client):
    partner = partner_client.partner
    links = [LinkFactory(partner=partner), LinkFactory(partner=partner)]
    now = timezone.now()
    n = 0
    for days_ago in (1, 3, 3, 8, 20):
        for status in Referral.Status.values:
            for link in links:
                n += 1
                # Ties on signed_up_at and on the amounts.
                ReferralFactory(
                    click__link=link,
                    status=status,
                    signed_up_at=(now - timedelta(days=days_ago, minutes=n % 3)).replace(second=0, microsecond=0),
                    total_paid=AMOUNTS[n % len(AMOUNTS)],
                    total_commission=AMOUNTS[(n + 2) % len(AMOUNTS)],
                )
    return partner, links


@pytest.mark.parametrize("sort_at_most", [0, 100])
def test_every_page_sorted_by_an_amount_holds_the_rows_of_the_databases_sort(referrals, monkeypatch, sort_at_most):
    # sort_at_most=0: every page read from a band where one holds it (the database's sort for the
    # few across the two); 100: these 40 referrals sorted by the database.
    monkeypatch.setattr("commissions.selectors._AMOUNT_SORT_AT_MOST", sort_at_most)
    partner, links = referrals
    today = timezone.localdate()
    for sort in ("paid", "commission", "-paid", "-commission"):
        for link_id in (None, links[1].pk):
            for start in (None, today - timedelta(days=5)):
                for status in (None, Referral.Status.PAYING):
                    filters = {"sort": sort, "link_id": link_id, "start": start, "end": None, "status": status}
                    expected = list(referral_list(partner=partner, **filters).values_list("pk", flat=True))
                    count, keys = amount_sort_keys(partner=partner, **filters)
                    assert count == len(expected)
                    paginator = SeekPaginator(referral_list(partner=partner, **filters), 7, count=count, keys=keys)
                    got = [row.pk for number in paginator.page_range for row in paginator.page(number).object_list]
                    assert got == expected, filters


def test_the_other_sorts_sort_themselves(referrals):
    partner, _links = referrals
    for sort in ("signed_up", "-signed_up", "status", "-status", None):
        assert amount_sort_keys(partner=partner, sort=sort) is None


def test_the_page_sorted_by_commission_shows_the_lowest_first(partner_client, referrals, monkeypatch):
    monkeypatch.setattr("commissions.selectors._AMOUNT_SORT_AT_MOST", 0)
    partner, _links = referrals
    for sort in ("commission", "paid", "-commission", "-paid"):
        response = partner_client.get(reverse("commissions:referral_list"), {"sort": sort, "page": 2})
        assert response.status_code == 200
        expected = list(referral_list(partner=partner, sort=sort).values_list("pk", flat=True)[25:50])
        assert [row.pk for row in response.context["referrals"]] == expected
        assert response.context["page_obj"].paginator.count == Referral.objects.filter(partner=partner).count()


def test_neither_total_can_go_below_zero(referrals):
    referral = Referral.objects.filter(partner=referrals[0]).first()
    for field in ("total_paid", "total_commission"):
        with pytest.raises(IntegrityError), transaction.atomic():
            Referral.objects.filter(pk=referral.pk).update(**{field: Decimal("-0.01")})
