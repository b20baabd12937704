from __future__ import annotations

import pytest
from django.core import mail
from django.urls import reverse

from partners.models import Partner, User
from tests.factories import PartnerFactory
from tracking.models import Link

pytestmark = pytest.mark.django_db


def _signup(client, **overrides):
    data = {
        "name": "Ada Lovelace",
        "email": "Ada@Example.com",
        "password": "a-long-and-unusual-passphrase",
        "website": "ada.example.com",
        "accept_terms": "on",
    }
    data.update(overrides)
    return client.post(reverse("partners:signup"), data)


def test_signup_creates_partner_with_default_link_and_sends_the_confirmation_link(
    client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = _signup(client)

    assert response.status_code == 302
    assert response.url == reverse("partners:signup_done")
    partner = Partner.objects.get(user__email="ada@example.com")
    assert partner.website == "https://ada.example.com"
    assert partner.user.email_verified_at is None
    link = Link.objects.get(partner=partner)
    assert link.is_default and link.code == partner.referral_code and link.trial_days == 14
    # Not logged in by the sign-up answer (it must read the same for a taken email); the
    # emailed link confirms the address and opens the panel.
    assert "_auth_user_id" not in client.session
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["ada@example.com"]
    confirm = next(line for line in mail.outbox[0].body.splitlines() if "/accounts/confirm/" in line)
    response = client.get(confirm.split("testserver", 1)[1])
    assert response.url == reverse("partners:dashboard")
    assert client.get(reverse("partners:dashboard")).status_code == 200
    partner.user.refresh_from_db()
    assert partner.user.email_verified_at is not None


def test_referral_codes_are_unique_and_unguessable(client):
    _signup(client)
    client.logout()
    _signup(client, email="grace@example.com", name="Grace")
    codes = list(Partner.objects.values_list("referral_code", flat=True))
    assert len(set(codes)) == 2
    assert all(len(code) >= 10 for code in codes)


def test_signup_requires_terms_and_writes_nothing(client):
    response = _signup(client, accept_terms="")
    assert response.status_code == 200
    assert "accept_terms" in response.context["form"].errors
    assert not User.objects.exists()


def test_signup_with_a_taken_email_in_any_case_creates_nothing_and_tells_the_owner(
    client, django_capture_on_commit_callbacks
):
    PartnerFactory(user__email="ada@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        response = _signup(client, email="ADA@example.com")
    assert response.status_code == 302 and response.url == reverse("partners:signup_done")
    assert User.objects.count() == 1
    assert [m.to for m in mail.outbox] == [["ada@example.com"]]
    assert "tried to sign up" in mail.outbox[0].subject


def test_signup_refuses_a_weak_password(client):
    response = _signup(client, password="password")
    assert "password" in response.context["form"].errors
    assert not Partner.objects.exists()


def test_login_is_by_email_case_insensitive(client):
    partner = PartnerFactory(user__email="bob@example.com")
    response = client.post(
        reverse("partners:login"), {"username": "BOB@example.com", "password": "correct-horse-battery"}
    )
    assert response.status_code == 302
    assert int(client.session["_auth_user_id"]) == partner.user.pk


def test_repeated_bad_logins_are_throttled(client, settings):
    PartnerFactory(user__email="bob@example.com")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(reverse("partners:login"), {"username": "bob@example.com", "password": "wrong"})
    # Even the right password is refused while locked out.
    response = client.post(
        reverse("partners:login"), {"username": "bob@example.com", "password": "correct-horse-battery"}
    )
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


def test_the_lockout_is_per_client_address_though_addresses_are_stored_as_pseudonyms(client, settings):
    from axes.models import AccessAttempt

    PartnerFactory(user__email="bob@example.com")
    login = reverse("partners:login")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(login, {"username": "bob@example.com", "password": "wrong"}, REMOTE_ADDR="203.0.113.5")
    right = {"username": "bob@example.com", "password": "correct-horse-battery"}
    assert client.post(login, right, REMOTE_ADDR="203.0.113.5").status_code == 429
    # The same account from another address is not locked out by this one's failures.
    assert client.post(login, right, REMOTE_ADDR="198.51.100.9").status_code == 302
    assert "203.0.113.5" not in AccessAttempt.objects.values_list("ip_address", flat=True)


def test_logout_is_post_only(partner_client):
    assert partner_client.get(reverse("partners:logout")).status_code == 405
    response = partner_client.post(reverse("partners:logout"))
    assert response.status_code == 302
    assert "_auth_user_id" not in partner_client.session


def test_password_reset_sends_an_email_with_a_working_link(client):
    PartnerFactory(user__email="bob@example.com")
    response = client.post(reverse("partners:password_reset"), {"email": "bob@example.com"})
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    body = mail.outbox[0].body
    link = next(line for line in body.splitlines() if "/accounts/reset/" in line)
    path = link.split("testserver", 1)[1]
    follow = client.get(path, follow=True)
    assert follow.status_code == 200
    assert follow.context["validlink"] is True


def test_password_reset_for_unknown_email_looks_the_same_and_sends_nothing(client):
    response = client.post(reverse("partners:password_reset"), {"email": "nobody@example.com"})
    assert response.status_code == 302
    assert mail.outbox == []


def test_password_reset_is_throttled(client, settings):
    PartnerFactory(user__email="bob@example.com")
    for _ in range(settings.PASSWORD_RESET_LIMIT_PER_HOUR):
        client.post(reverse("partners:password_reset"), {"email": "bob@example.com"})
    response = client.post(reverse("partners:password_reset"), {"email": "bob@example.com"})
    assert response.status_code == 429
    assert len(mail.outbox) == settings.PASSWORD_RESET_LIMIT_PER_HOUR


PANEL_URLS = [
    "/dashboard/",
    "/resources/",
    "/referrals/",
    "/referrals/1/",
    "/commissions/",
    "/performance/",
    "/payouts/",
    "/settings/",
]


@pytest.mark.parametrize("url", PANEL_URLS)
def test_anonymous_users_are_sent_to_login_from_every_panel_page(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response.url.startswith(reverse("partners:login") + "?next=")


def test_staff_without_partner_profile_gets_forbidden_not_a_crash(client):
    staff = User.objects.create_user(email="staff@example.com", password="x-very-long-pass", is_staff=True)
    client.force_login(staff)
    assert client.get("/dashboard/").status_code == 403


def test_admin_lists_and_searches_partners_for_staff_only(client, partner_client):
    PartnerFactory(user__email="findme@example.com", referral_code="findme1234")
    assert partner_client.get("/admin/partners/partner/").status_code == 302
    admin = User.objects.create_superuser(email="admin@example.com", password="x-very-long-pass")
    client.force_login(admin)
    response = client.get("/admin/partners/partner/", {"q": "findme1234"})
    assert response.status_code == 200
    assert b"findme@example.com" in response.content
