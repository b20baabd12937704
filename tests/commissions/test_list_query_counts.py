"""The referrals, commissions and payouts pages and a referral's timeline answer in a fixed
number of queries however many rows the partner has, on every page, filter and sort."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from commissions.models import Referral
from payouts.models import Payout
from tests.factories import LinkFactory
from tests.reports import builders as b

pytestmark = pytest.mark.django_db

# Session, user and partner lookups included; the Commissions page also reads what its entries'
# states need (commissions/entrystates.py: the reversals, the payouts, the days' sums, the last
# reversal's day, the page's days; the ledger once when the own takes' history changed; the state
# filters' boundary or replay).
MAX_QUERIES = 8
LIFECYCLE_QUERIES = 8


@pytest.fixture(autouse=True)
def _warm(warm_terms_cache):
    """Each count below is the page's own (see ``warm_terms_cache``)."""


def _grow(partner, referrals: int, payments: int) -> None:
    link = LinkFactory(partner=partner)
    now = timezone.now()
    for n in range(referrals):
        at = now - timedelta(days=n % 40 + 1, hours=n)
        referral = b.signup(b.click(link, f"v{partner.pk}-{n}-{at.timestamp()}", at), at + timedelta(minutes=1))
        for i in range(payments):
            payment = b.pay(referral, "30.00", at + timedelta(minutes=5 + i))
            if i == 1:
                b.refund(payment, "10.00", at + timedelta(minutes=30 + i))


def _payouts(partner, count: int) -> None:
    now = timezone.now()
    Payout.objects.bulk_create(
        [
            Payout(
                partner=partner,
                amount=Decimal("1.00"),
                currency="USD",
                paypal_email="p@example.com",
                status=Payout.Status.REJECTED,
                rejection_reason="test",
            )
            for _ in range(count)
        ]
    )
    Payout.objects.filter(partner=partner).update(requested_at=now)


def _count(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(queries)


LIST_URLS = [
    "/referrals/",
    "/referrals/?page=9999",
    "/referrals/?status=trial",
    "/referrals/?status=expired",
    "/referrals/?status=paying&sort=-commission",
    "/referrals/?sort=status&page=2",
    "/referrals/?sort=-paid&page=9999",
    "/commissions/",
    "/commissions/?page=9999",
    "/commissions/?page=2",
    "/commissions/?start=2020-01-01",
    "/commissions/?state=pending",
    "/commissions/?state=available&page=9999",
    "/commissions/?state=paid",
    "/commissions/?state=in_payout",
    "/commissions/?state=reversed&page=2",
    "/payouts/",
    "/payouts/?page=9999",
]


@pytest.mark.parametrize("url", LIST_URLS)
def test_list_pages_do_not_grow_with_the_rows(partner_client, url):
    partner = partner_client.partner
    _grow(partner, referrals=2, payments=2)
    _payouts(partner, 3)
    small = _count(partner_client, url)
    _grow(partner, referrals=30, payments=2)
    _payouts(partner, 45)
    large = _count(partner_client, url)
    assert large == small
    assert small <= MAX_QUERIES + (LIFECYCLE_QUERIES if url.startswith("/commissions/") else 0)


def test_a_referrals_timeline_does_not_grow_with_its_payments(partner_client):
    partner = partner_client.partner
    _grow(partner, referrals=1, payments=2)
    referral = Referral.objects.get(partner=partner)
    url = reverse("commissions:referral_detail", args=[referral.pk])
    small = _count(partner_client, url)
    for i in range(40):
        payment = b.pay(referral, "25.00", timezone.now() - timedelta(hours=i))
        if i % 10 == 0:
            b.refund(payment, "5.00", timezone.now() - timedelta(minutes=i))
    assert _count(partner_client, url) == small
    assert small <= MAX_QUERIES


def test_a_long_timeline_is_shown_a_page_at_a_time(partner_client):
    partner = partner_client.partner
    _grow(partner, referrals=1, payments=60)
    referral = Referral.objects.get(partner=partner)
    url = reverse("commissions:referral_detail", args=[referral.pk])
    first = partner_client.get(url)
    second = partner_client.get(url, {"page": 2})
    items = len(first.context["timeline"]) + len(second.context["timeline"])
    # Click, sign-up, 60 payments and one refund, oldest first, split 50 + the rest.
    assert len(first.context["timeline"]) == 50
    assert items == 63
    assert first.context["timeline"][0].kind == "click"
    assert b'rel="next"' in first.content
