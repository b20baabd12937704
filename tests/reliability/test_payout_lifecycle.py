"""The payout lifecycle as a hypothesis state machine against the strict fake PayPal.

Random interleavings of partner requests, staff approve / reject / check / mark-failed, PayPal
answers of every kind (a lost answer after PayPal committed, 429 with Retry-After, 400/404/422,
5xx, unreadable answers, slow settlements, items RETURNED or REVERSED after SUCCESS), commissions
and refunds landing, the periodic job and a worker killed mid-attempt. After every step:

* never two PayPal batches for one payout, and no money at PayPal for a payout we gave back to
  the balance (failed, returned, rejected): nothing is ever paid twice;
* money that left at PayPal + balance + open payouts = earned − reversed, for every partner;
* every payout is final, or waits with a reason (a scheduled next step, an attempt in flight,
  staff's decision, or a reason for staff);
* every status change is in the audit trail, in order.

Bounded in CI (``PAYOUT_MACHINE_EXAMPLES``, default 20 runs of up to 30 steps); ``make
reliability`` runs it longer (``RELIABILITY_LONG=1``).
"""

from __future__ import annotations

import contextlib
import os
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from commissions.balance import partner_balance
from commissions.models import CommissionEntry
from devtools.fake_paypal import FakePayPal
from payouts import services
from payouts.gateway import PayPalGateway
from payouts.models import Payout, PayoutAudit
from payouts.tasks import reconcile_payouts_task, send_payout_task
from tests.factories import PartnerFactory, StaffFactory
from tests.payouts.conftest import add_commission, add_refund

pytestmark = [pytest.mark.django_db, pytest.mark.slow]
S = Payout.Status

LONG = os.environ.get("RELIABILITY_LONG") == "1"
EXAMPLES = int(os.environ.get("PAYOUT_MACHINE_EXAMPLES", "80" if LONG else "20"))
STEPS = 50 if LONG else 30

# Money PayPal holds for the receiver (or is paying): everything but what never left or came back.
DEAD_ITEM = {"FAILED", "DENIED", "RETURNED", "REVERSED", "REFUNDED", "BLOCKED"}
CREATE_ANSWERS = [
    "ok",
    "timeout",
    "500",
    "429",
    "400",
    "404",
    "422",
    "garbage",
    "hold",
    "deny:FAILED",
    "deny:UNCLAIMED",
]
# A lost answer (PayPal committed, we never heard) followed by a definite one: where money was
# paid twice before. Drawn as often as a random sequence, so every run meets them.
LOST_THEN = st.tuples(
    st.sampled_from(["timeout", "garbage", "500"]), st.sampled_from(["400", "404", "422", "429", "401", "ok"])
).map(list)
# PayPal's answers to the create requests of one worker's run (then "ok" for any further one).
ANSWERS = st.one_of(LOST_THEN, st.lists(st.sampled_from(CREATE_ANSWERS), min_size=1, max_size=3))
LATER = ["SUCCESS", "REVERSED", "REFUNDED", "RETURNED", "BLOCKED", "UNCLAIMED"]


