"""Issue 22 item 3: the commission lifecycle adds up to the ledger, over random histories.

Each example replays a random history for a fresh partner in time order (commissions, partial
and full refunds, withdrawals of the whole balance, payouts approved, paid, failed or rejected,
time passing across a random hold) and checks, at the end and after every step, that:
- the available parts less debts are the contract's balance (commissions/balance.py);
- the pending parts are the positive entries still inside the hold;
- in payouts / paid are the open / paid payouts; the four parts add up to the ledger's total;
- every entry's parts add up to its amount, and every payout's statement lines to its amount,
  with nothing uncovered (a withdrawal is of the balance, so commissions always cover it).
"""

from __future__ import annotations

import itertools
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db.models import Sum
from django.test import override_settings
from django.utils import timezone
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from commissions.balance import partner_balance
from commissions.entrystates import PageStates
from commissions.lifecycle import AVAILABLE, PAID, PENDING, STATE_LABELS, entry_ids_in_state, partner_lifecycle
from commissions.models import CommissionEntry, Refund
from commissions.money import ZERO, cents
from commissions.selectors import commission_list, commission_totals_in_state, commission_totals_of
from payouts.models import Payout
from tests.factories import CommissionEntryFactory, MerchantEventFactory, PartnerFactory

pytestmark = pytest.mark.django_db

_ids = itertools.count(1)

steps = st.lists(
    st.one_of(
        st.tuples(st.just("commission"), st.integers(min_value=0, max_value=20_000)),
        st.tuples(st.just("refund"), st.integers(min_value=0, max_value=50), st.integers(min_value=1, max_value=100)),
        st.tuples(st.just("withdraw")),
        st.tuples(st.just("settle"), st.sampled_from(["approved", "processing", "paid", "failed", "rejected"])),
        st.tuples(st.just("wait"), st.integers(min_value=1, max_value=24 * 5)),
    ),
    min_size=1,
    max_size=40,
)


def _check(partner, now, hold_days: int) -> None:
    life = partner_lifecycle(partner=partner, now=now)
    entries = CommissionEntry.objects.filter(partner=partner)
    # The expected sums to the cent: SQLite sums a decimal column as a float and Django does not
    # round an aggregate back (0.35 - 0.34 came back as 0.00999999999999995).
    ledger = cents(entries.aggregate(total=Sum("amount"))["total"] or ZERO)
    held = cents(
        entries.filter(kind="commission", amount__gt=0, earned_at__gt=now - timedelta(days=hold_days)).aggregate(
            total=Sum("amount")
        )["total"]
        or ZERO
    )
    payouts = Payout.objects.filter(partner=partner)
    open_total = cents(payouts.filter(status__in=Payout.OPEN_STATUSES).aggregate(t=Sum("amount"))["t"] or ZERO)
    paid_total = cents(payouts.filter(status="paid").aggregate(t=Sum("amount"))["t"] or ZERO)

    assert life.available == partner_balance(partner=partner, now=now)
    assert life.pending == held
    assert life.in_payouts == open_total
    assert life.paid == paid_total
    assert life.available + life.pending + life.in_payouts + life.paid == ledger
    for entry in entries:
        assert sum((part.amount for part in life.entries[entry.pk].parts), ZERO) == entry.amount
    for payout in payouts.filter(status__in=(*Payout.OPEN_STATUSES, "paid")):
        lines = life.payout_lines[payout.pk]
        assert sum((amount for _, amount in lines), ZERO) == payout.amount
        assert life.payout_uncovered[payout.pk] == ZERO
        expected_state = PAID if payout.status == "paid" else "in_payout"
        assert all(
            any(p.payout_id == payout.pk and p.state == expected_state for p in life.entries[entry_id].parts)
            for entry_id, _ in lines
        )
    _check_page_states(partner, now, life)


