"""Issue 17, item 5: sign-up does not tell whether an email has an account, is throttled per
address, and the emailed confirmation link is needed before the first withdrawal."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core import mail
from django.urls import reverse

from partners.models import Partner, User
from payouts.models import Payout
from tests.factories import CommissionEntryFactory, PartnerFactory, UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-and-unusual-passphrase"


def _signup(client, email: str, **extra):
    data = {"name": "Ada", "email": email, "password": PASSWORD, "website": "", "accept_terms": "on"}
    return client.post(reverse("partners:signup"), data, **extra)


def _answer(response) -> tuple:
    return response.status_code, response.get("Location"), sorted(response.cookies.keys())


def test_the_signup_answer_is_the_same_for_a_taken_and_a_free_email(client, django_capture_on_commit_callbacks):
    PartnerFactory(user__email="taken@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        taken = _signup(client, "Taken@example.com")
        free = _signup(client, "free@example.com")

    assert _answer(taken) == _answer(free)
    assert "_auth_user_id" not in client.session
    done = client.get(taken["Location"])
    assert done.status_code == 200 and b"Check your inbox" in done.content


def test_the_owner_of_a_taken_email_is_told_someone_tried_and_nothing_is_created(
    client, django_capture_on_commit_callbacks
):
    PartnerFactory(user__email="taken@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        _signup(client, "taken@example.com")

    assert User.objects.count() == 1
    (notice,) = mail.outbox
    assert notice.to == ["taken@example.com"]
    assert "tried to sign up" in notice.subject
    assert "/accounts/password_reset/" in notice.body


def test_the_taken_email_notice_is_limited_per_hour(client, django_capture_on_commit_callbacks):
    PartnerFactory(user__email="taken@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(6):
            _signup(client, "taken@example.com")
    assert len(mail.outbox) == 3


def test_signup_is_throttled_per_address(client, settings):
    settings.SIGNUP_LIMIT_PER_HOUR = 3
    answers = [_signup(client, f"probe{n}@example.com", REMOTE_ADDR="203.0.113.7").status_code for n in range(5)]

    assert answers == [302, 302, 302, 429, 429]
    assert User.objects.count() == 3
    # Another address is not limited by this one.
    assert _signup(client, "other@example.com", REMOTE_ADDR="198.51.100.2").status_code == 302


def test_a_throttled_signup_says_why_and_writes_nothing(client, settings):
    settings.SIGNUP_LIMIT_PER_HOUR = 0
    response = _signup(client, "late@example.com")
    assert response.status_code == 429
    assert "Too many sign-ups" in response.content.decode()
    assert not User.objects.exists()


def test_the_confirmation_link_works_once(client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        _signup(client, "ada@example.com")
    link = next(line for line in mail.outbox[0].body.splitlines() if "/accounts/confirm/" in line)
    path = link.split("testserver", 1)[1]

    assert client.get(path).url == reverse("partners:dashboard")
    client.logout()
    again = client.get(path)
    assert again.url == reverse("partners:login")
    assert "_auth_user_id" not in client.session


def test_a_forged_confirmation_link_confirms_nothing(client):
    user = UserFactory(email_verified_at=None)
    response = client.get(reverse("partners:email_confirm", kwargs={"uidb64": "MQ", "token": "abc-def"}))
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.email_verified_at is None
    assert "_auth_user_id" not in client.session


def _unconfirmed_partner_with_balance(amount: str = "80.00") -> Partner:
    partner = PartnerFactory(user__email_verified_at=None)
    CommissionEntryFactory(payment__referral__click__link__partner=partner, amount=Decimal(amount))
    return partner


def test_an_unconfirmed_partner_cannot_withdraw_and_is_told_why(client):
    partner = _unconfirmed_partner_with_balance()
    client.force_login(partner.user)

    response = client.post(reverse("payouts:payout_request"), follow=True)

    assert not Payout.objects.exists()
    assert "Confirm your email address before your first withdrawal" in response.content.decode()


def test_the_payouts_page_offers_the_confirmation_link_again(client, django_capture_on_commit_callbacks):
    partner = _unconfirmed_partner_with_balance()
    client.force_login(partner.user)

    page = client.get(reverse("payouts:payout_list")).content.decode()
    assert 'data-reason="email_unconfirmed"' in page
    assert reverse("partners:email_confirm_resend") in page

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("partners:email_confirm_resend"), {"next": "/payouts/"})
    assert response.url == "/payouts/"
    (sent,) = mail.outbox
    link = next(line for line in sent.body.splitlines() if "/accounts/confirm/" in line)
    client.get(link.split("testserver", 1)[1])

    assert client.post(reverse("payouts:payout_request")).status_code == 302
    assert Payout.objects.filter(partner=partner).count() == 1


def test_the_confirmation_resend_is_limited(client, django_capture_on_commit_callbacks):
    partner = PartnerFactory(user__email_verified_at=None)
    client.force_login(partner.user)
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(5):
            client.post(reverse("partners:email_confirm_resend"))
    assert len(mail.outbox) == 3


@pytest.mark.parametrize("email", ["Bob@Example.com", "nobody@example.com"])
def test_password_reset_hands_the_lookup_and_the_email_to_a_task_for_known_and_unknown_emails(
    client, monkeypatch, email
):
    from partners import tasks

    PartnerFactory(user__email="bob@example.com")
    queued = []
    monkeypatch.setattr(tasks.password_reset_email_task, "delay", lambda *args: queued.append(args))

    response = client.post(reverse("partners:password_reset"), {"email": email})

    assert response.status_code == 302
    assert queued == [(email.casefold(),)]
    assert mail.outbox == []  # nothing sent while the request waits


def test_password_reset_answers_503_when_the_task_cannot_be_queued(client, monkeypatch):
    from kombu.exceptions import OperationalError

    from partners import tasks

    def broker_down(*args):
        raise OperationalError("connection refused")

    monkeypatch.setattr(tasks.password_reset_email_task, "delay", broker_down)
    response = client.post(reverse("partners:password_reset"), {"email": "bob@example.com"})
    assert response.status_code == 503
