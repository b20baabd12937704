"""payment.succeeded and payment.refunded: commissions, reversals, rollups, balances."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from commissions.balance import partner_balance
from commissions.models import CommissionEntry, MerchantEvent, Payment, Referral, Refund
from commissions.money import commission_for, reversal_for
from tests.commissions.conftest import iso, paid, refunded, row_counts
from tracking.models import DailyLinkStats
from tracking.rollups import program_day

pytestmark = pytest.mark.django_db

D = Decimal


@pytest.mark.parametrize(
    ("amount", "commission"),
    [("49.99", "10.00"), ("0.05", "0.01"), ("0.02", "0.00"), ("49.00", "9.80"), ("0.025", "0.01"), ("99.97", "19.99")],
)
def test_the_commission_is_20_percent_rounded_half_up_to_the_cent(amount, commission):
    assert commission_for(D(amount)) == D(commission)


@pytest.mark.parametrize(("amount", "commission"), [("49.99", "10.00"), ("0.05", "0.01"), ("0.02", "0.00")])
def test_a_payment_of_a_referral_earns_its_commission_through_the_api(send, referral_of, amount, commission):
    referral_of("cus_1")
    response = send(paid("pay_1", "cus_1", amount))
    assert response.status_code == 201
    assert response.json()["commission"] == {"amount": commission}
    assert CommissionEntry.objects.get().amount == D(commission)


def test_the_commission_rate_is_a_setting(send, referral_of, settings):
    settings.COMMISSION_RATE = D("0.30")
    referral_of("cus_1")
    assert send(paid("pay_1", "cus_1", "10.00")).json()["commission"] == {"amount": "3.00"}


def test_a_payment_answers_with_the_payment_and_its_commission(send, referral_of):
    referral = referral_of("cus_1")
    when = timezone.now()
    response = send(paid("pay_1", "cus_1", "49.00", plan="B", seats=3, created=when))
    assert response.json() == {
        "payment": {
            "payment_id": "pay_1",
            "customer_id": "cus_1",
            "referral": referral.pk,
            "amount": "49.00",
            "currency": "USD",
            "plan": "B",
            "seats": 3,
            "paid_at": iso(when),
            "refunded_amount": "0.00",
        },
        "commission": {"amount": "9.80"},
    }


def test_the_first_payment_turns_the_trial_paying_and_counts_a_new_subscription(send, referral_of):
    referral = referral_of("cus_1")
    when = timezone.now()
    send(paid("pay_1", "cus_1", "49.00", plan="B", seats=2, created=when))
    referral.refresh_from_db()
    assert referral.status == Referral.Status.PAYING
    assert referral.first_paid_at == when
    stats = DailyLinkStats.objects.get(link=referral.link, day=program_day(when))
    assert (stats.new_trials, stats.new_subscriptions, stats.commission) == (1, 1, D("9.80"))


def test_later_payments_are_not_new_subscriptions_and_update_plan_seats_and_totals(send, referral_of):
    referral = referral_of("cus_1")
    first = timezone.now() - timedelta(minutes=10)
    send(paid("pay_1", "cus_1", "49.00", plan="A", seats=1, created=first))
    send(paid("pay_2", "cus_1", "147.00", plan="C", seats=3))
    referral.refresh_from_db()
    assert (referral.plan, referral.seats) == ("C", 3)
    assert referral.first_paid_at == first
    assert (referral.total_paid, referral.total_commission) == (D("196.00"), D("39.20"))
    assert sum(s.new_subscriptions for s in DailyLinkStats.objects.all()) == 1


def test_a_known_payment_id_under_a_new_event_id_answers_200_and_changes_nothing(send, referral_of):
    referral_of("cus_1")
    first = send(paid("pay_1", "cus_1", "49.00"))
    before = row_counts()
    again = send(paid("pay_1", "cus_1", "49.00"))
    assert again.status_code == 200
    assert again.json() == first.json()
    after = row_counts()
    assert after["MerchantEvent"] == before["MerchantEvent"] + 1  # logged
    assert {k: v for k, v in after.items() if k != "MerchantEvent"} == {
        k: v for k, v in before.items() if k != "MerchantEvent"
    }
    assert MerchantEvent.objects.order_by("id").last().outcome == MerchantEvent.Outcome.DUPLICATE


def test_a_payment_for_a_customer_who_is_not_a_referral_is_logged_with_null_commission(send):
    response = send(paid("pay_1", "cus_stranger", "49.00"))
    assert response.status_code == 201
    assert response.json() == {"payment": None, "commission": None}
    assert not Payment.objects.exists()
    assert not CommissionEntry.objects.exists()
    assert MerchantEvent.objects.get().outcome == MerchantEvent.Outcome.NOT_REFERRED


# --- refunds ---------------------------------------------------------------------------


def test_a_partial_refund_reverses_its_part_of_the_commission(send, referral_of):
    referral = referral_of("cus_1")
    send(paid("pay_1", "cus_1", "49.00"))
    when = timezone.now()
    response = send(refunded("pay_1", "10.00", created=when))
    assert response.status_code == 201
    assert response.json() == {
        "refund": {
            "payment_id": "pay_1",
            "amount": "10.00",
            "refunded_at": iso(when),
            "payment_refunded_amount": "10.00",
            "payment_remaining_amount": "39.00",
        },
        "commission": {"amount": "-2.00"},
    }
    reversal = CommissionEntry.objects.get(kind=CommissionEntry.Kind.REVERSAL)
    assert (reversal.amount, reversal.refund, reversal.earned_at) == (D("-2.00"), Refund.objects.get(), when)
    referral.refresh_from_db()
    assert (referral.total_paid, referral.total_commission) == (D("39.00"), D("7.80"))


def test_refunding_the_rest_reverses_exactly_what_is_left_so_the_payment_nets_zero(send, referral_of):
    referral_of("cus_1")
    send(paid("pay_1", "cus_1", "49.99"))  # commission 10.00
    assert send(refunded("pay_1", "0.03")).json()["commission"] == {"amount": "-0.01"}  # 0.006 -> 0.01
    final = send(refunded("pay_1", "49.96"))  # 9.992 would round to 9.99; what is left is 9.99
    assert final.json()["commission"] == {"amount": "-9.99"}
    assert final.json()["refund"]["payment_remaining_amount"] == "0.00"
    entries = CommissionEntry.objects.filter(payment__payment_id="pay_1")
    assert sum(e.amount for e in entries) == D("0.00")


def test_per_refund_rounding_never_reverses_more_than_was_earned(send, referral_of):
    referral_of("cus_1")
    send(paid("pay_1", "cus_1", "0.10"))  # commission 0.02
    amounts = [send(refunded("pay_1", "0.03")).json()["commission"]["amount"] for _ in range(3)]
    last = send(refunded("pay_1", "0.01")).json()["commission"]["amount"]
    assert amounts == ["-0.01", "-0.01", "0.00"]  # capped at what is left
    assert last == "0.00"
    assert sum(e.amount for e in CommissionEntry.objects.all()) == D("0.00")


def test_a_full_refund_at_once_nets_the_payment_to_zero(send, referral_of):
    referral = referral_of("cus_1")
    send(paid("pay_1", "cus_1", "0.05"))
    assert send(refunded("pay_1", "0.05")).json()["commission"] == {"amount": "-0.01"}
    referral.refresh_from_db()
    assert (referral.total_paid, referral.total_commission) == (D("0.00"), D("0.00"))


def test_a_refund_is_counted_in_the_rollup_of_its_own_day(send, referral_of):
    referral = referral_of("cus_1")
    paid_at = timezone.now() - timedelta(days=3)
    send(paid("pay_1", "cus_1", "49.00", created=paid_at))
    refund_at = timezone.now()
    send(refunded("pay_1", "49.00", created=refund_at))
    by_day = dict(DailyLinkStats.objects.filter(link=referral.link).values_list("day", "commission"))
    assert by_day[program_day(paid_at)] == D("9.80")
    assert by_day[program_day(refund_at)] == D("-9.80")


def test_a_refund_of_an_unknown_payment_is_logged_with_null(send):
    response = send(refunded("pay_never_seen", "5.00"))
    assert response.status_code == 201
    assert response.json() == {"refund": None, "commission": None}
    assert MerchantEvent.objects.get().outcome == MerchantEvent.Outcome.NOT_REFERRED


def test_the_ledger_is_never_edited_a_refund_adds_a_row(send, referral_of):
    referral_of("cus_1")
    send(paid("pay_1", "cus_1", "49.00"))
    original = CommissionEntry.objects.get()
    send(refunded("pay_1", "49.00"))
    original_after = CommissionEntry.objects.get(pk=original.pk)
    assert (original_after.amount, original_after.kind) == (original.amount, original.kind)
    assert CommissionEntry.objects.count() == 2


@pytest.mark.parametrize(
    ("refunded_", "left", "completes", "expected"),
    [
        ("10.00", "9.80", False, "-2.00"),
        ("0.03", "0.01", False, "-0.01"),
        ("39.00", "7.80", True, "-7.80"),
        ("1.00", "0.00", True, "0.00"),
    ],
)
def test_reversal_rules(refunded_, left, completes, expected):
    assert reversal_for(refunded=D(refunded_), commission_left=D(left), completes_payment=completes) == D(expected)


# --- balances ----------------------------------------------------------------------------


def test_a_money_event_recalculates_the_partners_denormalised_balance(
    send, referral_of, django_capture_on_commit_callbacks
):
    referral = referral_of("cus_1")
    with django_capture_on_commit_callbacks(execute=True):
        send(paid("pay_1", "cus_1", "49.00"))
    partner = referral.partner
    partner.refresh_from_db()
    assert (partner.commission_total, partner.balance) == (D("9.80"), D("9.80"))
    assert partner.balance_updated_at is not None
    with django_capture_on_commit_callbacks(execute=True):
        send(refunded("pay_1", "10.00"))
    partner.refresh_from_db()
    assert (partner.commission_total, partner.balance) == (D("7.80"), D("7.80"))


def test_a_commission_counts_in_the_balance_only_after_the_hold(send, referral_of, settings):
    settings.COMMISSION_HOLD_DAYS = 30
    referral = referral_of("cus_1")
    send(paid("pay_1", "cus_1", "49.00", created=timezone.now() - timedelta(days=29)))
    send(paid("pay_2", "cus_1", "100.00", created=timezone.now() - timedelta(days=31)))
    partner = referral.partner
    assert partner_balance(partner=partner) == D("20.00")  # only the 31-day-old one
    assert partner_balance(partner=partner, now=timezone.now() + timedelta(days=2)) == D("29.80")


def test_a_reversal_counts_at_once_even_during_the_hold(send, referral_of, settings):
    settings.COMMISSION_HOLD_DAYS = 30
    referral = referral_of("cus_1")
    send(paid("pay_1", "cus_1", "100.00", created=timezone.now() - timedelta(days=40)))
    send(paid("pay_2", "cus_1", "50.00"))  # held
    send(refunded("pay_2", "50.00"))
    assert partner_balance(partner=referral.partner) == D("10.00")  # 20.00 - 10.00 reversal
