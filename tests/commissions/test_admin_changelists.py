"""The admin's big changelists (payouts, partners, the ledger, the event log) answer in a fixed
number of queries however many rows they list, with a search and each filter too, and their
searches find what they should."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from commissions.models import CommissionEntry
from payouts.models import Payout
from tests.commissions.test_list_query_counts import _grow
from tests.factories import PartnerFactory

pytestmark = pytest.mark.django_db

URLS = [
    "/admin/payouts/payout/",
    "/admin/payouts/payout/?status__exact=paid",
    "/admin/payouts/payout/?q=someone@example.com",
    "/admin/partners/partner/",
    "/admin/partners/partner/?q=example.com",
    "/admin/commissions/commissionentry/",
    "/admin/commissions/commissionentry/?kind__exact=reversal",
    "/admin/commissions/commissionentry/?q=someone@example.com",
    "/admin/commissions/merchantevent/",
    "/admin/commissions/merchantevent/?response_status=201",
    "/admin/commissions/merchantevent/?received_at__gte=2020-01-01+00:00:00%2B00:00",
]


def _more(count: int) -> None:
    for _ in range(count):
        partner = PartnerFactory()
        _grow(partner, referrals=1, payments=2)
        Payout.objects.create(
            partner=partner, amount=Decimal("10.00"), currency="USD", paypal_email="p@example.com", status="paid"
        )


@pytest.fixture
def admin_client(client, django_user_model):
    user = django_user_model.objects.create_superuser(email="root@example.com", password="x")
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return client


def _count(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(queries)


@pytest.mark.parametrize("url", URLS)
def test_changelists_do_not_grow_with_the_rows(admin_client, url):
    _more(2)
    small = _count(admin_client, url)
    _more(6)
    assert _count(admin_client, url) == small


def test_the_payouts_search_finds_a_partner_by_email_and_a_payout_by_its_paypal_email(admin_client):
    _more(2)
    partner = PartnerFactory()
    mine = Payout.objects.create(
        partner=partner, amount=Decimal("10.00"), currency="USD", paypal_email="Pay.Me@Example.com", status="paid"
    )
    by_partner = admin_client.get("/admin/payouts/payout/", {"q": partner.user.email.upper()})
    assert [p.pk for p in by_partner.context["cl"].result_list] == [mine.pk]
    by_paypal = admin_client.get("/admin/payouts/payout/", {"q": "pay.me@example.com"})
    assert [p.pk for p in by_paypal.context["cl"].result_list] == [mine.pk]


def test_the_ledger_search_finds_a_partners_entries_by_email(admin_client):
    _more(2)
    partner = PartnerFactory()
    _grow(partner, referrals=1, payments=2)
    response = admin_client.get("/admin/commissions/commissionentry/", {"q": partner.user.email})
    listed = {entry.pk for entry in response.context["cl"].result_list}
    assert listed == set(CommissionEntry.objects.filter(partner=partner).values_list("pk", flat=True))
    assert response.context["cl"].result_count == len(listed)


def test_a_filter_matching_few_rows_is_counted_exactly(admin_client):
    _more(3)
    since = (timezone.now() - timedelta(days=400)).isoformat()  # aware, as the filter's own links send
    response = admin_client.get("/admin/commissions/commissionentry/", {"earned_at__gte": since})
    assert response.context["cl"].result_count == CommissionEntry.objects.count()
