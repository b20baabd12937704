"""Every report answers in a fixed number of queries, however many links, clicks, referrals
and payments there are."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from tests.factories import LinkFactory
from tests.reports import builders as b

pytestmark = pytest.mark.django_db

URLS = [
    reverse("partners:dashboard"),
    reverse("partners:dashboard") + "?period=custom&start=2025-01-01&end=2025-12-31",
    reverse("tracking:performance"),
    reverse("tracking:performance") + "?sort=-earnings_per_click",
    reverse("tracking:performance_export"),
    "/api/v1/partner/summary",
    "/api/v1/partner/trends",
    "/api/v1/partner/links",
]
# Upper bounds (session, user and partner lookups included), so a change that adds a query per
# row fails loudly here.
MAX_QUERIES = {"dashboard": 5, "performance": 5, "api": 5}


@pytest.fixture(autouse=True)
def _warm(warm_terms_cache):
    """Each count below is the page's own (see ``warm_terms_cache``)."""


def _grow(partner, links: int, per_link: int) -> None:
    now = timezone.now()
    for n in range(links):
        link = LinkFactory(partner=partner)
        for i in range(per_link):
            at = now - timedelta(days=i * 7 % 40, hours=i)
            first = b.click(link, f"v{n}-{i}", at)
            b.click(link, f"v{n}-{i}", at + timedelta(minutes=1))
            if i % 2 == 0:
                b.pay(b.signup(first, at + timedelta(minutes=2)), "30.00", at + timedelta(minutes=3))


def _count(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
        if hasattr(response, "streaming_content"):
            b"".join(response.streaming_content)
    assert response.status_code == 200, url
    return len(queries)


def _limit(url: str) -> int:
    if url.startswith("/api/"):
        return MAX_QUERIES["api"]
    return MAX_QUERIES["dashboard"] if "dashboard" in url else MAX_QUERIES["performance"]


@pytest.mark.parametrize("url", URLS)
def test_queries_do_not_grow_with_the_data(partner_client, url):
    partner = partner_client.partner
    _grow(partner, links=1, per_link=2)
    small = _count(partner_client, url)
    _grow(partner, links=6, per_link=6)
    large = _count(partner_client, url)
    assert large == small
    assert small <= _limit(url)


def test_bearer_token_callers_use_a_fixed_number_of_queries_too(client, partner):
    from partners.services import api_token_create

    token = api_token_create(partner=partner, name="bench").secret
    _grow(partner, links=1, per_link=2)
    # The first use stamps the token's last_used_at (at most once a minute).
    client.get("/api/v1/partner/links", HTTP_AUTHORIZATION=f"Bearer {token}")
    with CaptureQueriesContext(connection) as small:
        client.get("/api/v1/partner/links", HTTP_AUTHORIZATION=f"Bearer {token}")
    _grow(partner, links=5, per_link=4)
    with CaptureQueriesContext(connection) as large:
        client.get("/api/v1/partner/links", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert len(large) == len(small)


def test_the_summary_is_one_statement_after_the_token_lookup(client, partner):
    from partners.services import api_token_create

    token = api_token_create(partner=partner, name="bench").secret
    _grow(partner, links=2, per_link=2)
    client.get("/api/v1/partner/summary", HTTP_AUTHORIZATION=f"Bearer {token}")  # stamps last_used_at
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/api/v1/partner/summary", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200
    assert len(queries) == 2


def test_the_dashboard_reads_the_kpis_in_one_statement(partner_client):
    _grow(partner_client.partner, links=2, per_link=2)
    # Session, user, partner; the KPIs with the balance and the open-payout check; the default link.
    assert _count(partner_client, reverse("partners:dashboard")) == 5
