"""The partner JSON API: authentication, isolation between partners, date ranges, shapes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from partners.services import api_token_create, api_token_revoke
from tests.factories import LinkFactory, PartnerFactory
from tests.reports import builders as b
from tracking.rollups import program_today

pytestmark = pytest.mark.django_db

ENDPOINTS = ("/api/v1/partner/summary", "/api/v1/partner/trends", "/api/v1/partner/links")


def _is_contract_error(response, code: str, field: str | None = None) -> None:
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "field"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    if field is not None:
        assert body["error"]["field"] == field


@pytest.fixture
def two_partners():
    """Partner A and partner B, each with a custom link, a paying referral and a token."""
    now = timezone.now()
    partners = {}
    for name, amount in (("a", "100.00"), ("b", "350.00")):
        partner = PartnerFactory()
        link = LinkFactory(partner=partner, code=f"{name}-campaign-link", description=f"Campaign of {name}")
        b.pay(b.signup(b.click(link, f"visitor-{name}", now), now), amount, now)
        partners[name] = (partner, api_token_create(partner=partner, name="cli").secret)
    return partners


@pytest.mark.parametrize("path", ENDPOINTS)
def test_anonymous_callers_get_401_in_the_contract_shape(client, path):
    response = client.get(path)
    assert response.status_code == 401
    _is_contract_error(response, "unauthorized")


@pytest.mark.parametrize("path", ENDPOINTS)
def test_a_logged_in_partner_reads_through_the_session(client, two_partners, path):
    partner, _ = two_partners["a"]
    client.force_login(partner.user)
    assert client.get(path).status_code == 200


@pytest.mark.parametrize("path", ENDPOINTS)
def test_a_bearer_token_authenticates_without_a_session(client, two_partners, path):
    _, token = two_partners["a"]
    assert client.get(path, HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 200


@pytest.mark.parametrize("path", ENDPOINTS)
def test_a_revoked_token_gets_401(client, two_partners, path):
    partner, token = two_partners["a"]
    api_token_revoke(partner=partner, token_id=partner.api_tokens.get().pk)
    response = client.get(path, HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 401
    _is_contract_error(response, "unauthorized")


@pytest.mark.parametrize(
    "header", ["Bearer pp_not-a-real-token", "Bearer ", "Basic dXNlcjpwYXNz", "Token abc", "pp_abc"]
)
def test_a_wrong_credential_gets_401_even_with_a_valid_session(client, two_partners, header):
    partner, _ = two_partners["a"]
    client.force_login(partner.user)
    response = client.get("/api/v1/partner/summary", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401


def test_staff_without_a_partner_profile_gets_401(client, django_user_model):
    staff = django_user_model.objects.create_user(email="staff@example.com", password="x", is_staff=True)
    client.force_login(staff)
    assert client.get("/api/v1/partner/summary").status_code == 401


@pytest.mark.parametrize("auth", ["session", "token"])
def test_only_the_callers_data_is_ever_returned(client, two_partners, auth):
    partner_a, token_a = two_partners["a"]
    headers = {}
    if auth == "session":
        client.force_login(partner_a.user)
    else:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {token_a}"
    summary = client.get("/api/v1/partner/summary", **headers).json()
    assert summary["commission"] == "20.00"  # A's 100.00 at 20 %, not B's 70.00
    trends = client.get("/api/v1/partner/trends", **headers).json()
    assert sum(float(v) for v in trends["commission"]) == 20.0
    links = client.get("/api/v1/partner/links", **headers).json()
    codes = {link["code"] for link in links}
    assert codes == {partner_a.referral_code, "a-campaign-link"}
    assert "b-campaign-link" not in str(links) and "Campaign of b" not in str(links)


def test_links_describe_each_link_and_its_numbers_for_the_range(client, two_partners):
    partner, token = two_partners["a"]
    today = program_today()
    response = client.get(
        f"/api/v1/partner/links?start={(today - timedelta(days=6)).isoformat()}&end={today.isoformat()}",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    by_code = {link["code"]: link for link in response.json()}
    assert by_code["a-campaign-link"] == {
        "code": "a-campaign-link",
        "url": "http://testserver/r/a-campaign-link",
        "destination": "https://crazycall.com/pricing",
        "trial_days": 14,
        "description": "Campaign of a",
        "is_default": False,
        "is_active": True,
        "clicks": 1,
        "unique_clicks": 1,
        "trials": 1,
        "subscriptions": 1,
        "commission": "20.00",
    }
    default = by_code[partner.referral_code]
    assert default["destination"] == "https://crazycall.com/"  # empty destination: the default landing page
    assert default["commission"] == "0.00"
    # Nothing happened in an older range.
    old = client.get(
        "/api/v1/partner/links?start=2020-01-01&end=2020-01-31", HTTP_AUTHORIZATION=f"Bearer {token}"
    ).json()
    assert all(link["clicks"] == 0 and link["commission"] == "0.00" for link in old)


def test_trends_default_to_the_last_30_days_ending_today(partner_client):
    body = partner_client.get("/api/v1/partner/trends").json()
    today = program_today()
    assert body["days"][-1] == today.isoformat()
    assert body["days"][0] == (today - timedelta(days=29)).isoformat()
    assert all(len(body[key]) == 30 for key in ("commission", "new_trials", "new_subscriptions", "unique_clicks"))
    assert body["commission"][0] == "0.00"


def test_trends_accept_an_inclusive_range_of_exactly_two_years(partner_client):
    body = partner_client.get("/api/v1/partner/trends?start=2024-01-01&end=2025-12-31").json()
    assert len(body["days"]) == 731
    assert body["days"][0] == "2024-01-01" and body["days"][-1] == "2025-12-31"


@pytest.mark.parametrize("path", ["/api/v1/partner/trends", "/api/v1/partner/links"])
@pytest.mark.parametrize(
    ("query", "code", "field"),
    [
        ("start=2025-13-01&end=2025-12-31", "invalid_date", "start"),
        ("start=yesterday", "invalid_date", "start"),
        ("start=2025-01-01&end=31.01.2025", "invalid_date", "end"),
        ("start=2025-02-30&end=2025-03-01", "invalid_date", "start"),
        ("start=20250101&end=2025-03-01", "invalid_date", "start"),
        ("start=bad&end=worse", "invalid_date", "start"),
        ("end=2025-W05-1", "invalid_date", "end"),
        ("start=2025-03-02&end=2025-03-01", "invalid_date_range", "start"),
        ("start=2023-01-01&end=2025-01-01", "invalid_date_range", "end"),
        ("start=2024-01-01&end=2026-01-01", "invalid_date_range", "end"),
    ],
)
def test_bad_date_ranges_get_400_with_the_field_at_fault(partner_client, path, query, code, field):
    response = partner_client.get(f"{path}?{query}")
    assert response.status_code == 400
    _is_contract_error(response, code, field)


def test_the_openapi_document_describes_the_partner_api(client):
    doc = client.get("/api/v1/openapi.json").json()
    for path in ENDPOINTS:
        operation = doc["paths"][path]["get"]
        assert {"200", "401"} <= set(operation["responses"])
        assert operation["security"]
    assert {"SummaryOut", "TrendsOut", "LinkOut", "ErrorOut"} <= set(doc["components"]["schemas"])
    assert doc["components"]["securitySchemes"]["PartnerTokenAuth"] == {"type": "http", "scheme": "bearer"}
    summary = doc["components"]["schemas"]["SummaryOut"]["properties"]
    assert summary["balance"]["pattern"] == r"^-?\d+\.\d{2}$"