class PayoutLifecycle(RuleBasedStateMachine):
    fake: FakePayPal
    staff = None

    def __init__(self) -> None:
        super().__init__()
        # Each history starts from an empty program: its rows are rolled back in teardown.
        self.savepoint = transaction.savepoint()
        self.fake.batches.clear()
        self.fake.request_ids.clear()
        self.fake.reset_script()
        self.partners = [PartnerFactory(paypal_email=f"p{i}@example.com") for i in range(2)]
        self.entries: list[CommissionEntry] = []

    @initialize(amount=st.sampled_from(["50.00", "120.00"]))
    def an_approved_payout_to_begin_with(self, amount: str) -> None:
        self.entries.append(add_commission(self.partners[0], amount))
        payout = services.payout_request(partner=self.partners[0])
        services.payout_approve(payout_id=payout.pk, actor=self.staff)

    def teardown(self) -> None:
        transaction.savepoint_rollback(self.savepoint)

    # -- the partner and the ledger ---------------------------------------------------------------
    @rule(who=st.integers(0, 1), amount=st.sampled_from(["12.40", "50.00", "73.15", "120.00"]))
    def earn(self, who: int, amount: str) -> None:
        self.entries.append(add_commission(self.partners[who], amount))

    @precondition(lambda self: self.entries)
    @rule(pick=st.integers(0, 10_000), part=st.sampled_from(["0.01", "5.00", "9.99"]))
    def refund(self, pick: int, part: str) -> None:
        entry = self.entries[pick % len(self.entries)]
        add_refund(entry, min(Decimal(part), entry.amount))

    @rule(who=st.integers(0, 1))
    def request(self, who: int) -> None:
        with contextlib.suppress(services.PayoutError):
            services.payout_request(partner=self.partners[who])

    # -- staff --------------------------------------------------------------------------------------
    def _pick(self, pick: int, *statuses: str) -> Payout | None:
        payouts = list(Payout.objects.filter(status__in=statuses).order_by("pk"))
        return payouts[pick % len(payouts)] if payouts else None

    @rule(pick=st.integers(0, 100))
    def approve(self, pick: int) -> None:
        payout = self._pick(pick, S.PENDING)
        if payout:
            # Refused when a refund since the request means the ledger no longer covers it.
            with contextlib.suppress(services.PayoutError):
                services.payout_approve(payout_id=payout.pk, actor=self.staff)

    @rule(pick=st.integers(0, 100))
    def reject(self, pick: int) -> None:
        payout = self._pick(pick, S.PENDING)
        if payout:
            services.payout_reject(payout_id=payout.pk, actor=self.staff, reason="not this time")

    @rule(pick=st.integers(0, 100), answers=ANSWERS)
    def staff_check(self, pick: int, answers: list[str]) -> None:
        payout = self._pick(pick, S.ATTENTION, S.UNKNOWN, S.SENT)
        if payout:
            self._paypal_will_answer(answers)
            services.payout_reconcile(payout_id=payout.pk)

    @rule(pick=st.integers(0, 100), answers=ANSWERS)
    def staff_mark_failed(self, pick: int, answers: list[str]) -> None:
        """Staff look for the payout in PayPal's dashboard first (the form asks them to), and
        mark it failed when PayPal has no live batch for it; the service refuses when it knows one."""
        payout = self._pick(pick, S.ATTENTION, S.UNKNOWN, S.SENDING)
        if payout and (payout.paypal_batch_id or not self._live_at_paypal(payout)):
            self._paypal_will_answer(answers)
            with contextlib.suppress(services.PayoutError):
                services.payout_staff_mark_failed(payout_id=payout.pk, actor=self.staff, reason="checked PayPal")

    # -- PayPal and the workers --------------------------------------------------------------------
    def _paypal_will_answer(self, answers: list[str]) -> None:
        self.fake.reset_script()
        self.fake.script(create=answers)

    @rule(pick=st.integers(0, 100), answers=ANSWERS)
    def worker_attempt(self, pick: int, answers: list[str]) -> None:
        """One attempt, as a worker's retry makes it, with PayPal's answer."""
        payout = self._pick(pick, S.APPROVED, S.SENDING, S.UNKNOWN)
        if payout:
            self._paypal_will_answer(answers)
            services.payout_send(payout_id=payout.pk)

    @rule(pick=st.integers(0, 100), answers=ANSWERS)
    def send_task(self, pick: int, answers: list[str]) -> None:
        """The send task as a worker runs it after an approval (its retries run at once here)."""
        payout = self._pick(pick, S.APPROVED, S.SENDING, S.UNKNOWN)
        if payout:
            self._paypal_will_answer(answers)
            send_payout_task.apply(args=(payout.pk,))

    @rule(pick=st.integers(0, 100))
    def worker_killed_after_paypal_took_it(self, pick: int) -> None:
        """A worker starts an attempt, PayPal creates the batch, the worker dies before recording."""
        payout = self._pick(pick, S.APPROVED, S.UNKNOWN)
        if payout is None:
            return
        started, _ = services.sending._begin_attempt(payout.pk, reconcile=False)
        if started is None:
            return
        with contextlib.suppress(Exception):  # whatever PayPal said, nobody heard it
            PayPalGateway().send(
                sender_batch_id=started.sender_batch_id,
                sender_item_id=str(started.pk),
                receiver=started.paypal_email,
                amount=started.amount,
                currency=started.currency,
                note="",
            )
        Payout.objects.filter(pk=started.pk).update(attempt_started_at=timezone.now() - timedelta(minutes=10))

    @rule(pick=st.integers(0, 100))
    def paypal_settles_a_batch(self, pick: int) -> None:
        batches = sorted(self.fake.batches)
        if batches:
            self.fake.settle(batches[pick % len(batches)])

    @rule(pick=st.integers(0, 100), later=st.sampled_from(LATER))
    def paypal_changes_an_item_after_settling(self, pick: int, later: str) -> None:
        settled = sorted(b.batch_id for b in self.fake.batches.values() if b.settled)
        if settled:
            batch = self.fake.batches[settled[pick % len(settled)]]
            current = batch.items[0]["transaction_status"]
            # PayPal moves items forward only: SUCCESS/UNCLAIMED may come back; dead items stay dead.
            if current not in DEAD_ITEM and not (current == "SUCCESS" and later == "UNCLAIMED"):
                self.fake.set_item_status(batch.batch_id, later)

    @rule(answers=ANSWERS)
    def periodic_job(self, answers: list[str]) -> None:
        self._paypal_will_answer(answers)
        Payout.objects.filter(next_action_at__isnull=False).update(next_action_at=timezone.now() - timedelta(seconds=1))
        reconcile_payouts_task()

    # -- invariants ------------------------------------------------------------------------------------
    def _live_at_paypal(self, payout: Payout) -> list[Decimal]:
        live = []
        for batch in self.fake.batches_for(payout.sender_batch_id):
            for item in batch.items:
                if batch.canceled or item["transaction_status"] in DEAD_ITEM:
                    continue
                live.append(Decimal(item["payout_item"]["amount"]["value"]))
        return live

    @invariant()
    def never_paid_twice(self) -> None:
        for payout in Payout.objects.all():
            assert len(self.fake.batches_for(payout.sender_batch_id)) <= 1, payout
            if payout.status in (S.FAILED, S.RETURNED, S.REJECTED):
                assert self._live_at_paypal(payout) == [], (payout, payout.status)
            if payout.status == S.PAID:
                assert self._live_at_paypal(payout) in ([payout.amount], []), payout

    @invariant()
    def money_adds_up(self) -> None:
        for partner in self.partners:
            earned = sum((e.amount for e in CommissionEntry.objects.filter(partner=partner)), Decimal("0.00"))
            payouts = list(Payout.objects.filter(partner=partner))
            held = sum((p.amount for p in payouts if p.status in Payout.COUNTED_STATUSES), Decimal("0.00"))
            left_at_paypal = sum((sum(self._live_at_paypal(p), Decimal("0.00")) for p in payouts), Decimal("0.00"))
            # Money out at PayPal is always money we count as paid or open: never more.
            assert left_at_paypal <= held
            assert partner_balance(partner=partner) + held == earned

    @invariant()
    def every_payout_is_final_or_waits_with_a_reason(self) -> None:
        for payout in Payout.objects.all():
            if payout.status in (S.PENDING, S.APPROVED, S.PAID, S.FAILED, S.RETURNED, S.REJECTED):
                continue
            if payout.status == S.ATTENTION:
                assert payout.attention_reason, payout
            elif payout.status == S.SENDING:
                assert payout.attempt_started_at or payout.next_action_at, payout
            else:  # unknown, sent
                assert payout.next_action_at, payout
            if payout.status == S.FAILED:
                assert not payout.outcome_unknown

    @invariant()
    def every_transition_is_audited_in_order(self) -> None:
        for payout in Payout.objects.all():
            path = ["pending"]
            for entry in PayoutAudit.objects.filter(payout=payout).order_by("at", "id"):
                if "to" in entry.detail:
                    assert entry.detail["from"] == path[-1], (payout, path, entry.detail)
                    path.append(entry.detail["to"])
            assert path[-1] == payout.status, (payout, path)


@pytest.fixture
def strict_paypal(settings):
    fake = FakePayPal(hang_seconds=0.6, settle_after=3600)
    settings.PAYPAL_API_BASE = fake.start()
    settings.PAYPAL_CLIENT_ID = fake.client_id
    settings.PAYPAL_CLIENT_SECRET = fake.client_secret
    settings.PAYPAL_MODE = "sandbox"
    settings.PAYPAL_TIMEOUT_SECONDS = 0.3
    yield fake
    fake.stop()


def test_the_payout_lifecycle_never_pays_twice_and_always_adds_up(strict_paypal, tried, payout_approver):
    PayoutLifecycle.fake = strict_paypal
    PayoutLifecycle.staff = payout_approver
    tried(f"{EXAMPLES} random histories of up to {STEPS} steps (hypothesis state machine)")
    run_state_machine_as_test(
        PayoutLifecycle,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )


@pytest.fixture
def payout_approver(db):
    from django.contrib.auth.models import Permission

    user = StaffFactory()
    user.user_permissions.add(Permission.objects.get(codename="approve_payout", content_type__app_label="payouts"))
    return type(user).objects.get(pk=user.pk)
