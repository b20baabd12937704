"""The lifecycle of a page of ledger entries, without replaying the partner's whole ledger.

``commissions.lifecycle.allocate`` replays every entry and payout (the reference, kept for the
statements and the tests). Its allocation is first in, first out on both sides, with one
exception: a reversal (or a void) first takes what is still available of its own commission.
Once those *own takes* are known, the rest is plain FIFO, so it is a matter of positions:

- the *supply* is the matured commissions in the order they matured (``earned_at``, ``id``),
  each ``amount`` less its own takes: commission ``o`` holds ``[S(o) - a(o), S(o))`` of it;
- the *demand* is the payouts that hold money and the reversals (each less its own take), in
  the order they happened: consumer ``k`` holds ``[D(k) - d(k), D(k))``;
- a commission's part in a consumer is the overlap of the two ranges; what lies past the last
  consumer is available; the parts come in the order the replay gives them (the later of the
  commission's maturing and the consumer's moment, own takes at their reversal's moment).

The own takes depend only on history up to the last reversal, so they are computed once by the
replay and kept in the cache under a fingerprint of that history (the reversals, the payouts
before the last one, the count and sum of the commissions matured by then): a new commission,
inside its hold, changes nothing; a refund, a void, a payout whose status stops holding money,
or a back-dated payment does, and the next page computes them again.

``S(o)`` comes from ``LedgerDay`` (the ledger's sums per day, less the reversals' share) and the
rows of the entry's own day, so a page reads a few hundred rows whatever the account's size.
SQLite (demo and tests without PostgreSQL) reads the ledger itself.
"""

from __future__ import annotations

import bisect
import hashlib
import zoneinfo
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.cache import cache
from django.db.models import Q, Sum
from django.utils import timezone

from commissions import ledgerdays
from commissions.lifecycle import (
    AVAILABLE,
    COUNTED,
    IN_PAYOUT,
    PAID,
    PAID_STATUS,
    PENDING,
    REVERSED,
    EntryState,
    Part,
    allocate,
    entry_ids_in_state,
    partner_lifecycle,
)
from commissions.models import CommissionEntry, LedgerDay
from commissions.money import ZERO
from partners.models import Partner
from payouts.models import Payout

COMMISSION = CommissionEntry.Kind.COMMISSION
_CREDIT, _REVERSAL, _PAYOUT = 0, 1, 2
_CACHE_KEY = "lifecycle-own-takes:{}"
_CACHE_SECONDS = 7 * 24 * 3600

Key = tuple[datetime, int]  # (earned_at, id): the ledger's order


def _program_day(at: datetime) -> date:
    return at.astimezone(zoneinfo.ZoneInfo(settings.TIME_ZONE)).date()


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=zoneinfo.ZoneInfo(settings.TIME_ZONE))


