"""Issue 17, items 1 and 2: one spelling of an email address for the login lookup (partner and
admin login), the django-axes lockout key, sign-up uniqueness and password reset."""

from __future__ import annotations

import pytest
from django.urls import reverse

from partners.emails import normalize_email
from partners.models import User
from tests.factories import PartnerFactory, StaffFactory

pytestmark = pytest.mark.django_db

RIGHT = "correct-horse-battery"


def _lock(client, url: str, email: str, limit: int) -> None:
    for _ in range(limit):
        client.post(url, {"username": email, "password": "wrong"})


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("Ada@Example.com", "ada@example.com"),
        ("  ada@example.com ", "ada@example.com"),
        ("ſtrasse@example.com", "strasse@example.com"),  # NFKC folds the long s
        ("Straße@example.com", "strasse@example.com"),  # casefold, not lower
        ("ａｄａ@example.com", "ada@example.com"),  # fullwidth letters (NFKC)
    ],
)
def test_an_email_is_normalised_with_nfkc_and_casefold(typed, expected):
    assert normalize_email(typed) == expected


def test_the_admin_login_lockout_holds_whatever_the_case_of_the_email(client, settings):
    StaffFactory(email="admin@example.com", is_superuser=True)
    _lock(client, "/admin/login/", "admin@example.com", settings.AXES_FAILURE_LIMIT)

    response = client.post("/admin/login/?next=/admin/", {"username": "ADMIN@example.com", "password": RIGHT})

    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


def test_each_case_variant_does_not_get_its_own_attempts_on_the_admin_login(client, settings):
    StaffFactory(email="admin@example.com", is_superuser=True)
    for variant in (
        "admin@example.com",
        "Admin@example.com",
        "ADMIN@EXAMPLE.COM",
        "aDmIn@example.com",
        "admin@EXAMPLE.com",
    ):
        client.post("/admin/login/", {"username": variant, "password": "wrong"})

    response = client.post("/admin/login/", {"username": "admin@example.com", "password": RIGHT})

    assert response.status_code == 429


@pytest.mark.postgres
def test_the_partner_login_lockout_holds_for_a_dotless_i_on_postgresql(client, settings):
    # PostgreSQL's case-insensitive match folds "ı" to "i"; Python's lower() does not.
    PartnerFactory(user__email="priya@example.com")
    _lock(client, reverse("partners:login"), "priya@example.com", settings.AXES_FAILURE_LIMIT)

    response = client.post(reverse("partners:login"), {"username": "prıya@example.com", "password": RIGHT})

    assert "_auth_user_id" not in client.session
    assert response.status_code in (200, 429)


@pytest.mark.postgres
def test_a_dotless_i_spelling_is_not_the_account_on_postgresql(client):
    PartnerFactory(user__email="priya@example.com")

    client.post(reverse("partners:login"), {"username": "prıya@example.com", "password": RIGHT})

    assert "_auth_user_id" not in client.session


def test_a_long_s_spelling_is_the_same_account_and_the_same_lockout(client, settings):
    PartnerFactory(user__email="sara@example.com")
    _lock(client, reverse("partners:login"), "sara@example.com", settings.AXES_FAILURE_LIMIT)

    response = client.post(reverse("partners:login"), {"username": "ſara@example.com", "password": RIGHT})

    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


def test_the_user_manager_stores_the_normalised_email():
    user = User.objects.create_user(email="ＡＤＡ@Example.COM", password=RIGHT)
    assert user.email == "ada@example.com"


def test_the_admin_saves_a_user_email_normalised(client):
    admin = StaffFactory(is_superuser=True)
    user = PartnerFactory().user
    client.force_login(admin)
    response = client.post(
        reverse("admin:partners_user_change", args=[user.pk]),
        {
            "email": "Grace.Hopper@Example.com",
            "first_name": "",
            "last_name": "",
            "is_active": "on",
            "last_login_0": "",
            "last_login_1": "",
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
        },
    )
    assert response.status_code == 302, response.content
    user.refresh_from_db()
    assert user.email == "grace.hopper@example.com"


def test_the_admin_refuses_a_second_spelling_of_a_taken_email_with_a_form_error(client):
    admin = StaffFactory(is_superuser=True)
    PartnerFactory(user__email="taken@example.com")
    user = PartnerFactory().user
    client.force_login(admin)
    response = client.post(
        reverse("admin:partners_user_change", args=[user.pk]),
        {
            "email": "TAKEN@example.com",
            "is_active": "on",
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
        },
    )
    assert response.status_code == 200
    assert "email" in response.context["adminform"].form.errors
