"""Sending payouts through PayPal: the real paypalrestsdk client, over HTTP, against the fake
PayPal (devtools.fake_paypal). Nothing of ours is mocked.

Each known paypalrestsdk defect has a test here showing the gateway survives it.
"""

from __future__ import annotations

import logging
import re
import socket
import threading
from decimal import Decimal

import paypalrestsdk
import pytest
from django.db import connection
from django.utils import timezone

from commissions.balance import partner_balance
from payouts.gateway import (
    MAX_TOKEN_REFRESHES,
    AuthenticationLoopError,
    PayoutGatewayError,
    PayPalGateway,
    PermanentGatewayError,
    RetryableGatewayError,
)
from payouts.models import Payout, PayoutAudit
from payouts.services import payout_approve, payout_check_now, payout_poll, payout_request, payout_send
from payouts.tasks import SEND_MAX_RETRIES, reconcile_payouts_task, send_payout_task

pytestmark = pytest.mark.django_db

BATCHES = "/v1/payments/payouts"


@pytest.fixture
def approved(partner_with_balance, payout_staff):
    """A payout approved by staff; its send task is NOT run yet (the test runs it)."""

    def make(amount: str = "50.00") -> Payout:
        partner = partner_with_balance(amount)
        payout = payout_request(partner=partner)
        payout_approve(payout_id=payout.pk, actor=payout_staff)  # on_commit send not executed
        payout.refresh_from_db()
        assert payout.status == Payout.Status.APPROVED
        return payout

    return make


def _send(payout: Payout, capture) -> str:
    """Run the send task the way a worker would (eager here), with the emails and the
    follow-up poll it schedules."""
    with capture(execute=True):
        result = send_payout_task.delay(payout.pk)
    payout.refresh_from_db()
    return result.get()


def _audit(payout: Payout, action: str) -> list[PayoutAudit]:
    return list(PayoutAudit.objects.filter(payout=payout, action=action))


def _due(payout: Payout) -> None:
    """Make the payout due for the periodic job now (as if its next_action_at had come)."""
    Payout.objects.filter(pk=payout.pk, next_action_at__isnull=False).update(
        next_action_at=timezone.now() - timezone.timedelta(seconds=1)
    )


# --- the happy path -------------------------------------------------------------------------------
def test_an_approved_payout_is_sent_and_ends_paid_with_paypals_ids(
    fake_paypal, partner_with_balance, payout_staff, django_capture_on_commit_callbacks, mailoutbox
):
    partner = partner_with_balance("50.00")
    payout = payout_request(partner=partner)
    # Approval queues the send; the send queues a poll; the poll (no webhook) settles it.
    with django_capture_on_commit_callbacks(execute=True):
        payout_approve(payout_id=payout.pk, actor=payout_staff)
    payout.refresh_from_db()

    assert payout.status == Payout.Status.PAID
    [batch] = fake_paypal.batches.values()
    assert payout.paypal_batch_id == batch.batch_id
    assert payout.paypal_item_id == batch.items[0]["payout_item_id"]
    assert payout.paypal_transaction_id == batch.items[0]["transaction_id"]
    assert payout.paid_at is not None and payout.paid_at <= timezone.now()
    assert len(_audit(payout, PayoutAudit.Action.PAID)) == 1
    assert partner_balance(partner=partner) == Decimal("0.00")
    paid_mail = [m for m in mailoutbox if m.to == [partner.user.email]]
    assert len(paid_mail) == 1
    assert "has been sent" in paid_mail[0].subject
    assert payout.paypal_batch_id in paid_mail[0].body


def test_the_batch_carries_the_stable_sender_batch_id_and_the_payout_id(
    fake_paypal, approved, django_capture_on_commit_callbacks
):
    payout = approved("73.20")
    _send(payout, django_capture_on_commit_callbacks)
    [batch] = fake_paypal.batches.values()
    # Random per payout (unique across installations), stable across every retry of it.
    assert batch.sender_batch_id == payout.sender_batch_id
    assert re.fullmatch(r"ppanel-[0-9a-f]{24}", payout.sender_batch_id)
    item = batch.items[0]["payout_item"]
    assert item["sender_item_id"] == str(payout.pk)
    assert item["amount"] == {"value": "73.20", "currency": "USD"}
    assert item["receiver"] == payout.paypal_email


