"""The dashboard KPIs against docs/reference.md's definitions, on a scenario built by hand."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from payouts.models import Payout
from tests.factories import LinkFactory, PartnerFactory, PayoutFactory
from tests.reports import builders as b
from tracking.reports import partner_summary

pytestmark = pytest.mark.django_db


@pytest.fixture
def scenario(partner):
    """Two links, repeat clicks, clicks at 29, 30 and 31 days, referrals in every state, a
    refund, a paid payout, and another partner whose activity must never show."""
    now = timezone.now()
    default = partner.links.get(is_default=True)
    custom = LinkFactory(partner=partner, trial_days=30)
    day = timedelta(days=1)

    first = b.click(default, "v1", now - timedelta(hours=2))
    b.click(default, "v1", now - timedelta(hours=1))  # repeat: a click, no unique click
    b.click(custom, "v1", now - timedelta(hours=1))  # same visitor, other link: unique
    b.click(default, "v2", now - 10 * day)
    b.click(custom, "v4", now - 29 * day)  # inside the 30 days (today included)
    b.click(custom, "v5", now - 30 * day)  # the 31st day back: outside
    old = b.click(default, "v3", now - 31 * day)  # 31 days old: outside
    b.click(default, "v3", now - timedelta(minutes=5))  # its repeat today: not unique either
    paying_click = b.click(custom, "v6", now - 45 * day)
    churned_click = b.click(custom, "v7", now - 60 * day)

    b.signup(first, now - timedelta(minutes=30))  # active trial
    b.signup(old, now - 20 * day)  # 14-day trial that ended unpaid: not active
    paying = b.signup(paying_click, now - 44 * day)
    payment = b.pay(paying, "100.00", now - 14 * day)  # commission 20.00
    b.refund(payment, "25.00", now - 13 * day)  # reversal -5.00
    churned = b.signup(churned_click, now - 59 * day)
    b.pay(churned, "49.99", now - 29 * day)  # commission 10.00
    b.cancel(churned, now - 3 * day)
    PayoutFactory(partner=partner, amount=Decimal("10.00"), status=Payout.Status.PAID)
    PayoutFactory(partner=partner, amount=Decimal("7.00"), status=Payout.Status.REJECTED, rejection_reason="test")

    other = PartnerFactory()
    other_link = other.links.get(is_default=True)
    other_click = b.click(other_link, "v1", now)
    b.pay(b.signup(other_click, now), "500.00", now)
    return partner


def test_kpis_follow_the_contract_definitions(scenario):
    summary = partner_summary(scenario)
    assert summary.commission == Decimal("25.00")  # 20.00 - 5.00 + 10.00
    assert summary.unique_clicks_30d == 4  # v1 on each link, v2, v4
    assert summary.active_trials == 1
    assert summary.active_subscriptions == 1
    assert summary.balance == Decimal("15.00")  # 25.00 - the paid 10.00; rejected payouts give back
    assert summary.currency == "USD"
    assert summary.can_withdraw is False
    assert summary.withdrawal.reason_code == "below_minimum"


def test_summary_endpoint_returns_the_same_numbers_as_strings_for_money(scenario, client):
    client.force_login(scenario.user)
    response = client.get("/api/v1/partner/summary")
    assert response.status_code == 200
    assert response.json() == {
        "currency": "USD",
        "commission": "25.00",
        "unique_clicks_30d": 4,
        "active_trials": 1,
        "active_subscriptions": 1,
        "balance": "15.00",
        "can_withdraw": False,
        "pending_commission": "0.00",  # docs/reference.md, the partner JSON API
    }


def test_a_trial_past_its_end_stops_counting_before_any_expiry_task_runs(partner):
    now = timezone.now()
    link = partner.links.get()
    b.signup(b.click(link, "late", now - timedelta(days=15)), now - timedelta(days=15))
    assert partner_summary(partner).active_trials == 0


def test_partner_with_fifty_dollars_and_a_paypal_email_can_withdraw(partner):
    now = timezone.now()
    referral = b.signup(b.click(partner.links.get(), "rich", now), now)
    b.pay(referral, "250.00", now)  # commission 50.00, exactly the minimum
    summary = partner_summary(partner)
    assert summary.balance == Decimal("50.00")
    assert summary.can_withdraw is True


def test_dashboard_shows_each_kpi_with_its_explanation(scenario, client):
    client.force_login(scenario.user)
    response = client.get(reverse("partners:dashboard"))
    assert response.status_code == 200
    html = response.content.decode()
    for kpi_id, value in (
        ("kpi-commission", "25.00"),
        ("kpi-unique-clicks", ">4<"),
        ("kpi-active-trials", ">1<"),
        ("kpi-active-subscriptions", ">1<"),
        ("kpi-balance", "15.00"),
    ):
        block = html.split(f'id="{kpi_id}"', 1)[1].split('class="kpi"', 1)[0]
        assert value in block, kpi_id
        # A button (tap, keyboard focus) described by a tooltip, not a hover-only title.
        assert 'class="hint"' in block and 'role="tooltip"' in block and "aria-describedby" in block
    assert "Your balance must reach 50.00 USD to withdraw: 35.00 USD to go." in html
    assert f"http://testserver/r/{scenario.referral_code}" in html


def test_dashboard_withdraw_button_tells_a_partner_without_paypal_email_where_to_set_it(client):
    partner = PartnerFactory(paypal_email="")
    now = timezone.now()
    b.pay(b.signup(b.click(partner.links.get(), "x", now), now), "300.00", now)
    client.force_login(partner.user)
    html = client.get(reverse("partners:dashboard")).content.decode()
    assert "Set your PayPal email in Settings to withdraw." in html
    assert reverse("partners:settings") in html


@pytest.mark.parametrize("paypal_email", ["", "paid@example.com"])
def test_dashboard_and_payouts_page_show_the_same_withdrawal_button(client, paypal_email):
    partner = PartnerFactory(paypal_email=paypal_email)
    now = timezone.now()
    b.pay(b.signup(b.click(partner.links.get(), "x", now), now), "120.00", now)  # 24.00: below the minimum
    client.force_login(partner.user)

    def button(url: str) -> str:
        box = client.get(url).content.decode().split('<div class="withdraw-box">', 1)[1].split("</div>", 1)[0]
        # The button and the reason; the CSRF token and the return address differ by page.
        return box.split("<button", 1)[1].split("</form>", 1)[0] + box.split("</form>", 1)[1]

    on_dashboard = button(reverse("partners:dashboard"))
    assert on_dashboard == button(reverse("payouts:payout_list"))
    assert "disabled" in on_dashboard and "26.00 USD to go" in on_dashboard


@pytest.mark.parametrize("hold_days", [0, 30])
def test_the_shown_balance_equals_the_ledger_balance_with_holds_reversals_and_payouts(settings, partner, hold_days):
    from commissions.balance import partner_balance

    settings.COMMISSION_HOLD_DAYS = hold_days
    now = timezone.now()
    link = partner.links.get()
    old = b.signup(b.click(link, "old", now - timedelta(days=80)), now - timedelta(days=80))
    b.pay(old, "400.00", now - timedelta(days=60))  # 80.00, past any hold
    recent_payment = b.pay(old, "150.00", now - timedelta(days=2))  # 30.00, inside a 30-day hold
    b.refund(recent_payment, "50.00", now - timedelta(days=1))  # -10.00, counts at once
    PayoutFactory(partner=partner, amount=Decimal("20.00"), status=Payout.Status.PAID)
    PayoutFactory(partner=partner, amount=Decimal("5.00"), status=Payout.Status.PENDING)
    PayoutFactory(partner=partner, amount=Decimal("9.00"), status=Payout.Status.FAILED)

    summary = partner_summary(partner)
    assert summary.balance == partner_balance(partner=partner)
    assert summary.balance == (Decimal("75.00") if hold_days == 0 else Decimal("45.00"))
    assert summary.withdrawal.reason_code == "in_progress"
