"""Issue 20: the partner pages, exports and statements not covered by the list and report
query-count tests answer in a fixed number of queries however many rows the partner has (an
N+1 anywhere on them fails here)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from payouts.models import Payout
from tests.commissions.test_list_query_counts import _grow, _payouts
from tracking.models import Link

pytestmark = pytest.mark.django_db

# Session, user and partner lookups included. Upper bounds: a query per row fails at once.
MAX_QUERIES = 16


@pytest.fixture(autouse=True)
def _warm(warm_terms_cache):
    """Each count below is the page's own (see ``warm_terms_cache``)."""


def _urls(partner) -> list[str]:
    link = Link.objects.filter(partner=partner).order_by("pk").first()
    payout = Payout.objects.filter(partner=partner, status=Payout.Status.PAID).order_by("pk").first()
    return [
        "/resources/",
        f"/resources/links/{link.pk}/",
        "/settings/",
        "/performance/promo-codes/",
        "/performance/sources/",
        f"/performance/links/{link.pk}/",
        "/referrals/export.csv",
        "/commissions/export.csv",
        "/payouts/export.csv",
        f"/payouts/{payout.pk}/statement/",
        f"/payouts/{payout.pk}/statement.csv",
        "/api/v1/partner/summary",
        "/api/v1/partner/trends",
        "/api/v1/partner/links",
    ]


def _counts(client, urls: list[str]) -> dict[str, int]:
    counts = {}
    for url in urls:
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url)
            if response.streaming:
                b"".join(response.streaming_content)
        assert response.status_code == 200, url
        counts[url] = len(queries)
    return counts


def _paid_payout(partner) -> None:
    payout = Payout.objects.create(
        partner=partner, amount=Decimal("5.00"), currency="USD", paypal_email="p@example.com", status="paid"
    )
    Payout.objects.filter(pk=payout.pk).update(requested_at=payout.requested_at)


def test_partner_pages_and_exports_do_not_grow_with_the_rows(partner_client):
    partner = partner_client.partner
    _grow(partner, referrals=2, payments=2)
    _payouts(partner, 2)
    _paid_payout(partner)
    urls = _urls(partner)
    small = _counts(partner_client, urls)
    _grow(partner, referrals=30, payments=3)
    _payouts(partner, 30)
    for _ in range(5):
        _paid_payout(partner)
    large = _counts(partner_client, urls)
    assert large == small
    assert max(small.values()) <= MAX_QUERIES, small
