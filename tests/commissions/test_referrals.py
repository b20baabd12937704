"""customer.signed_up and subscription.cancelled: attribution, trials, self-referrals."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from commissions.models import MerchantEvent, Referral
from commissions.selectors import active_trials, referral_counts, referral_status
from commissions.services import referrals_expire_trials
from tests.commissions.conftest import cancelled, iso, paid, signed_up
from tests.factories import ClickFactory, LinkFactory, PartnerFactory
from tracking.models import DailyLinkStats
from tracking.rollups import program_day

pytestmark = pytest.mark.django_db


def _click_days_ago(days: float, **link_kw):
    return ClickFactory(created_at=timezone.now() - timedelta(days=days), link=LinkFactory(**link_kw))


def test_a_sign_up_through_a_click_makes_a_trial_referral_of_the_links_partner(send, click):
    created = timezone.now()
    response = send(signed_up("cus_1", click.id, created=created))
    assert response.status_code == 201
    referral = Referral.objects.get()
    assert (referral.partner, referral.link, referral.click) == (click.link.partner, click.link, click)
    assert referral.status == Referral.Status.TRIAL
    assert referral.trial_ends_at == created + timedelta(days=14)
    assert response.json() == {
        "referral": {
            "id": referral.pk,
            "partner": click.link.partner.referral_code,
            "status": "trial",
            "trial_days": 14,
            "trial_ends_at": iso(referral.trial_ends_at),
        }
    }


def test_a_30_day_link_gives_a_30_day_trial(send):
    click = _click_days_ago(1, trial_days=30)
    created = timezone.now()
    response = send(signed_up("cus_1", click.id, created=created))
    assert response.json()["referral"]["trial_days"] == 30
    assert Referral.objects.get().trial_ends_at == created + timedelta(days=30)


def test_a_sign_up_on_day_89_after_the_click_is_attributed(send):
    click = _click_days_ago(100)
    response = send(signed_up("cus_1", click.id, created=click.created_at + timedelta(days=89)))
    assert response.json()["referral"] is not None


def test_a_sign_up_exactly_at_the_end_of_the_window_is_attributed(send):
    click = _click_days_ago(100)
    response = send(signed_up("cus_1", click.id, created=click.created_at + timedelta(days=90)))
    assert response.json()["referral"] is not None


def test_a_sign_up_on_day_91_after_the_click_is_not_attributed(send):
    click = _click_days_ago(100)
    response = send(signed_up("cus_1", click.id, created=click.created_at + timedelta(days=91)))
    assert response.status_code == 201
    assert response.json() == {"referral": None}
    assert not Referral.objects.exists()
    assert MerchantEvent.objects.get().outcome == MerchantEvent.Outcome.NOT_REFERRED


def test_the_attribution_window_is_a_setting(send, settings):
    settings.ATTRIBUTION_WINDOW_DAYS = 30
    click = _click_days_ago(40)
    assert send(signed_up("cus_1", click.id, created=click.created_at + timedelta(days=31))).json() == {
        "referral": None
    }


def test_a_sign_up_before_the_click_is_not_attributed(send, click):
    response = send(signed_up("cus_1", click.id, created=click.created_at - timedelta(minutes=1)))
    assert response.json() == {"referral": None}


@pytest.mark.parametrize("click_id", [None, "", str(uuid.uuid4()), "garbage-cookie-value"])
def test_an_unknown_or_missing_click_gives_no_referral(send, click_id):
    response = send(signed_up("cus_1", click_id))
    assert response.status_code == 201
    assert response.json() == {"referral": None}
    assert not Referral.objects.exists()


def test_a_customer_is_referred_once_and_the_first_partner_keeps_it(send, click):
    first = send(signed_up("cus_1", click.id))
    other_click = _click_days_ago(1)
    second = send(signed_up("cus_1", other_click.id))
    assert second.status_code == 200
    assert second.json() == first.json()
    assert Referral.objects.get().partner == click.link.partner
    assert MerchantEvent.objects.get(event_id=MerchantEvent.objects.order_by("id").last().event_id).outcome == (
        MerchantEvent.Outcome.DUPLICATE
    )


def test_a_sign_up_counts_one_new_trial_on_its_day_for_its_link(send, click):
    created = timezone.now()
    send(signed_up("cus_1", click.id, created=created))
    stats = DailyLinkStats.objects.get(link=click.link, day=program_day(created))
    assert (stats.new_trials, stats.new_subscriptions, stats.partner_id) == (1, 0, click.link.partner_id)


def test_a_sign_up_with_the_partners_own_email_is_a_flagged_self_referral_earning_nothing(send):
    partner = PartnerFactory(user__email="owner@example.com")
    click = ClickFactory(link=LinkFactory(partner=partner), created_at=timezone.now() - timedelta(hours=1))
    response = send(signed_up("cus_self", click.id, email="Owner@Example.COM"))
    assert response.status_code == 201
    referral = Referral.objects.get()
    assert referral.is_self_referral
    payment = send(paid("pay_self", "cus_self", "100.00"))
    assert payment.status_code == 201
    assert payment.json()["commission"] == {"amount": "0.00"}
    assert payment.json()["payment"]["amount"] == "100.00"
    referral.refresh_from_db()
    assert (referral.total_paid, referral.total_commission) == (100, 0)


def test_a_sign_up_with_another_email_is_not_a_self_referral(send, click):
    send(signed_up("cus_1", click.id, email="someone@example.org"))
    assert not Referral.objects.get().is_self_referral


def test_cancelling_a_referral_turns_it_cancelled(send, referral_of):
    referral = referral_of("cus_1")
    when = timezone.now()
    response = send(cancelled("cus_1", created=when))
    assert response.status_code == 201
    assert response.json()["referral"]["status"] == "cancelled"
    referral.refresh_from_db()
    assert (referral.status, referral.cancelled_at) == (Referral.Status.CANCELLED, when)


def test_cancelling_twice_changes_nothing_the_second_time(send, referral_of):
    referral_of("cus_1")
    first_time = timezone.now() - timedelta(minutes=5)
    send(cancelled("cus_1", created=first_time))
    again = send(cancelled("cus_1"))
    assert again.status_code == 200
    assert Referral.objects.get().cancelled_at == first_time


def test_cancelling_a_stranger_answers_null(send):
    assert send(cancelled("cus_unknown")).json() == {"referral": None}


def test_a_payment_after_cancellation_makes_the_referral_paying_again(send, referral_of):
    referral_of("cus_1")
    send(paid("pay_1", "cus_1"))
    send(cancelled("cus_1"))
    send(paid("pay_2", "cus_1"))
    assert Referral.objects.get().status == Referral.Status.PAYING


# --- trials that end -------------------------------------------------------------------


def test_a_trial_past_its_end_is_not_active_even_before_the_expiry_task_runs(send):
    click = _click_days_ago(20)
    send(signed_up("cus_1", click.id, created=click.created_at + timedelta(hours=1)))
    referral = Referral.objects.get()
    assert referral.status == Referral.Status.TRIAL  # the task has not run
    assert not active_trials(Referral.objects.all()).exists()
    assert referral_status(referral) == "expired"
    assert referral_counts(partner=referral.partner)["active_trials"] == 0


def test_a_trial_still_running_is_active(send, click):
    send(signed_up("cus_1", click.id))
    referral = Referral.objects.get()
    assert list(active_trials()) == [referral]
    assert referral_counts(partner=referral.partner) == {"active_trials": 1, "active_subscriptions": 0}


def test_the_expiry_task_marks_ended_trials_only(send):
    old = _click_days_ago(20)
    send(signed_up("cus_old", old.id, created=old.created_at + timedelta(hours=1)))
    fresh = _click_days_ago(1)
    send(signed_up("cus_new", fresh.id))
    paying_click = _click_days_ago(20)
    send(signed_up("cus_paid", paying_click.id, created=paying_click.created_at + timedelta(hours=1)))
    send(paid("pay_1", "cus_paid"))
    from commissions.tasks import expire_trials_task

    assert expire_trials_task.delay().get() == 1
    statuses = dict(Referral.objects.values_list("customer_id", "status"))
    assert statuses == {"cus_old": "expired", "cus_new": "trial", "cus_paid": "paying"}
    assert referrals_expire_trials() == 0  # idempotent


def test_a_payment_after_the_trial_ended_turns_the_referral_paying(send):
    click = _click_days_ago(20)
    send(signed_up("cus_1", click.id, created=click.created_at + timedelta(hours=1)))
    referrals_expire_trials()
    response = send(paid("pay_1", "cus_1"))
    assert response.status_code == 201
    assert Referral.objects.get().status == Referral.Status.PAYING


def test_a_duplicate_sign_up_reports_an_ended_trial_as_expired(send):
    click = _click_days_ago(20)
    send(signed_up("cus_1", click.id, created=click.created_at + timedelta(hours=1)))
    assert send(signed_up("cus_1", click.id)).json()["referral"]["status"] == "expired"
