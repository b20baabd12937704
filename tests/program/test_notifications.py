"""Issue 22 item 7: the emails partners choose in Settings."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from django.core import mail
from django.urls import reverse

from partners.models import Partner
from partners.notifications import notify_new_referrals, unsubscribe_url
from partners.tasks import monthly_statement_task, notify_new_activity_task
from payouts.tasks import notify_payout_task
from tests.factories import PartnerFactory, PayoutFactory, ReferralFactory
from tests.payouts.conftest import add_commission

pytestmark = pytest.mark.django_db


def _html(message) -> str:
    return next(content for content, mimetype in message.alternatives if mimetype == "text/html")


def test_settings_save_the_email_choices(partner_client):
    response = partner_client.post(
        reverse("partners:settings"),
        {"action": "notifications", "notify-notify_new_referral": "on", "notify-notify_monthly_statement": "on"},
    )
    assert response.status_code == 302
    partner = Partner.objects.get(pk=partner_client.partner.pk)
    assert (partner.notify_new_referral, partner.notify_new_commission, partner.notify_payout_sent) == (
        True,
        False,
        False,
    )
    assert partner.notify_monthly_statement


def test_new_referrals_are_emailed_once_to_partners_who_asked(partner):
    Partner.objects.filter(pk=partner.pk).update(notify_new_referral=True)
    quiet = PartnerFactory()
    ReferralFactory(click__link__partner=partner)
    ReferralFactory(click__link__partner=partner)
    ReferralFactory(click__link__partner=quiet)
    assert notify_new_referrals() == 1
    assert notify_new_referrals() == 0  # the cursor moved on
    (message,) = mail.outbox
    assert message.to == [partner.user.email]
    assert message.subject == "2 new referrals signed up"
    assert "Unsubscribe from new-referral emails: http://testserver/notifications/unsubscribe/" in message.body
    assert "List-Unsubscribe" in message.extra_headers
    assert "Unsubscribe" in _html(message)


def test_new_commissions_are_emailed_with_their_total(partner):
    Partner.objects.filter(pk=partner.pk).update(notify_new_commission=True)
    add_commission(partner, "9.80")
    add_commission(partner, "0.20")
    assert notify_new_activity_task()["new_commission"] == 1
    assert mail.outbox[0].subject == "You earned 10.00 USD in commission"


def test_payout_sent_email_follows_the_choice(partner):
    payout = PayoutFactory(partner=partner, status="paid")
    assert notify_payout_task(payout.pk, "paid") == 1
    assert "Unsubscribe from payout emails" in mail.outbox[0].body
    Partner.objects.filter(pk=partner.pk).update(notify_payout_sent=False)
    assert notify_payout_task(payout.pk, "paid") == 0


def test_the_monthly_statement_goes_once_per_month_with_last_months_numbers(partner):
    november = datetime(2026, 11, 10, tzinfo=UTC)
    add_commission(partner, "30.00", earned_at=november)
    add_commission(partner, "5.00", earned_at=november + timedelta(days=30))  # December
    assert monthly_statement_task("2026-11") == 1
    assert monthly_statement_task("2026-11") == 0  # a second beat run sends nothing more
    body = mail.outbox[0].body
    assert mail.outbox[0].subject.endswith("November 2026")
    assert "Commission earned:        30.00 USD" in body
    assert "Unsubscribe from monthly statements" in body


def test_the_unsubscribe_link_turns_one_email_off_without_logging_in(client, partner):
    url = unsubscribe_url(partner=partner, kind="monthly_statement").removeprefix("http://testserver")
    page = client.get(url)
    assert page.status_code == 200
    assert Partner.objects.get(pk=partner.pk).notify_monthly_statement  # a GET (a mail scanner) changes nothing
    done = client.post(url)
    assert b"You are unsubscribed" in done.content
    assert not Partner.objects.get(pk=partner.pk).notify_monthly_statement
    assert Partner.objects.get(pk=partner.pk).notify_payout_sent


def test_a_forged_unsubscribe_token_is_refused(client, partner):
    assert client.post("/notifications/unsubscribe/not-a-token/").status_code == 400


def test_statement_month_defaults_to_last_month(partner, monkeypatch):
    from partners import notifications

    seen = {}
    monkeypatch.setattr(notifications, "send_monthly_statements", lambda *, month: seen.setdefault("m", month) and 0)
    monthly_statement_task()
    today = date.today()
    assert seen["m"] == (today.replace(day=1) - timedelta(days=1)).replace(day=1)