class _CommissionPrefix:
    """Sums of the partner's commission rows before a position in the ledger's order."""

    def __init__(self, partner: Partner, debits: list[tuple]) -> None:
        self.partner = partner
        self.days: list[date] = []
        self.before_day: list[Decimal] = []  # commission of every day before days[i]
        self.count_before_day: list[int] = []
        self.rows: dict[date, list[tuple[Key, Decimal]]] = {}
        self.kept = ledgerdays.kept()
        self.total, self.count = ZERO, 0
        if not self.kept:
            return
        debit_sum: dict[date, Decimal] = {}
        debit_count: dict[date, int] = {}
        for _pk, _kind, amount, earned_at, _payment in debits:
            day = _program_day(earned_at)
            debit_sum[day] = debit_sum.get(day, ZERO) + amount
            debit_count[day] = debit_count.get(day, 0) + 1
        rows = (
            LedgerDay.objects.filter(partner=partner)
            .values("day")
            .annotate(commission=Sum("commission"), entries=Sum("entries"))
            .order_by("day")
        )
        total, count = ZERO, 0
        self.total = ZERO
        for row in rows:
            self.days.append(row["day"])
            self.before_day.append(total)
            self.count_before_day.append(count)
            total += row["commission"] - debit_sum.get(row["day"], ZERO)
            count += row["entries"] - debit_count.get(row["day"], 0)
        self.total, self.count = total, count

    def forget(self) -> None:
        self.rows = {}

    def load(self, keys: list[Key]) -> None:
        """Read the commission rows of the days of ``keys`` (one query)."""
        if not self.kept:
            last = max(keys)
            query = CommissionEntry.objects.filter(
                Q(earned_at__lt=last[0]) | Q(earned_at=last[0], id__lte=last[1]), partner=self.partner, kind=COMMISSION
            )
            self.rows = {
                date.min: sorted(
                    ((at, pk), amount) for pk, at, amount in query.values_list("id", "earned_at", "amount")
                )
            }
            return
        days = sorted({_program_day(at) for at, _pk in keys} - set(self.rows))
        if not days:
            return
        where = Q()
        for day in days:
            where |= Q(earned_at__gte=_day_start(day), earned_at__lt=_day_start(day + timedelta(days=1)))
        for day in days:
            self.rows[day] = []
        query = CommissionEntry.objects.filter(where, partner=self.partner, kind=COMMISSION).order_by()
        for pk, at, amount in query.values_list("id", "earned_at", "amount"):
            self.rows[_program_day(at)].append(((at, pk), amount))
        for day in days:
            self.rows[day].sort()

    def before(self, key: Key, *, inclusive: bool = False) -> tuple[Decimal, int]:
        """(sum, count) of the commission rows before ``key`` (or up to it, ``inclusive``)."""
        if not self.kept:
            day_rows, total, count = self.rows[date.min], ZERO, 0
        else:
            day = _program_day(key[0])
            i = bisect.bisect_left(self.days, day)
            if i < len(self.days):
                total, count = self.before_day[i], self.count_before_day[i]
            else:  # after the last day the rollup knows
                total, count = self.total, self.count
            day_rows = self.rows[day]
        for row_key, amount in day_rows:
            if row_key > key or (row_key == key and not inclusive):
                break
            total += amount
            count += 1
        return total, count


@dataclass(frozen=True)
class _Take:
    reversal_id: int
    commission_id: int
    commission_key: Key
    amount: Decimal


def _fingerprint(partner: Partner, debits, payouts, prefix: _CommissionPrefix) -> tuple[str, list[Key]]:
    last = max(at for _pk, _kind, _amount, at, _payment in debits)
    cut = (last - timedelta(days=settings.COMMISSION_HOLD_DAYS), 2**62)
    prefix.load([cut])
    matured, count = prefix.before(cut, inclusive=True)
    parts = [
        str(settings.COMMISSION_HOLD_DAYS),
        repr(sorted(debits)),
        repr(sorted((pk, amount, at) for pk, amount, _status, at in payouts if at <= last)),
        f"{matured}:{count}",
    ]
    return hashlib.sha256("|".join(parts).encode()).hexdigest(), [cut]


def _own_takes(partner: Partner, debits, payouts, prefix: _CommissionPrefix, now: datetime) -> list[_Take]:
    if not debits:
        return []
    fingerprint, _ = _fingerprint(partner, debits, payouts, prefix)
    key = _CACHE_KEY.format(partner.pk)
    cached = cache.get(key)
    if cached and cached[0] == fingerprint:
        return cached[1]
    entries = list(
        CommissionEntry.objects.filter(partner=partner)
        .order_by()
        .values_list("id", "kind", "amount", "earned_at", "payment_id")
    )
    life = allocate(entries=entries, payouts=payouts, now=now, hold_days=settings.COMMISSION_HOLD_DAYS)
    earned = {pk: at for pk, _kind, _amount, at, _payment in entries}
    takes = [
        _Take(reversal_id=ref, commission_id=own, commission_key=(earned[own], own), amount=amount)
        for ref, (own, amount) in life.own_takes.items()
        if amount
    ]
    cache.set(key, (fingerprint, takes), _CACHE_SECONDS)
    return takes


