"""Where every commission stands: pending, available, in a payout, paid, or reversed.

Computed from the ledger and the payouts alone (nothing stored), by replaying one partner's
history in the order it happened:

- a commission enters the balance when its hold ends (``earned_at + COMMISSION_HOLD_DAYS``);
  before that it is *pending* with the date it becomes available;
- a refund's reversal (or a staff void) counts at once: it takes back what is still unallocated of its own
  commission first, then the oldest available commissions; whatever is left waits as a debt
  that the next commissions settle first (the balance is negative meanwhile);
- a payout (any status that holds money: open or paid) covers the oldest available
  commissions, cent for cent. A rejected, failed or returned payout covers nothing: its
  commissions are available again.

So a commission may be split (part paid, part available); its *parts* say how much is in each
state. The parts add up, to the cent, to the contract's numbers: the pending parts to
``pending_commission``, the available parts less the debts to the balance, each payout's parts
(plus any shortfall, only possible after a refund of commission already paid out) to its
amount. ``tests/program/test_lifecycle_property.py`` checks this over random histories.

The payout statuses are read through ``OPEN``/``PAID`` below, so payout statuses added to the
state machine only need to be in ``Payout.OPEN_STATUSES`` ("open" = anything that still holds
the money and is not yet paid: not paid, rejected, failed or returned).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.utils import timezone

from commissions.display import format_money
from commissions.models import CommissionEntry
from commissions.money import ZERO
from partners.models import Partner
from payouts.models import Payout

PENDING = "pending"
AVAILABLE = "available"
IN_PAYOUT = "in_payout"
PAID = "paid"
REVERSED = "reversed"

STATE_LABELS = {
    PENDING: "Pending",
    AVAILABLE: "Available",
    IN_PAYOUT: "In a payout",
    PAID: "Paid",
    REVERSED: "Reversed",
}

OPEN = frozenset(Payout.OPEN_STATUSES)
PAID_STATUS = Payout.Status.PAID
COUNTED = frozenset((*OPEN, PAID_STATUS))


@dataclass(frozen=True)
class Part:
    state: str
    amount: Decimal
    payout_id: int | None = None


@dataclass
class EntryState:
    entry_id: int
    kind: str
    amount: Decimal
    parts: list[Part] = field(default_factory=list)
    available_from: datetime | None = None  # for a pending commission

    @property
    def states(self) -> list[str]:
        seen: list[str] = []
        for part in self.parts:
            if part.state not in seen:
                seen.append(part.state)
        return seen

    @property
    def state(self) -> str:
        """The state shown first: the one holding the most of the entry."""
        if not self.parts:
            return AVAILABLE if self.kind == CommissionEntry.Kind.COMMISSION else REVERSED
        return max(self.parts, key=lambda part: part.amount).state

    @property
    def payout_ids(self) -> list[int]:
        return sorted({part.payout_id for part in self.parts if part.payout_id is not None})


@dataclass
class Lifecycle:
    entries: dict[int, EntryState]
    # Per payout: [(entry id, amount)] oldest first, and the part no commission covers.
    payout_lines: dict[int, list[tuple[int, Decimal]]]
    payout_uncovered: dict[int, Decimal]
    payout_status: dict[int, str]
    payout_amount: dict[int, Decimal]
    debt: Decimal  # reversals not yet settled by any commission
    # Per reversal (or void) that took from its own commission while it was available: (that
    # commission's id, the amount taken). Everything else is first in, first out.
    own_takes: dict[int, tuple[int, Decimal]] = field(default_factory=dict)

    def total(self, state: str) -> Decimal:
        return sum(
            (part.amount for entry in self.entries.values() for part in entry.parts if part.state == state), ZERO
        )

    @property
    def pending(self) -> Decimal:
        return self.total(PENDING)

    @property
    def in_payouts(self) -> Decimal:
        return sum((amount for pk, amount in self.payout_amount.items() if self.payout_status[pk] in OPEN), ZERO)

    @property
    def paid(self) -> Decimal:
        return sum((amount for pk, amount in self.payout_amount.items() if self.payout_status[pk] == PAID_STATUS), ZERO)

    @property
    def available(self) -> Decimal:
        """The contract's balance: available commission less what is still owed."""
        return self.total(AVAILABLE) - self.debt - sum(self.payout_uncovered.values(), ZERO)


# Same moment: a commission enters before a reversal takes, and both before a payout covers.
_CREDIT, _REVERSAL, _PAYOUT = 0, 1, 2


