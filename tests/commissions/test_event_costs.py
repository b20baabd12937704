"""The events endpoint's cost: statements per event, and one queued balance refresh per burst.

The counts are the contract of the hot path (README "The hot path"): a change that adds a
statement to every event should have to change a number here. Inside a test the event's
transaction is a savepoint (SAVEPOINT / RELEASE SAVEPOINT are counted where production
counts BEGIN / COMMIT).
"""

from __future__ import annotations

from unittest import mock

import pytest
from django.core.cache import cache
from django.db import connection

from commissions.services import balance_refresh_key
from commissions.tasks import recalculate_partner_balance_task
from tests.commissions.conftest import cancelled, paid, signed_up

pytestmark = pytest.mark.django_db


def on_postgresql() -> bool:
    return connection.vendor == "postgresql"


# PostgreSQL: SAVEPOINT, the payment statement, RELEASE. Elsewhere (the general path):
# SAVEPOINT, INSERT event … ON CONFLICT, SELECT referral FOR UPDATE, INSERT payment … ON
# CONFLICT, SELECT the partner's own rate (per-partner rates), INSERT commission entry, UPDATE
# referral, rollup upsert, UPDATE event, RELEASE.
PAYMENT_QUERIES = 3 if on_postgresql() else 10


def test_a_payment_of_a_referral_costs_a_fixed_number_of_queries(send, referral_of, django_assert_num_queries):
    referral_of("cus_1")
    send(paid("pay_0", "cus_1", "49.00"))  # not the first payment: the usual renewal
    with django_assert_num_queries(PAYMENT_QUERIES):
        response = send(paid("pay_1", "cus_1", "49.00"))
    assert response.status_code == 201


def test_a_first_payment_costs_no_more_than_a_renewal(send, referral_of, django_assert_num_queries):
    referral_of("cus_1")
    with django_assert_num_queries(PAYMENT_QUERIES):
        assert send(paid("pay_1", "cus_1", "49.00")).status_code == 201


def test_a_payment_for_a_stranger_costs_a_fixed_number_of_queries(send, django_assert_num_queries):
    # PostgreSQL: the payment statement logs it. Elsewhere: SAVEPOINT, INSERT event, SELECT
    # referral, SELECT payment (a known payment_id?), UPDATE event, RELEASE.
    # The general path also asks whether the payment is already known (the same payment_id through
    # the Stripe connector) and whether the customer's sign-up waits for its click.
    with django_assert_num_queries(3 if on_postgresql() else 8):
        assert send(paid("pay_1", "cus_nobody", "49.00")).status_code == 201


def test_an_attributed_sign_up_costs_a_fixed_number_of_queries(send, click, django_assert_num_queries):
    # PostgreSQL: SAVEPOINT, the sign-up statement (which looks up the click too),
    # RELEASE. Elsewhere: SELECT click + link + partner + user, SAVEPOINT, INSERT event, INSERT
    # referral … ON CONFLICT, rollup upsert, UPDATE event, RELEASE.
    # The general path also asks whether a sign-up of the customer waits for its click.
    with django_assert_num_queries(3 if on_postgresql() else 8):
        assert send(signed_up("cus_1", click.id)).status_code == 201


def test_a_replay_costs_the_insert_that_finds_it_and_one_select(send, referral_of, django_assert_num_queries):
    referral_of("cus_1")
    body = paid("pay_1", "cus_1", "49.00")
    send(body)
    # PostgreSQL: SAVEPOINT, the payment statement (which finds the stored answer), RELEASE.
    # Elsewhere: SAVEPOINT, INSERT event … ON CONFLICT DO NOTHING (no row), SELECT the stored
    # answer, RELEASE.
    with django_assert_num_queries(3 if on_postgresql() else 4):
        assert send(body).status_code == 200


# --- the balance refresh -----------------------------------------------------------------


def test_a_burst_of_money_events_of_one_partner_queues_one_balance_refresh(
    send, referral_of, django_capture_on_commit_callbacks
):
    referral_of("cus_1")
    with mock.patch.object(recalculate_partner_balance_task, "apply_async") as queued:
        for n in range(3):
            with django_capture_on_commit_callbacks(execute=True):
                assert send(paid(f"pay_{n}", "cus_1", "49.00")).status_code == 201
    assert queued.call_count == 1


def test_a_refresh_that_has_started_lets_the_next_money_event_queue_another(
    send, referral_of, django_capture_on_commit_callbacks
):
    referral = referral_of("cus_1")
    with mock.patch.object(recalculate_partner_balance_task, "apply_async") as queued:
        with django_capture_on_commit_callbacks(execute=True):
            send(paid("pay_1", "cus_1", "49.00"))
        # The queued task starts: it clears the key before it reads the ledger, so an event
        # committed after this point may not be in what it reads and must queue its own.
        recalculate_partner_balance_task.run(partner_id=referral.partner_id)
        with django_capture_on_commit_callbacks(execute=True):
            send(paid("pay_2", "cus_1", "49.00"))
    assert queued.call_count == 2
    referral.partner.refresh_from_db()
    assert str(referral.partner.balance) == "9.80"  # what the first refresh read: pay_1 only


def test_an_event_that_moves_no_money_queues_no_refresh(send, referral_of, django_capture_on_commit_callbacks):
    referral_of("cus_1")
    with (
        mock.patch.object(recalculate_partner_balance_task, "apply_async") as queued,
        django_capture_on_commit_callbacks(execute=True),
    ):
        send(cancelled("cus_1"))
    assert queued.call_count == 0


def test_a_refresh_that_could_not_be_queued_does_not_block_the_next_one(
    send, referral_of, django_capture_on_commit_callbacks
):
    referral = referral_of("cus_1")
    down = mock.patch.object(recalculate_partner_balance_task, "apply_async", side_effect=OSError("broker down"))
    with down, django_capture_on_commit_callbacks(execute=True):
        assert send(paid("pay_1", "cus_1", "49.00")).status_code == 201  # committed all the same
    assert cache.get(balance_refresh_key(referral.partner_id)) is None
