"""Withdrawal requests: the "Can withdraw" rule (docs/reference.md), the button and its reasons, and
the balance before and after payouts."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.db import connection
from django.urls import reverse

from commissions.balance import partner_balance
from payouts.models import Payout, PayoutAudit
from payouts.rules import withdrawal_status
from payouts.services import PayoutError, payout_request
from tests.factories import PartnerFactory, PayoutFactory
from tests.payouts.conftest import add_commission, add_refund

pytestmark = pytest.mark.django_db

PAGE = "/payouts/"
REQUEST = "/payouts/request/"


def _login(client, partner):
    client.force_login(partner.user)
    return client


def _button(response) -> str:
    html = response.content.decode()
    start = html.index('class="withdraw-box"')
    return html[start : html.index("</div>", start)]


# --- the rule ------------------------------------------------------------------------------------
def test_withdrawal_at_exactly_the_minimum_is_allowed(partner_with_balance):
    partner = partner_with_balance("50.00")
    payout = payout_request(partner=partner)
    assert payout.amount == Decimal("50.00")
    assert payout.status == Payout.Status.PENDING


def test_withdrawal_one_cent_below_the_minimum_is_refused(partner_with_balance):
    partner = partner_with_balance("49.99")
    with pytest.raises(PayoutError) as exc:
        payout_request(partner=partner)
    assert exc.value.code == "below_minimum"
    assert "0.01 USD to go" in str(exc.value)
    assert not Payout.objects.exists()


def test_a_request_pays_out_the_whole_balance_to_the_partners_paypal_email(partner_with_balance):
    partner = partner_with_balance("61.37")
    add_commission(partner, "12.00")
    payout = payout_request(partner=partner)
    assert payout.amount == Decimal("73.37")
    assert payout.paypal_email == partner.paypal_email
    assert payout.currency == "USD"
    assert partner_balance(partner=partner) == Decimal("0.00")


def test_a_request_is_refused_without_a_paypal_email(partner_with_balance):
    partner = partner_with_balance("80.00", paypal_email="")
    with pytest.raises(PayoutError) as exc:
        payout_request(partner=partner)
    assert exc.value.code == "no_paypal_email"


def test_a_second_request_is_refused_while_one_is_open(partner_with_balance):
    partner = partner_with_balance("120.00")
    payout_request(partner=partner)
    add_commission(partner, "60.00")  # enough for another one, but the first is still open
    for status in Payout.OPEN_STATUSES:
        Payout.objects.update(status=status)
        with pytest.raises(PayoutError) as exc:
            payout_request(partner=partner)
        assert exc.value.code == "in_progress"
    assert Payout.objects.count() == 1


def test_the_database_allows_one_open_payout_per_partner_whatever_the_code_does(partner_with_balance):
    from django.db import IntegrityError, transaction

    partner = partner_with_balance("200.00")
    PayoutFactory(partner=partner, status=Payout.Status.APPROVED)
    with pytest.raises(IntegrityError), transaction.atomic():
        PayoutFactory(partner=partner, status=Payout.Status.PENDING)


def test_a_request_leaves_an_audit_row_and_emails_staff(
    partner_with_balance, settings, mailoutbox, django_capture_on_commit_callbacks
):
    settings.STAFF_NOTIFICATION_EMAILS = ["payouts@example.com", "boss@example.com"]
    partner = partner_with_balance("55.00")
    with django_capture_on_commit_callbacks(execute=True):
        payout = payout_request(partner=partner)
    audit = PayoutAudit.objects.get(payout=payout)
    assert audit.action == PayoutAudit.Action.REQUESTED
    assert audit.actor == partner.user
    assert audit.detail["amount"] == "55.00"
    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == ["payouts@example.com", "boss@example.com"]
    assert "55.00 USD" in mailoutbox[0].subject
    assert f"/admin/payouts/payout/{payout.pk}/change/" in mailoutbox[0].body


# --- the button ----------------------------------------------------------------------------------
def test_button_is_enabled_when_the_partner_can_withdraw(client, partner_with_balance):
    partner = partner_with_balance("50.00")
    button = _button(_login(client, partner).get(PAGE))
    assert "disabled" not in button
    assert "Withdraw 50.00\u00a0USD" in button
    assert "data-once" in button
    assert f'action="{REQUEST}"' in button


def test_button_says_how_much_is_missing_below_the_minimum(client, partner_with_balance):
    partner = partner_with_balance("49.99")
    button = _button(_login(client, partner).get(PAGE))
    assert "disabled" in button
    assert "Your balance must reach 50.00 USD to withdraw: 0.01 USD to go." in button


def test_button_says_a_request_is_in_progress(client, partner_with_balance):
    partner = partner_with_balance("75.00")
    payout_request(partner=partner)
    add_commission(partner, "80.00")
    button = _button(_login(client, partner).get(PAGE))
    assert "disabled" in button
    assert "Your previous withdrawal request is still being processed." in button


def test_button_asks_for_a_paypal_email_with_a_link_to_settings(client, partner_with_balance):
    partner = partner_with_balance("75.00", paypal_email="")
    button = _button(_login(client, partner).get(PAGE))
    assert "disabled" in button
    assert "Set your PayPal email in Settings to withdraw." in button
    assert f'href="{reverse("partners:settings")}"' in button


def test_the_withdraw_partial_can_be_included_by_the_dashboard(rf, partner_with_balance):
    from django.template.loader import render_to_string

    partner = partner_with_balance("49.00")
    request = rf.get("/dashboard/")
    request.user = partner.user
    html = render_to_string(
        "payouts/_withdraw.html", {"withdrawal": withdrawal_status(partner=partner)}, request=request
    )
    assert "1.00 USD to go" in html
    assert 'name="next" value="/dashboard/"' in html


# --- the request view ----------------------------------------------------------------------------
def test_posting_the_form_creates_the_payout_and_says_so(client, partner_with_balance):
    partner = partner_with_balance("64.10")
    response = _login(client, partner).post(REQUEST, follow=True)
    assert response.redirect_chain[-1][0] == PAGE
    payout = Payout.objects.get(partner=partner)
    assert payout.amount == Decimal("64.10")
    assert "Withdrawal of 64.10\u00a0USD requested" in response.content.decode()


def test_a_double_click_makes_one_payout(client, partner_with_balance):
    partner = partner_with_balance("64.10")
    _login(client, partner)
    client.post(REQUEST)
    second = client.post(REQUEST, follow=True)
    assert Payout.objects.filter(partner=partner).count() == 1
    assert "still being processed" in second.content.decode()


def test_the_request_returns_to_a_safe_next_page_only(client, partner_with_balance):
    partner = partner_with_balance("64.10", paypal_email="")
    _login(client, partner)
    assert client.post(REQUEST, {"next": "/dashboard/"})["Location"] == "/dashboard/"
    assert client.post(REQUEST, {"next": "https://evil.example/"})["Location"] == PAGE


def test_the_request_url_accepts_post_only(client, partner_with_balance):
    partner = partner_with_balance("64.10")
    assert _login(client, partner).get(REQUEST).status_code == 405
    assert not Payout.objects.exists()


def test_anonymous_visitors_are_sent_to_login(client, partner_with_balance):
    partner_with_balance("64.10")
    for response in (client.get(PAGE), client.post(REQUEST)):
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("partners:login"))
    assert not Payout.objects.exists()


# --- the balance -----------------------------------------------------------------------------------
@pytest.mark.parametrize("status", ["pending", "approved", "sending", "unknown", "attention", "sent", "paid"])
def test_open_and_paid_payouts_count_against_the_balance(partner_with_balance, status):
    partner = partner_with_balance("90.00")
    PayoutFactory(partner=partner, amount=Decimal("60.00"), status=status)
    assert partner_balance(partner=partner) == Decimal("30.00")


@pytest.mark.parametrize("status", ["rejected", "failed"])
def test_rejected_and_failed_payouts_give_the_amount_back(partner_with_balance, status):
    partner = partner_with_balance("90.00")
    payout = payout_request(partner=partner)
    assert partner_balance(partner=partner) == Decimal("0.00")
    Payout.objects.filter(pk=payout.pk).update(status=status, rejection_reason="Not allowed")
    assert partner_balance(partner=partner) == Decimal("90.00")
    assert withdrawal_status(partner=partner).can_withdraw


def test_a_refund_after_a_payout_makes_the_balance_negative_and_blocks_withdrawals(partner_with_balance):
    partner = PartnerFactory()
    entry = add_commission(partner, "60.00")
    payout = payout_request(partner=partner)
    Payout.objects.filter(pk=payout.pk).update(status=Payout.Status.PAID)
    add_refund(entry, "20.00")
    assert partner_balance(partner=partner) == Decimal("-20.00")

    status = withdrawal_status(partner=partner)
    assert not status.can_withdraw
    assert status.missing == Decimal("70.00")
    add_commission(partner, "69.99")  # balance 49.99: still below the minimum
    with pytest.raises(PayoutError):
        payout_request(partner=partner)
    add_commission(partner, "0.01")  # back to exactly the minimum
    assert payout_request(partner=partner).amount == Decimal("50.00")


# --- concurrency ---------------------------------------------------------------------------------------
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_twenty_simultaneous_requests_make_exactly_one_payout(partner_with_balance):
    partner = partner_with_balance("150.00")
    barrier = threading.Barrier(20)
    outcomes: list[str] = []
    lock = threading.Lock()

    def request_once() -> None:
        try:
            barrier.wait()
            payout_request(partner=partner)
            result = "created"
        except PayoutError as exc:
            result = exc.code
        finally:
            connection.close()
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=request_once) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["created"] + ["in_progress"] * 19
    assert Payout.objects.filter(partner=partner).count() == 1
    assert Payout.objects.get(partner=partner).amount == Decimal("150.00")
    assert partner_balance(partner=partner) == Decimal("0.00")
