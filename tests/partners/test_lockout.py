"""Issue 17, items 4 and 9: an address trying many emails is locked out too, and the settings
page's current-password check counts as a login attempt under the same lockout."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.factories import PartnerFactory

pytestmark = pytest.mark.django_db

RIGHT = "correct-horse-battery"
LOGIN = "/accounts/login/"


def test_one_address_trying_many_emails_is_locked_out(client, settings):
    settings.LOGIN_ADDRESS_FAILURE_LIMIT = 12
    PartnerFactory(user__email="victim@example.com")
    for n in range(settings.LOGIN_ADDRESS_FAILURE_LIMIT):
        client.post(LOGIN, {"username": f"guess{n}@example.com", "password": "wrong"}, REMOTE_ADDR="203.0.113.9")

    right = {"username": "victim@example.com", "password": RIGHT}
    assert client.post(LOGIN, right, REMOTE_ADDR="203.0.113.9").status_code == 429
    # Other addresses are not affected.
    assert client.post(LOGIN, right, REMOTE_ADDR="198.51.100.1").status_code == 302


def test_the_address_rule_leaves_room_below_its_limit(client, settings):
    settings.LOGIN_ADDRESS_FAILURE_LIMIT = 12
    PartnerFactory(user__email="victim@example.com")
    for n in range(settings.LOGIN_ADDRESS_FAILURE_LIMIT - 1):
        client.post(LOGIN, {"username": f"guess{n}@example.com", "password": "wrong"}, REMOTE_ADDR="203.0.113.9")

    right = {"username": "victim@example.com", "password": RIGHT}
    assert client.post(LOGIN, right, REMOTE_ADDR="203.0.113.9").status_code == 302


def test_a_successful_login_does_not_clear_the_addresss_failures_on_other_emails(client, settings):
    settings.LOGIN_ADDRESS_FAILURE_LIMIT = 8
    PartnerFactory(user__email="own@example.com")
    PartnerFactory(user__email="victim@example.com")
    for n in range(settings.LOGIN_ADDRESS_FAILURE_LIMIT - 1):
        client.post(LOGIN, {"username": f"guess{n}@example.com", "password": "wrong"})
    assert client.post(LOGIN, {"username": "own@example.com", "password": RIGHT}).status_code == 302
    client.post(reverse("partners:logout"))

    client.post(LOGIN, {"username": "guess-last@example.com", "password": "wrong"})
    assert client.post(LOGIN, {"username": "victim@example.com", "password": RIGHT}).status_code == 429


def _paypal_change(client, password: str):
    return client.post(
        reverse("partners:settings"),
        {"action": "paypal", "paypal-paypal_email": "new@example.com", "paypal-current_password": password},
    )


def test_the_settings_password_check_locks_out_after_the_login_limit(partner_client, settings):
    partner = partner_client.partner
    answers = [_paypal_change(partner_client, "wrong").status_code for _ in range(settings.AXES_FAILURE_LIMIT)]
    assert answers == [400] * (settings.AXES_FAILURE_LIMIT - 1) + [429]

    response = _paypal_change(partner_client, RIGHT)

    assert response.status_code == 429
    partner.refresh_from_db()
    assert partner.paypal_email != "new@example.com"


def test_the_settings_password_change_counts_toward_the_same_lockout_as_the_login(client, settings):
    partner = PartnerFactory(user__email="bob@example.com")
    client.force_login(partner.user)
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(
            reverse("partners:settings"),
            {
                "action": "password",
                "password-old_password": "wrong",
                "password-new_password1": "another-long-passphrase",
                "password-new_password2": "another-long-passphrase",
            },
        )
    client.logout()

    response = client.post(LOGIN, {"username": "bob@example.com", "password": RIGHT})

    assert response.status_code == 429


def test_the_settings_password_check_accepts_the_right_password(partner_client):
    response = _paypal_change(partner_client, RIGHT)
    assert response.status_code == 302
    partner_client.partner.refresh_from_db()
    assert partner_client.partner.paypal_email == "new@example.com"