# --- PayPal says no ---------------------------------------------------------------------------------
def test_an_unclaimed_payout_waits_for_its_claim_then_comes_back_when_paypal_returns_it(
    fake_paypal, approved, django_capture_on_commit_callbacks, mailoutbox
):
    fake_paypal.script(create=["deny"])  # the item ends UNCLAIMED (RECEIVER_UNREGISTERED)
    payout = approved("64.00")
    _send(payout, django_capture_on_commit_callbacks)

    # Unclaimed money can still be claimed: the payout waits, still counted against the balance.
    assert payout.status == Payout.Status.SENT and payout.paypal_item_status == "UNCLAIMED"
    assert payout.partner_status == "Waiting for you to claim it at PayPal"
    assert partner_balance(partner=payout.partner) == Decimal("0.00")
    assert [m.subject for m in mailoutbox if m.to == [payout.partner.user.email]] == [
        "Claim your payout of 64.00 USD at PayPal"
    ]
    # 30 days on, PayPal returns it; the amount comes back to the balance exactly once.
    fake_paypal.advance(days=30)
    _due(payout)
    with django_capture_on_commit_callbacks(execute=True):
        assert reconcile_payouts_task() == {"returned": 1}
        assert reconcile_payouts_task() == {}
    payout.refresh_from_db()
    assert payout.status == Payout.Status.RETURNED
    assert partner_balance(partner=payout.partner) == Decimal("64.00")
    assert len(_audit(payout, PayoutAudit.Action.RETURNED)) == 1
    assert "Your payout of 64.00 USD came back to your balance" in [m.subject for m in mailoutbox]


@pytest.mark.parametrize(("status", "ends"), [("FAILED", "failed"), ("BLOCKED", "returned"), ("RETURNED", "returned")])
def test_a_failed_or_returned_item_gives_the_amount_back_with_paypals_reason(
    fake_paypal, approved, django_capture_on_commit_callbacks, status, ends
):
    fake_paypal.script(create=[f"deny:{status}"])
    payout = approved()
    _send(payout, django_capture_on_commit_callbacks)
    assert payout.status == ends
    assert status in payout.failure_reason
    assert partner_balance(partner=payout.partner) == Decimal("50.00")
    assert len(_audit(payout, ends)) == 1


def test_a_validation_error_fails_the_payout_and_shows_paypals_error_to_staff(
    fake_paypal, approved, django_capture_on_commit_callbacks
):
    fake_paypal.script(create=["400"])
    payout = approved()
    assert _send(payout, django_capture_on_commit_callbacks) == "failed"
    assert payout.status == Payout.Status.FAILED
    assert "Receiver is invalid" in payout.failure_reason
    assert fake_paypal.batches == {}
    [failed] = _audit(payout, PayoutAudit.Action.FAILED)
    assert failed.detail["error"]["name"] == "VALIDATION_ERROR"


# --- retries never pay twice -------------------------------------------------------------------------
def test_a_500_then_success_pays_once_with_one_batch_at_paypal(
    fake_paypal, approved, django_capture_on_commit_callbacks
):
    fake_paypal.script(create=["500"])
    payout = approved()
    _send(payout, django_capture_on_commit_callbacks)
    assert payout.status == Payout.Status.PAID
    assert payout.send_attempts == 2
    assert len(fake_paypal.batches) == 1
    assert len(_audit(payout, PayoutAudit.Action.UNKNOWN)) == 1
    assert len(_audit(payout, PayoutAudit.Action.PAID)) == 1


def test_a_timeout_after_paypal_created_the_batch_is_recovered_from_the_duplicate_answer(
    fake_paypal, approved, django_capture_on_commit_callbacks
):
    # PayPal records the batch but answers later than our timeout; the retry reuses the
    # sender_batch_id, PayPal refuses the duplicate and links to the first batch.
    fake_paypal.honour_request_id = False
    fake_paypal.script(create=["timeout"])
    payout = approved()
    _send(payout, django_capture_on_commit_callbacks)

    assert payout.status == Payout.Status.PAID
    assert len(fake_paypal.batches_for(payout.sender_batch_id)) == 1
    assert payout.paypal_batch_id == next(iter(fake_paypal.batches))
    statuses = [status for method, path, status in fake_paypal.requests if method == "POST" and path == BATCHES]
    assert statuses == [201, 400]  # the first answer never reached us; the second was the duplicate
    [sent] = _audit(payout, PayoutAudit.Action.SENT)
    assert sent.detail["already_sent"] is True
    assert len(_audit(payout, PayoutAudit.Action.PAID)) == 1