def _check_page_states(partner, now, life) -> None:
    """The states computed for a page (commissions/entrystates.py) are the replay's, part for
    part and in the same order, for every entry, also a few rows at a time as a page reads
    them; the state filters select the replay's entries."""
    pages = PageStates(partner=partner, now=now)
    rows = list(CommissionEntry.objects.filter(partner=partner).values_list("id", "kind", "amount", "earned_at"))
    assert pages.states_of(rows) == life.entries
    for start in range(0, len(rows), 3):
        chunk = rows[start : start + 3]
        assert pages.states_of(chunk) == {row[0]: life.entries[row[0]] for row in chunk}
    # A second request's filters come from the cache (PostgreSQL) where the first computed them.
    for states in (pages, PageStates(partner=partner, now=now)):
        for state in STATE_LABELS:
            selected = CommissionEntry.objects.filter(states.ids_filter(state), partner=partner)
            assert set(selected.values_list("id", flat=True)) == entry_ids_in_state(life, state), state
            # The page's totals of the state over all dates: those kept with the scan, plus the rest.
            scanned = states.scanned_totals(state)
            if scanned is not None:
                entries = commission_list(partner=partner).filter(states.ids_filter(state))
                assert commission_totals_in_state(entries, scanned=scanned) == commission_totals_of(entries), state
    assert {PENDING, AVAILABLE} <= set(STATE_LABELS)


@hypothesis_settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=steps, hold_days=st.integers(min_value=0, max_value=3))
# Found by a clean clone's run on SQLite: 0.35 less a 0.34 refund summed as 0.00999999999999995.
@example(history=[("commission", 35), ("refund", 0, 97)], hold_days=0)
def test_lifecycle_parts_equal_the_ledger_and_the_balance(history, hold_days):
    with override_settings(COMMISSION_HOLD_DAYS=hold_days):
        partner = PartnerFactory()
        clock = timezone.now() - timedelta(days=60)
        commissions: list[CommissionEntry] = []
        for step in history:
            clock += timedelta(minutes=7)
            if step[0] == "commission":
                commissions.append(
                    CommissionEntryFactory(
                        payment__referral__click__link__partner=partner,
                        amount=Decimal(step[1]) / 100,
                        earned_at=clock,
                    )
                )
            elif step[0] == "refund" and commissions:
                entry = commissions[step[1] % len(commissions)]
                left = entry.amount + (
                    CommissionEntry.objects.filter(payment=entry.payment, kind="reversal").aggregate(t=Sum("amount"))[
                        "t"
                    ]
                    or ZERO
                )
                # step[2] percent of what is left, at least a cent; 100 % completes the refund.
                amount = left if step[2] == 100 else max((left * step[2] / 100).quantize(Decimal("0.01")), ZERO)
                if amount <= ZERO:
                    continue
                refund = Refund.objects.create(
                    payment=entry.payment,
                    amount=Decimal("0.01"),
                    refunded_at=clock,
                    event=MerchantEventFactory(event_id=f"evt_prop_refund_{next(_ids)}", type="payment.refunded"),
                )
                CommissionEntry.objects.create(
                    partner=partner,
                    referral=entry.referral,
                    payment=entry.payment,
                    refund=refund,
                    kind="reversal",
                    amount=-amount,
                    earned_at=clock,
                )
            elif step[0] == "withdraw":
                balance = partner_balance(partner=partner, now=clock)
                if balance <= ZERO or Payout.objects.filter(partner=partner, status__in=Payout.OPEN_STATUSES).exists():
                    continue
                payout = Payout.objects.create(partner=partner, amount=balance, currency="USD", paypal_email="p@x.com")
                Payout.objects.filter(pk=payout.pk).update(requested_at=clock)
            elif step[0] == "settle":
                payout = Payout.objects.filter(partner=partner, status__in=Payout.OPEN_STATUSES).first()
                if payout is None:
                    continue
                Payout.objects.filter(pk=payout.pk).update(
                    status=step[1], rejection_reason="Not eligible" if step[1] == "rejected" else ""
                )
            elif step[0] == "wait":
                clock += timedelta(hours=step[1])
            _check(partner, clock, hold_days)
        _check(partner, clock + timedelta(days=hold_days + 1), hold_days)