def allocate(
    *,
    entries: list[tuple[int, str, Decimal, datetime, int]],
    payouts: list[tuple[int, Decimal, str, datetime]],
    now: datetime,
    hold_days: int,
) -> Lifecycle:
    """The lifecycle of one partner's ``entries`` (id, kind, amount, earned_at, payment id) and
    ``payouts`` (id, amount, status, requested_at) as of ``now``. Pure: no database."""
    hold = timedelta(days=hold_days)
    states: dict[int, EntryState] = {}
    commission_of_payment: dict[int, int] = {}
    events: list[tuple[datetime, int, int, object]] = []
    for entry_id, kind, amount, earned_at, payment_id in entries:
        states[entry_id] = EntryState(entry_id=entry_id, kind=kind, amount=amount)
        if kind == CommissionEntry.Kind.COMMISSION:
            commission_of_payment[payment_id] = entry_id
            matures = earned_at + hold
            if matures > now:
                states[entry_id].parts.append(Part(PENDING, amount))
                states[entry_id].available_from = matures
            else:
                events.append((matures, _CREDIT, entry_id, (amount,)))
        else:
            states[entry_id].parts.append(Part(REVERSED, amount))
            events.append((earned_at, _REVERSAL, entry_id, (-amount, payment_id)))
    payout_status: dict[int, str] = {}
    payout_amount: dict[int, Decimal] = {}
    for payout_id, amount, status, requested_at in payouts:
        if status not in COUNTED:
            continue
        payout_status[payout_id], payout_amount[payout_id] = status, amount
        events.append((requested_at, _PAYOUT, payout_id, (amount,)))
    events.sort(key=lambda event: (event[0], event[1], event[2]))

    available: OrderedDict[int, Decimal] = OrderedDict()  # unallocated commissions, oldest first
    claims: deque[list] = deque()  # [kind, id, amount still owed]: reversal debts, payout shortfalls
    lines: dict[int, list[tuple[int, Decimal]]] = {pk: [] for pk in payout_status}
    own_takes: dict[int, tuple[int, Decimal]] = {}

    def give(entry_id: int, amount: Decimal, claim_kind: int, claim_id: int) -> None:
        if claim_kind == _REVERSAL:
            states[entry_id].parts.append(Part(REVERSED, amount))
        else:
            state = PAID if payout_status[claim_id] == PAID_STATUS else IN_PAYOUT
            states[entry_id].parts.append(Part(state, amount, claim_id))
            lines[claim_id].append((entry_id, amount))

    def take_oldest(amount: Decimal, claim_kind: int, claim_id: int) -> Decimal:
        while amount > 0 and available:
            entry_id, left = next(iter(available.items()))
            taken = min(left, amount)
            give(entry_id, taken, claim_kind, claim_id)
            amount -= taken
            if taken == left:
                del available[entry_id]
            else:
                available[entry_id] = left - taken
        return amount

    for _at, kind, ref, data in events:
        if kind == _CREDIT:
            (amount,) = data
            if amount == ZERO:
                states[ref].parts.append(Part(AVAILABLE, ZERO))
                continue
            while amount > 0 and claims:
                claim = claims[0]
                taken = min(claim[2], amount)
                give(ref, taken, claim[0], claim[1])
                amount -= taken
                claim[2] -= taken
                if claim[2] == 0:
                    claims.popleft()
            if amount > 0:
                available[ref] = amount
        elif kind == _REVERSAL:
            amount, payment_id = data
            own = commission_of_payment.get(payment_id)
            if own in available:
                taken = min(available[own], amount)
                give(own, taken, _REVERSAL, ref)
                own_takes[ref] = (own, taken)
                amount -= taken
                if taken == available[own]:
                    del available[own]
                else:
                    available[own] -= taken
            amount = take_oldest(amount, _REVERSAL, ref)
            if amount > 0:
                claims.append([_REVERSAL, ref, amount])
        else:
            (amount,) = data
            amount = take_oldest(amount, _PAYOUT, ref)
            if amount > 0:
                claims.append([_PAYOUT, ref, amount])

    for entry_id, left in available.items():
        states[entry_id].parts.append(Part(AVAILABLE, left))
    # A commission's reversed parts are shown on the commission; the reversal rows themselves
    # keep their own (negative) REVERSED part so every row of the ledger has a state.
    debt = sum((claim[2] for claim in claims if claim[0] == _REVERSAL), ZERO)
    uncovered = dict.fromkeys(payout_status, ZERO)
    for claim in claims:
        if claim[0] == _PAYOUT:
            uncovered[claim[1]] += claim[2]
    return Lifecycle(
        entries=states,
        payout_lines=lines,
        payout_uncovered=uncovered,
        payout_status=payout_status,
        payout_amount=payout_amount,
        debt=debt,
        own_takes=own_takes,
    )


