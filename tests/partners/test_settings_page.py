from __future__ import annotations

import pytest

from partners.models import ApiToken
from partners.services import api_token_authenticate, hash_api_token
from tests.factories import PartnerFactory

pytestmark = pytest.mark.django_db
URL = "/settings/"


def test_settings_page_shows_the_partners_own_values(partner_client):
    partner = partner_client.partner
    response = partner_client.get(URL)
    assert response.status_code == 200
    assert partner.paypal_email.encode() in response.content


def test_paypal_email_change_needs_the_current_password(partner_client):
    response = partner_client.post(
        URL, {"action": "paypal", "paypal-paypal_email": "new@example.com", "paypal-current_password": "wrong"}
    )
    assert response.status_code == 400
    assert "current_password" in response.context["paypal_form"].errors
    partner_client.partner.refresh_from_db()
    assert partner_client.partner.paypal_email != "new@example.com"


def test_bad_paypal_email_is_refused(partner_client):
    response = partner_client.post(
        URL,
        {"action": "paypal", "paypal-paypal_email": "not-an-email", "paypal-current_password": "correct-horse-battery"},
    )
    assert response.status_code == 400
    assert "paypal_email" in response.context["paypal_form"].errors


def test_paypal_email_is_saved_with_the_right_password(partner_client):
    response = partner_client.post(
        URL,
        {
            "action": "paypal",
            "paypal-paypal_email": "New@Example.com",
            "paypal-current_password": "correct-horse-battery",
        },
    )
    assert response.status_code == 302
    partner_client.partner.refresh_from_db()
    assert partner_client.partner.paypal_email == "new@example.com"


def test_profile_and_billing_are_saved_and_validated(partner_client):
    bad = partner_client.post(URL, {"action": "profile", "profile-name": "Ada", "profile-billing_country": "Poland"})
    assert bad.status_code == 400
    assert "billing_country" in bad.context["profile_form"].errors
    good = partner_client.post(
        URL,
        {
            "action": "profile",
            "profile-name": "Ada",
            "profile-website": "https://ada.example.com",
            "profile-billing_name": "Ada Ltd",
            "profile-billing_address": "1 Main St",
            "profile-billing_country": "pl",
            "profile-tax_id": "PL123",
        },
    )
    assert good.status_code == 302
    partner_client.partner.refresh_from_db()
    assert partner_client.partner.billing_country == "PL"
    assert partner_client.partner.tax_id == "PL123"


def test_password_change_requires_the_old_password(partner_client):
    response = partner_client.post(
        URL,
        {
            "action": "password",
            "password-old_password": "wrong",
            "password-new_password1": "another-long-passphrase",
            "password-new_password2": "another-long-passphrase",
        },
    )
    assert response.status_code == 400
    partner_client.partner.user.refresh_from_db()
    assert partner_client.partner.user.check_password("correct-horse-battery")


def test_api_token_is_shown_once_and_only_its_hash_is_stored(partner_client):
    created = partner_client.post(URL, {"action": "token_create", "token-name": "reporting"})
    # Post/redirect/get: reloading the page that shows the token creates no second one.
    assert created.status_code == 302 and created["Location"] == URL + "#tokens"
    response = partner_client.get(URL)
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    secret = response.context["new_token_secret"]
    assert secret and secret.encode() in response.content
    token = ApiToken.objects.get(partner=partner_client.partner)
    assert token.token_hash == hash_api_token(secret)
    assert secret not in token.token_hash and secret != token.prefix
    assert api_token_authenticate(secret) == partner_client.partner
    # A later visit never shows the secret again.
    assert secret.encode() not in partner_client.get(URL).content


def test_revoked_token_no_longer_authenticates(partner_client):
    partner_client.post(URL, {"action": "token_create", "token-name": "reporting"})
    secret = partner_client.get(URL).context["new_token_secret"]
    token = ApiToken.objects.get(partner=partner_client.partner)
    partner_client.post(URL, {"action": "token_revoke", "token_id": token.pk})
    assert api_token_authenticate(secret) is None


def test_a_partner_cannot_revoke_or_see_another_partners_tokens(partner_client):
    other = PartnerFactory()
    other_token = ApiToken.objects.create(partner=other, name="theirs", token_hash="a" * 64, prefix="pp_aaaaaa")
    response = partner_client.post(URL, {"action": "token_revoke", "token_id": other_token.pk}, follow=True)
    other_token.refresh_from_db()
    assert other_token.revoked_at is None
    assert b"theirs" not in response.content
    assert other.paypal_email.encode() not in partner_client.get(URL).content


def test_reloading_after_creating_a_token_creates_no_second_one(partner_client):
    response = partner_client.post(URL, {"action": "token_create", "token-name": "reporting"}, follow=True)
    # The page the partner sees was fetched with GET: a reload repeats the GET, not the POST.
    assert response.redirect_chain == [(URL + "#tokens", 302)]
    assert response.request["REQUEST_METHOD"] == "GET"
    partner_client.get(URL)  # the reload
    assert ApiToken.objects.filter(partner=partner_client.partner).count() == 1


def test_old_password_does_not_take_the_focus_on_every_visit(partner_client):
    html = partner_client.get(URL).content.decode()
    assert "autofocus" not in html


def test_revoke_asks_for_confirmation(partner_client):
    partner_client.post(URL, {"action": "token_create", "token-name": "reporting"})
    html = partner_client.get(URL).content.decode()
    assert 'data-confirm="Revoke the token' in html