def test_a_garbage_answer_never_pays_twice(fake_paypal, approved, django_capture_on_commit_callbacks):
    fake_paypal.script(create=["garbage"])  # the batch was created, the answer is unreadable
    payout = approved()
    _send(payout, django_capture_on_commit_callbacks)
    assert payout.status == Payout.Status.PAID
    assert len(fake_paypal.batches) == 1
    [retry] = _audit(payout, PayoutAudit.Action.UNKNOWN)
    assert "could not be read" in retry.detail["error"]["message"]


def test_retries_that_run_out_leave_the_payout_to_staff_never_failed(
    fake_paypal, approved, django_capture_on_commit_callbacks
):
    fake_paypal.script(create=["500"], forever=True)
    payout = approved("58.00")
    assert _send(payout, django_capture_on_commit_callbacks) == "gave_up"
    assert payout.status == Payout.Status.ATTENTION
    assert payout.outcome_unknown
    assert payout.paypal_batch_id == ""
    assert payout.send_attempts == SEND_MAX_RETRIES + 1
    assert f"Gave up after {SEND_MAX_RETRIES + 1} attempts" in payout.attention_reason
    assert "never failed automatically" in payout.attention_reason
    # Still counted against the balance: PayPal may yet have it.
    assert partner_balance(partner=payout.partner) == Decimal("0.00")
    assert fake_paypal.batches == {}


def test_staff_can_retry_a_stuck_payout_and_it_is_paid_once(
    fake_paypal, approved, payout_staff, django_capture_on_commit_callbacks
):
    fake_paypal.script(create=["timeout", "500"], forever=True)  # first went through, then PayPal is down
    payout = approved()
    assert _send(payout, django_capture_on_commit_callbacks) == "gave_up"
    fake_paypal.reset_script()
    with django_capture_on_commit_callbacks(execute=True):
        payout_check_now(payout_id=payout.pk, actor=payout_staff)
    payout.refresh_from_db()
    assert payout.status == Payout.Status.PAID
    assert len(fake_paypal.batches) == 1


def test_the_send_task_does_nothing_for_a_payout_already_sent(
    fake_paypal, approved, django_capture_on_commit_callbacks
):
    payout = approved()
    _send(payout, django_capture_on_commit_callbacks)
    assert payout.status == Payout.Status.PAID
    assert _send(payout, django_capture_on_commit_callbacks) == "skipped"
    assert fake_paypal.count("POST", BATCHES) == 1
    assert len(_audit(payout, PayoutAudit.Action.PAID)) == 1


def test_a_duplicate_answer_without_a_link_is_left_for_staff(fake_paypal, approved, django_capture_on_commit_callbacks):
    fake_paypal.duplicate_answer_links = False
    fake_paypal.honour_request_id = False
    fake_paypal.script(create=["timeout"])
    payout = approved()
    assert _send(payout, django_capture_on_commit_callbacks) == "attention"
    assert payout.status == Payout.Status.ATTENTION
    assert "do not pay again" in payout.attention_reason
    assert len(fake_paypal.batches) == 1


# --- the paypalrestsdk defects ------------------------------------------------------------------------
def test_a_401_that_keeps_coming_back_refreshes_the_token_once_and_waits_for_staff(
    fake_paypal, approved, django_capture_on_commit_callbacks
):
    fake_paypal.script(create=["401"], forever=True)
    payout = approved()
    assert _send(payout, django_capture_on_commit_callbacks) == "attention"
    assert payout.status == Payout.Status.ATTENTION
    assert "credentials" in payout.attention_reason and "401" in payout.attention_reason
    assert MAX_TOKEN_REFRESHES == 1
    # paypalrestsdk alone drops the token and tries again until RecursionError.
    assert fake_paypal.count("POST", BATCHES) == MAX_TOKEN_REFRESHES + 1
    assert fake_paypal.count("POST", "/v1/oauth2/token") == MAX_TOKEN_REFRESHES + 1