def partner_lifecycle(*, partner: Partner, now: datetime | None = None) -> Lifecycle:
    """The lifecycle of every ledger entry and payout of ``partner``: two queries (the ledger's
    id, kind, amount, time and payment; the payouts that hold money)."""
    now = now or timezone.now()
    entries = list(
        CommissionEntry.objects.filter(partner=partner)
        .order_by()
        .values_list("id", "kind", "amount", "earned_at", "payment_id")
    )
    payouts = list(
        Payout.objects.filter(partner=partner, status__in=COUNTED)
        .order_by()
        .values_list("id", "amount", "status", "requested_at")
    )
    return allocate(entries=entries, payouts=payouts, now=now, hold_days=settings.COMMISSION_HOLD_DAYS)


def entry_ids_in_state(lifecycle: Lifecycle, state: str) -> set[int]:
    """Ledger entries with any part in ``state`` (a split commission is in several)."""
    if state == REVERSED:
        return {
            pk
            for pk, entry in lifecycle.entries.items()
            if any(part.state == REVERSED and part.amount != ZERO for part in entry.parts)
        }
    return {pk for pk, entry in lifecycle.entries.items() if state in entry.states}


def state_texts(lifecycle: Lifecycle) -> dict[int, str]:
    """Each entry's state in words, as the Commissions page's State column reads in a CSV:
    "Paid", or its parts ("Paid 10.00; Available 5.00"), "Reversed" for a reversal or a void."""
    return texts_of(lifecycle.entries)


def texts_of(entries: dict[int, EntryState]) -> dict[int, str]:
    """``state_texts`` of some entries' states."""
    texts = {}
    for entry_id, life in entries.items():
        if life.kind != CommissionEntry.Kind.COMMISSION:
            texts[entry_id] = STATE_LABELS[REVERSED]
        elif len(life.parts) > 1:
            texts[entry_id] = "; ".join(
                f"{STATE_LABELS[part.state]} {format_money(part.amount, for_csv=True)}" for part in life.parts
            )
        else:
            texts[entry_id] = STATE_LABELS[life.state]
    return texts


@dataclass(frozen=True)
class StatementLine:
    entry: CommissionEntry
    covered: Decimal  # the part of the entry's commission this payout covers


@dataclass(frozen=True)
class Statement:
    payout: Payout
    lines: list[StatementLine]
    uncovered: Decimal
    counted: bool  # False for a rejected/failed/returned payout: it covers nothing

    @property
    def total(self) -> Decimal:
        return sum((line.covered for line in self.lines), ZERO) + self.uncovered


def payout_statement(*, partner: Partner, payout_id: int, now: datetime | None = None) -> Statement:
    """The commissions one of the partner's payouts covers, oldest first, to the cent
    (``Payout.DoesNotExist`` for anyone else's payout). Four queries whatever its size."""
    payout = Payout.objects.get(partner=partner, pk=payout_id)
    state = partner_lifecycle(partner=partner, now=now)
    covered = state.payout_lines.get(payout.pk, [])
    rows = CommissionEntry.objects.select_related("payment", "referral").in_bulk([entry_id for entry_id, _ in covered])
    return Statement(
        payout=payout,
        lines=[StatementLine(entry=rows[entry_id], covered=amount) for entry_id, amount in covered],
        uncovered=state.payout_uncovered.get(payout.pk, ZERO),
        counted=payout.pk in state.payout_status,
    )


STATEMENT_CSV_HEADER = ["earned_at", "referral_id", "customer", "payment_id", "commission", "covered_by_this_payout"]


def statement_csv_rows(statement: Statement) -> list[list[object]]:
    from commissions.display import mask_email
    from commissions.money import money_str

    rows: list[list[object]] = [
        [
            timezone.localtime(line.entry.earned_at).isoformat(),
            line.entry.referral_id,
            mask_email(line.entry.referral.email),
            line.entry.payment.payment_id,
            money_str(line.entry.amount),
            money_str(line.covered),
        ]
        for line in statement.lines
    ]
    if statement.uncovered:
        rows.append(
            ["", "", "not covered by commissions (refunds after payout)", "", "", money_str(statement.uncovered)]
        )
    rows.append(["", "", "total", "", "", money_str(statement.total)])
    return rows
