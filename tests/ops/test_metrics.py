"""/metrics: Prometheus text, for staff or the scraper's token only."""

from __future__ import annotations

from decimal import Decimal

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.factories import LinkFactory, MerchantEventFactory, PayoutFactory, StaffFactory
from tracking.rollups import rollup_add


def _samples(response) -> dict:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


@pytest.fixture
def staff_client(client, db):
    client.force_login(StaffFactory())
    return client


@pytest.mark.django_db
def test_strangers_and_partners_get_a_404(client, partner_client, settings):
    settings.METRICS_TOKEN = "t" * 40
    assert client.get("/metrics").status_code == 404
    assert partner_client.get("/metrics").status_code == 404
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 404


@pytest.mark.django_db
def test_the_scrapers_token_is_accepted(client, settings):
    settings.METRICS_TOKEN = "t" * 40
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer " + "t" * 40)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")


@pytest.mark.django_db
def test_no_token_configured_means_staff_only(client, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 404


@pytest.mark.django_db
def test_clicks_events_and_payouts_are_counted(staff_client, django_assert_max_num_queries):
    link = LinkFactory()
    from django.utils import timezone

    rollup_add(link_id=link.pk, partner_id=link.partner_id, day=timezone.localdate(), clicks=7, unique_clicks=3)
    MerchantEventFactory(type="payment.succeeded", outcome="applied")
    MerchantEventFactory(type="payment.succeeded", outcome="applied")
    MerchantEventFactory(type="customer.signed_up", outcome="not_referred")
    PayoutFactory(amount=Decimal("60.00"), status="paid")
    PayoutFactory(amount=Decimal("55.50"), status="pending")
    with django_assert_max_num_queries(8):
        response = staff_client.get("/metrics")
    samples = _samples(response)
    assert samples[("partner_panel_clicks_total", ())] == 7
    assert samples[("partner_panel_unique_clicks_total", ())] == 3
    assert samples[("partner_panel_events_total", (("outcome", "applied"), ("type", "payment.succeeded")))] == 2
    assert samples[("partner_panel_events_total", (("outcome", "not_referred"), ("type", "customer.signed_up")))] == 1
    assert samples[("partner_panel_payouts", (("state", "paid"),))] == 1
    assert samples[("partner_panel_payouts", (("state", "failed"),))] == 0
    assert samples[("partner_panel_payouts_amount", (("state", "pending"),))] == 55.5
    assert samples[("partner_panel_click_backlog_seconds", ())] == 0