def test_a_401_after_an_attempt_with_unknown_outcome_is_not_failed_automatically(
    fake_paypal, approved, payout_staff, django_capture_on_commit_callbacks
):
    # Attempt 1 reached PayPal (its answer was lost); then the credentials stop working. Failing
    # now would give back to the balance money that PayPal is paying.
    fake_paypal.script(create=["timeout", "401"], forever=True)
    payout = approved()
    assert _send(payout, django_capture_on_commit_callbacks) == "attention"
    assert payout.status == Payout.Status.ATTENTION
    assert "was not failed" in payout.attention_reason
    assert partner_balance(partner=payout.partner) == Decimal("0.00")

    fake_paypal.reset_script()  # credentials fixed
    with django_capture_on_commit_callbacks(execute=True):
        payout_check_now(payout_id=payout.pk, actor=payout_staff)
    payout.refresh_from_db()
    assert payout.status == Payout.Status.PAID
    assert len(fake_paypal.batches) == 1


def test_every_call_has_a_timeout(fake_paypal, settings):
    gateway = PayPalGateway()
    sent = gateway.send(
        sender_batch_id="t-1",
        sender_item_id="1",
        receiver="a@example.com",
        amount=Decimal("1.00"),
        currency="USD",
        note="",
    )
    fake_paypal.script(get=["timeout"])
    with pytest.raises(RetryableGatewayError, match=r"did not answer within 0\.5 s"):
        gateway.get_batch(sent.batch_id)


def test_paypalrestsdk_alone_waits_as_long_as_a_silent_server_likes(fake_paypal):
    # The defect the timeout above defends against: the SDK's Api sets no timeout at all.
    api = paypalrestsdk.Api(
        mode="sandbox",
        endpoint=fake_paypal.base_url,
        client_id=fake_paypal.client_id,
        client_secret=fake_paypal.client_secret,
    )
    created = api.post(
        "v1/payments/payouts",
        {
            "sender_batch_header": {"sender_batch_id": "x"},
            "items": [
                {"amount": {"value": "1.00", "currency": "USD"}, "receiver": "a@example.com", "sender_item_id": "1"}
            ],
        },
    )
    fake_paypal.script(get=["timeout"])  # answers after 4 × our client timeout
    batch_id = created["batch_header"]["payout_batch_id"]
    assert api.get(f"v1/payments/payouts/{batch_id}")["batch_header"]["payout_batch_id"] == batch_id


def test_400_and_500_and_network_errors_come_back_as_one_error_type(fake_paypal, settings):
    gateway = PayPalGateway()
    kwargs = {
        "sender_item_id": "1",
        "receiver": "a@example.com",
        "amount": Decimal("1.00"),
        "currency": "USD",
        "note": "",
    }
    fake_paypal.script(create=["400", "500", "422"])
    with pytest.raises(PermanentGatewayError) as bad_request:  # paypalrestsdk: False + .error
        gateway.send(sender_batch_id="e-1", **kwargs)
    assert bad_request.value.status == 400 and bad_request.value.name == "VALIDATION_ERROR"
    with pytest.raises(RetryableGatewayError) as server_error:  # paypalrestsdk: raises ServerError
        gateway.send(sender_batch_id="e-2", **kwargs)
    assert server_error.value.status == 500
    with pytest.raises(PermanentGatewayError) as unprocessable:  # paypalrestsdk: raises ResourceInvalid
        gateway.send(sender_batch_id="e-3", **kwargs)
    assert unprocessable.value.name == "INSUFFICIENT_FUNDS"

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with pytest.raises(RetryableGatewayError):  # paypalrestsdk: raises requests.ConnectionError
        PayPalGateway(api_base=closed).send(sender_batch_id="e-4", **kwargs)
    for error in (bad_request.value, server_error.value, unprocessable.value):
        assert isinstance(error, PayoutGatewayError)


