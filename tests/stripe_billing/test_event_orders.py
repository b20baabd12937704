"""Hypothesis: whatever order Stripe delivers a customer's life in (redeliveries included), the
final ledger equals the in-order ledger."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commissions.stripe_billing.services import stripe_event_receive
from tests.factories import ClickFactory, LinkFactory
from tests.stripe_billing.conftest import T0, customer_life, ledger_state

pytestmark = pytest.mark.django_db

N_EVENTS = len(customer_life("x").events)


class _Rollback(Exception):
    pass


def _ledger_after(order: list[int]) -> dict:
    """Deliver the life's events in ``order`` in a transaction that is rolled back; the ledger."""
    state: dict = {}
    try:
        with transaction.atomic():
            click = ClickFactory(link=LinkFactory(trial_days=14), created_at=datetime.fromtimestamp(T0 - 3600, tz=UTC))
            life = customer_life(str(click.id))
            for index in order:
                stripe_event_receive(payload=life.events[index])
            state = ledger_state(life.customer)
            raise _Rollback
    except _Rollback:
        pass
    return state


_IN_ORDER: dict = {}


def _in_order() -> dict:
    if not _IN_ORDER:
        _IN_ORDER.update(_ledger_after(list(range(N_EVENTS))))
    return _IN_ORDER


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(
    order=st.permutations(range(N_EVENTS)),
    redelivered=st.lists(st.integers(min_value=0, max_value=N_EVENTS - 1), max_size=4),
)
def test_any_delivery_order_ends_with_the_in_order_ledger(order, redelivered):
    in_order = _in_order()
    assert in_order["referral"][0] == "cancelled"

    shuffled = _ledger_after([*order, *redelivered])

    assert shuffled == in_order
