"""Issue 17, item 8 and "Also": authenticated answers are not cacheable, and staff sessions are
short."""

from __future__ import annotations

import pytest
from django.urls import reverse

from partners.services import api_token_create
from tests.factories import StaffFactory

pytestmark = pytest.mark.django_db

PAGES = ["/dashboard/", "/settings/", "/referrals/", "/commissions/", "/payouts/", "/performance/", "/resources/"]
EXPORTS = ["/referrals/export.csv", "/commissions/export.csv", "/payouts/export.csv", "/performance/export.csv"]


def _directives(response) -> set[str]:
    return {part.strip() for part in response.get("Cache-Control", "").split(",") if part.strip()}


@pytest.mark.parametrize("path", [*PAGES, "/api/v1/partner/summary", "/api/v1/partner/links"])
def test_a_logged_in_partners_pages_and_api_answers_are_private_and_not_stored(partner_client, path):
    response = partner_client.get(path)
    assert response.status_code == 200
    assert {"private", "no-store"} <= _directives(response)


@pytest.mark.parametrize("path", EXPORTS)
def test_the_exports_are_private_and_not_stored(partner_client, path):
    response = partner_client.get(path)
    assert response.status_code == 200
    assert {"private", "no-store"} <= _directives(response)


@pytest.mark.parametrize("path", ["/api/v1/partner/summary", "/api/v1/partner/trends", "/api/v1/partner/links"])
def test_the_partner_api_with_a_token_is_private_and_not_stored(client, partner, path):
    secret = api_token_create(partner=partner, name="t").secret
    response = client.get(path, HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert response.status_code == 200
    assert {"private", "no-store"} <= _directives(response)


def test_the_admin_is_private_and_not_stored(admin_client):
    assert {"private", "no-store"} <= _directives(admin_client.get("/admin/"))


def test_a_staff_session_lasts_twelve_hours_not_fourteen_days(client, settings):
    staff = StaffFactory(email="ops@example.com", is_superuser=True)
    client.post("/admin/login/?next=/admin/", {"username": "ops@example.com", "password": "correct-horse-battery"})
    client.get("/admin/")
    age = client.session.get_expiry_age()
    assert 0 < age <= settings.STAFF_SESSION_SECONDS == 12 * 3600
    assert client.cookies["sessionid"]["max-age"] <= 12 * 3600
    assert int(client.session["_auth_user_id"]) == staff.pk


def test_a_partner_session_keeps_the_default_lifetime(client, partner, settings):
    client.post(reverse("partners:login"), {"username": partner.user.email, "password": "correct-horse-battery"})
    client.get("/dashboard/")
    assert client.session.get_expiry_age() == settings.SESSION_COOKIE_AGE