def test_paypalrestsdk_payout_find_builds_a_wrong_url_and_the_gateway_does_not(fake_paypal):
    gateway = PayPalGateway()
    sent = gateway.send(
        sender_batch_id="f-1",
        sender_item_id="1",
        receiver="a@example.com",
        amount=Decimal("5.00"),
        currency="USD",
        note="",
    )
    with pytest.raises(paypalrestsdk.ResourceNotFound):
        paypalrestsdk.Payout.find(sent.batch_id, api=gateway.api)
    assert ("GET", f"{BATCHES}/{sent.batch_id}/{sent.batch_id}", 404) in fake_paypal.requests

    batch = gateway.get_batch(sent.batch_id)
    assert batch.batch_id == sent.batch_id
    assert batch.sender_batch_id == "f-1"
    assert batch.items[0].transaction_status == "SUCCESS"


def test_paypalrestsdk_posts_with_a_trailing_slash_and_the_gateway_does_not(fake_paypal):
    gateway = PayPalGateway()
    paypalrestsdk.Payout(
        {
            "sender_batch_header": {"sender_batch_id": "s-1"},
            "items": [{"amount": {"value": "1.00", "currency": "USD"}, "receiver": "a@example.com"}],
        },
        api=gateway.api,
    ).create()
    gateway.send(
        sender_batch_id="s-2",
        sender_item_id="2",
        receiver="a@example.com",
        amount=Decimal("1.00"),
        currency="USD",
        note="",
    )
    posts = [path for method, path, _ in fake_paypal.requests if method == "POST" and path.startswith(BATCHES)]
    assert posts == [f"{BATCHES}/", BATCHES]


def test_an_endpoint_with_a_trailing_slash_works(fake_paypal, settings):
    # paypalrestsdk.util.join_url doubles the path when the endpoint ends with "/".
    settings.PAYPAL_API_BASE = fake_paypal.base_url + "/"
    sent = PayPalGateway().send(
        sender_batch_id="slash-1",
        sender_item_id="1",
        receiver="a@example.com",
        amount=Decimal("1.00"),
        currency="USD",
        note="",
    )
    assert sent.batch_id in fake_paypal.batches


def test_the_gateway_never_logs_credentials_or_tokens(fake_paypal, caplog):
    # As if a deployment forgot LOGGING's "paypalrestsdk: WARNING" and ran with DEBUG logs.
    for name in ("paypalrestsdk", "paypalrestsdk.api"):
        logging.getLogger(name).setLevel(logging.NOTSET)
    caplog.set_level(logging.DEBUG)
    gateway = PayPalGateway()
    sent = gateway.send(
        sender_batch_id="log-1",
        sender_item_id="1",
        receiver="a@example.com",
        amount=Decimal("1.00"),
        currency="USD",
        note="",
    )
    gateway.get_batch(sent.batch_id)
    fake_paypal.script(create=["400"])
    with pytest.raises(PermanentGatewayError):
        gateway.send(
            sender_batch_id="log-2",
            sender_item_id="2",
            receiver="a@example.com",
            amount=Decimal("1.00"),
            currency="USD",
            note="",
        )
    text = caplog.text + repr(gateway)
    assert fake_paypal.client_secret not in text
    assert gateway.api.basic_auth() not in text
    for token in fake_paypal.tokens:
        assert token not in text
    assert logging.getLogger("paypalrestsdk.api").getEffectiveLevel() >= logging.WARNING


# --- polling ------------------------------------------------------------------------------------------------
def test_a_batch_paypal_is_still_processing_stays_pending_until_polling_sees_it_settle(
    fake_paypal, approved, django_capture_on_commit_callbacks
):
    # No webhooks (paypalrestsdk's WebhookEvent.verify always fails with current pyOpenSSL):
    # the periodic poll is how a payout learns it was paid.
    fake_paypal.settle_after = 3600
    payout = approved()
    _send(payout, django_capture_on_commit_callbacks)
    assert payout.status == Payout.Status.SENT
    assert payout.paypal_batch_id
    _due(payout)
    assert reconcile_payouts_task() == {"pending": 1}
    assert reconcile_payouts_task() == {}  # not due again yet

    fake_paypal.settle(payout.paypal_batch_id)
    _due(payout)
    with django_capture_on_commit_callbacks(execute=True):
        assert reconcile_payouts_task() == {"paid": 1}
    payout.refresh_from_db()
    assert payout.status == Payout.Status.PAID
    assert reconcile_payouts_task() == {}


