"""Issue 17, item 7: far-future (and far-past) dates are a form error on every page and CSV and
the JSON 400 on the API, never a 500."""

from __future__ import annotations

import pytest

from tests.factories import CommissionEntryFactory, PayoutFactory

pytestmark = pytest.mark.django_db

PAGES = ["/referrals/", "/commissions/", "/payouts/", "/performance/"]
EXPORTS = ["/referrals/export.csv", "/commissions/export.csv", "/payouts/export.csv", "/performance/export.csv"]
FAR = [("end", "9999-12-31"), ("start", "9999-12-31"), ("start", "0001-01-01"), ("end", "0001-01-01")]


@pytest.fixture
def busy_partner_client(partner_client):
    partner = partner_client.partner
    CommissionEntryFactory(payment__referral__click__link__partner=partner)
    PayoutFactory(partner=partner)
    return partner_client


@pytest.mark.parametrize(("field", "value"), FAR)
@pytest.mark.parametrize("path", PAGES)
def test_a_far_date_on_a_page_is_a_form_error(busy_partner_client, path, field, value):
    response = busy_partner_client.get(path, {field: value})
    assert response.status_code == 200
    body = response.content.decode()
    assert "between" in body


@pytest.mark.parametrize(("field", "value"), FAR)
@pytest.mark.parametrize("path", EXPORTS)
def test_a_far_date_on_a_csv_export_is_refused_whole(busy_partner_client, path, field, value):
    response = busy_partner_client.get(path, {field: value})
    assert response.status_code == 400
    assert not getattr(response, "streaming", False)


@pytest.mark.parametrize(("field", "value"), FAR)
@pytest.mark.parametrize("path", ["/api/v1/partner/links", "/api/v1/partner/trends"])
def test_a_far_date_on_the_api_is_the_json_400(partner_client, path, field, value):
    response = partner_client.get(path, {field: value})
    assert response.status_code == 400
    assert response.json()["error"]["field"] == field