class PageStates:
    """Everything the states of any page need, read once: the debits, the payouts that hold
    money, the own takes, the consumers' cumulative demand."""

    def __init__(self, *, partner: Partner, now: datetime | None = None) -> None:
        self.partner = partner
        self.now = now or timezone.now()
        self.hold = timedelta(days=settings.COMMISSION_HOLD_DAYS)
        debits = list(
            CommissionEntry.objects.filter(partner=partner)
            .exclude(kind=COMMISSION)
            .order_by()
            .values_list("id", "kind", "amount", "earned_at", "payment_id")
        )
        self.payouts = list(
            Payout.objects.filter(partner=partner, status__in=COUNTED)
            .order_by()
            .values_list("id", "amount", "status", "requested_at")
        )
        # Anything dated after now (never written by the app) leaves it to the replay.
        self.replay = any(at > self.now for *_rest, at, _p in debits) or any(
            at > self.now for *_rest, at in self.payouts
        )
        if self.replay:
            self.life = partner_lifecycle(partner=partner, now=self.now)
            return
        self.prefix = _CommissionPrefix(partner, debits)
        takes = _own_takes(partner, debits, self.payouts, self.prefix, self.now)
        took = {take.reversal_id: take.amount for take in takes}
        self.takes_of: dict[int, list[tuple[tuple, Decimal]]] = {}
        debit_at = {pk: at for pk, _kind, _amount, at, _payment in debits}
        for take in takes:
            event = (debit_at[take.reversal_id], _REVERSAL, take.reversal_id)
            self.takes_of.setdefault(take.commission_id, []).append((event, take.amount))
        self.take_keys = sorted(take.commission_key for take in takes)
        self.take_sums: list[Decimal] = []
        running = ZERO
        by_key = sorted(takes, key=lambda take: take.commission_key)
        for take in by_key:
            running += take.amount
            self.take_sums.append(running)
        consumers = [
            ((at, _REVERSAL, pk), pk, None, -amount - took.get(pk, ZERO)) for pk, _kind, amount, at, _payment in debits
        ]
        consumers += [((at, _PAYOUT, pk), pk, status, amount) for pk, amount, status, at in self.payouts]
        consumers.sort()
        self.consumers = [consumer for consumer in consumers if consumer[3] > 0]
        self.ends: list[Decimal] = []
        running = ZERO
        for consumer in self.consumers:
            running += consumer[3]
            self.ends.append(running)
        self.demand = running

    def _taken_before(self, key: Key) -> Decimal:
        i = bisect.bisect_left(self.take_keys, key)
        return self.take_sums[i - 1] if i else ZERO

    def supply_range(self, key: Key, amount: Decimal) -> tuple[Decimal, Decimal]:
        """The matured commission at ``key``'s place in the supply, less own takes."""
        before, _count = self.prefix.before(key)
        low = before - self._taken_before(key)
        own = sum((taken for _event, taken in self.takes_of.get(key[1], [])), ZERO)
        return low, low + amount - own

    def states(self, entries: list[CommissionEntry]) -> dict[int, EntryState]:
        """Each entry's ``EntryState``, exactly as ``allocate`` gives it."""
        return self.states_of([(entry.pk, entry.kind, entry.amount, entry.earned_at) for entry in entries])

    def states_of(self, rows: list[tuple[int, str, Decimal, datetime]]) -> dict[int, EntryState]:
        """``states`` of (id, kind, amount, earned_at) rows; the days read for one call are
        dropped at the next (an export calls it chunk by chunk in constant memory)."""
        if self.replay:
            return {pk: self.life.entries[pk] for pk, *_rest in rows}
        cutoff = self.now - self.hold
        matured = [(at, pk) for pk, kind, _amount, at in rows if kind == COMMISSION and at <= cutoff]
        self.prefix.forget()
        if matured:
            self.prefix.load(matured)
        result = {}
        for pk, kind, amount, earned_at in rows:
            state = EntryState(entry_id=pk, kind=kind, amount=amount)
            if kind != COMMISSION:
                state.parts.append(Part(REVERSED, amount))
            elif earned_at > cutoff:
                state.parts.append(Part(PENDING, amount))
                state.available_from = earned_at + self.hold
            elif amount == ZERO:
                state.parts.append(Part(AVAILABLE, ZERO))
            else:
                state.parts = self._parts(pk, amount, earned_at)
            result[pk] = state
        return result

    def _parts(self, pk: int, amount: Decimal, earned_at: datetime) -> list[Part]:
        low, high = self.supply_range((earned_at, pk), amount)
        credited = (earned_at + self.hold, _CREDIT, pk)
        timed: list[tuple[tuple, Part]] = [(event, Part(REVERSED, taken)) for event, taken in self.takes_of.get(pk, [])]
        i = bisect.bisect_right(self.ends, low)
        while i < len(self.consumers) and low < high:
            event, consumer, status, demand = self.consumers[i]
            start = self.ends[i] - demand
            if start >= high:
                break
            covered = min(high, self.ends[i]) - max(low, start)
            if covered > 0:
                if status is None:
                    part = Part(REVERSED, covered)
                else:
                    part = Part(PAID if status == PAID_STATUS else IN_PAYOUT, covered, consumer)
                timed.append((max(event, credited), part))
            i += 1
        timed.sort(key=lambda item: item[0])
        parts = [part for _event, part in timed]
        left = high - max(low, self.demand)
        if left > 0:
            parts.append(Part(AVAILABLE, left))
        return parts

    def ids_filter(self, state: str) -> Q:
        """A filter on the partner's ledger rows for the entries with a part in ``state``."""
        cutoff = self.now - self.hold
        commission = Q(kind=COMMISSION)
        if self.replay:
            return Q(pk__in=sorted(entry_ids_in_state(self.life, state)))
        if state == PENDING:
            return commission & Q(earned_at__gt=cutoff)
        if state == AVAILABLE:
            return commission & Q(earned_at__lte=cutoff) & (Q(amount=0) | self._after_demand(cutoff))
        # Paid, in a payout, reversed: the ranges are spread over the whole ledger; the replay
        # still lists them (commissions/lifecycle.py).
        return Q(pk__in=sorted(entry_ids_in_state(partner_lifecycle(partner=self.partner, now=self.now), state)))

    def _after_demand(self, cutoff: datetime) -> Q:
        """Matured commissions whose supply range ends past the last consumer (less those own
        takes emptied): the first one is found through the days' sums, then its day's rows."""
        first = self._first_past_demand(cutoff)
        if first is None:
            return Q(pk__in=[])
        took: dict[int, Decimal] = {
            pk: sum((taken for _event, taken in takes), ZERO) for pk, takes in self.takes_of.items()
        }
        amounts = CommissionEntry.objects.filter(pk__in=list(took)).values_list("id", "amount") if took else []
        emptied = [pk for pk, amount in amounts if took[pk] >= amount]
        return (Q(earned_at__gt=first[0]) | Q(earned_at=first[0], id__gte=first[1])) & ~Q(pk__in=emptied)

    def _first_past_demand(self, cutoff: datetime) -> Key | None:
        prefix = self.prefix
        if prefix.kept:
            # The first day whose supply (less its own takes) reaches past the demand.
            days, start = prefix.days, None
            for i, day in enumerate(days):
                through = prefix.before_day[i + 1] if i + 1 < len(days) else prefix.total
                if through - self._taken_before((_day_start(day + timedelta(days=1)), 0)) > self.demand:
                    start = i
                    break
            if start is None or days[start] > _program_day(cutoff):
                return None
            day = days[start]
            prefix.load([(_day_start(day), 0)])
            rows = prefix.rows[day]
            low = prefix.before_day[start] - self._taken_before((_day_start(day), 0))
        else:
            prefix.load([(cutoff, 2**62)])
            rows, low = prefix.rows[date.min], ZERO
        for key, amount in rows:
            if key[0] > cutoff:
                return None
            own = sum((taken for _event, taken in self.takes_of.get(key[1], [])), ZERO)
            high = low + amount - own
            if high > self.demand and high > low:
                return key
            low = high
        return None