def test_polling_survives_garbage_server_errors_and_401s_without_changing_anything(
    fake_paypal, approved, django_capture_on_commit_callbacks
):
    fake_paypal.settle_after = 3600
    payout = approved()
    _send(payout, django_capture_on_commit_callbacks)
    fake_paypal.settle(payout.paypal_batch_id)
    fake_paypal.script(get=["garbage", "500", "timeout", "401", "401", "401"])
    for _ in range(4):
        assert payout_poll(payout_id=payout.pk) == "error"
        payout.refresh_from_db()
        assert payout.status == Payout.Status.SENT
    assert payout_poll(payout_id=payout.pk) == "paid"


def test_a_batch_that_belongs_to_another_payout_is_never_settled(
    fake_paypal, approved, django_capture_on_commit_callbacks
):
    fake_paypal.settle_after = 3600
    first, second = approved(), approved()
    _send(first, django_capture_on_commit_callbacks)
    _send(second, django_capture_on_commit_callbacks)
    Payout.objects.filter(pk=second.pk).update(paypal_batch_id=first.paypal_batch_id)
    fake_paypal.settle(first.paypal_batch_id)
    assert payout_poll(payout_id=second.pk) == "attention"
    second.refresh_from_db()
    assert second.status == Payout.Status.ATTENTION
    assert "not to this payout" in second.attention_reason


def test_a_redelivered_send_does_not_send_a_payout_that_has_its_batch(fake_paypal, approved):
    payout = approved()
    first = payout_send(payout_id=payout.pk)
    second = payout_send(payout_id=payout.pk)
    assert (first.outcome, second.outcome) == ("sent", "skipped")
    assert fake_paypal.count("POST", BATCHES) == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_sending_one_payout_at_once_make_one_batch(fake_paypal, partner_with_balance, payout_staff):
    payout = payout_request(partner=partner_with_balance("50.00"))
    Payout.objects.filter(pk=payout.pk).update(status=Payout.Status.APPROVED, decided_at=timezone.now())
    barrier = threading.Barrier(2)
    outcomes = []

    def send() -> None:
        try:
            barrier.wait()
            outcomes.append(payout_send(payout_id=payout.pk).outcome)
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # The second either found the batch recorded (skipped) or sent too and learnt the batch from
    # PayPal's duplicate answer; either way PayPal has one batch.
    assert "sent" in outcomes and set(outcomes) <= {"sent", "skipped", "in_flight"}
    assert len(fake_paypal.batches) == 1
    payout.refresh_from_db()
    assert payout.paypal_batch_id == next(iter(fake_paypal.batches))
    assert payout_poll(payout_id=payout.pk) == "paid"


def test_payout_gateway_errors_have_safe_messages(fake_paypal):
    error = AuthenticationLoopError("PayPal answered 401", status=401)
    assert isinstance(error, PermanentGatewayError)
    assert error.as_dict() == {"message": "PayPal answered 401", "status": 401, "name": "", "may_have_arrived": False}


def test_an_approval_whose_send_was_never_queued_is_sent_by_the_periodic_poll(
    fake_paypal, partner_with_balance, payout_staff
):
    from datetime import timedelta

    from payouts.tasks import reconcile_payouts_task

    partner = partner_with_balance("60.00")
    payout = payout_request(partner=partner)
    # No on-commit callbacks run: as if the broker was down when staff approved.
    payout_approve(payout_id=payout.pk, actor=payout_staff)
    Payout.objects.filter(pk=payout.pk).update(decided_at=timezone.now() - timedelta(minutes=5))
    assert fake_paypal.batches == {}

    counts = reconcile_payouts_task.delay().get()

    payout.refresh_from_db()
    assert counts == {"sent": 1}
    assert len(fake_paypal.batches) == 1
    assert payout.status in (Payout.Status.SENT, Payout.Status.PAID)
    reconcile_payouts_task.delay().get()
    assert len(fake_paypal.batches) == 1
