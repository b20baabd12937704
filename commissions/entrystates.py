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

The state filters (``ids_filter``) use the same positions the other way round: a state's
matured commissions form runs of the ledger's order (a payout covers a contiguous range of the
supply). One scan of the matured commissions' ids and amounts finds each state's runs (or
their ids, when the runs are short) and its totals; it is kept in the cache while the
consumers and the ledger days through its cutoff are unchanged, so a filtered page reads no
more rows than its own (what matures afterwards lies past the demand: available). While the
demand exceeds the matured supply (a debt), the filters read the ledger in order instead.
"""

from __future__ import annotations

import bisect
import hashlib
import zoneinfo
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection
from django.db.models import BooleanField, Q
from django.db.models.expressions import RawSQL
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
from config.cache import cache_get_shared, cache_set_shared
from partners.models import Partner
from payouts.models import Payout

COMMISSION = CommissionEntry.Kind.COMMISSION
_CREDIT, _REVERSAL, _PAYOUT = 0, 1, 2
_CACHE_KEY = "lifecycle-states:v4:{}"
_SCAN_KEY = "lifecycle-state-runs:v7:{}"
_LEDGER = CommissionEntry._meta.db_table
_FILTERED = (AVAILABLE, PAID, IN_PAYOUT, REVERSED)
_IDS_PER_RUN = 20  # a state's ids rather than its runs while they are at most this many per run
_CACHE_SECONDS = 7 * 24 * 3600

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
Key = tuple[datetime, int]  # (earned_at, id): the ledger's order


def _program_day(at: datetime) -> date:
    return at.astimezone(zoneinfo.ZoneInfo(settings.TIME_ZONE)).date()


def _micros(at: datetime) -> int:
    """A moment as whole microseconds since the epoch: event keys that compare and pickle fast."""
    return (at - _EPOCH) // _MICROSECOND


def _aware(at: datetime) -> datetime:
    return at if timezone.is_aware(at) else at.replace(tzinfo=UTC)


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=zoneinfo.ZoneInfo(settings.TIME_ZONE))


class _CommissionPrefix:
    """Sums of the partner's commission rows before a commission, in the ledger's order."""

    def __init__(self, partner: Partner, debit_days: dict[date, tuple[Decimal, int]]) -> None:
        self.partner = partner
        self.kept = ledgerdays.kept()
        self.days: list[date] = []
        self.sums: list[tuple[date, Decimal, Decimal, Decimal, int]] = []  # LedgerDay's, per day
        self.before_day: list[Decimal] = []  # commission of every day before days[i]
        self.total = ZERO
        self.within: dict[int, Decimal] = {}  # per commission: its day's commission before it
        self.rows: dict[date, list[tuple[Key, Decimal]]] = {}
        self.seen: list[str] = []  # each day's sums, for the own takes' fingerprint
        if not self.kept:
            return
        # A plain cursor: the ORM's decimal converters cost more than the query on 1,000 days.
        with connection.cursor() as cursor:
            cursor.execute(
                # Payments and refunds too: the page's totals for any dates are sums of these rows.
                f"SELECT day, SUM(commission), SUM(entries), SUM(payments), SUM(refunds) FROM {LedgerDay._meta.db_table} "
                "WHERE partner_id = %s GROUP BY day ORDER BY day",
                [partner.pk],
            )
            rows = cursor.fetchall()
        total, seen = ZERO, self.seen
        for day, commission, entries, payments, refunds in rows:
            self.days.append(day)
            self.sums.append((day, payments, refunds, commission, entries))
            self.before_day.append(total)
            total += commission - debit_days.get(day, (ZERO, 0))[0]
            seen.append(f"{day}:{commission}:{entries}")
        self.total = total

    def rollup_through(self, day: date) -> str:
        """The days' sums up to ``day`` (the fingerprint of what matured by then)."""
        return ",".join(self.seen[: bisect.bisect_right(self.days, day)]) if self.kept else ""

    def load(self, keys: list[Key]) -> None:
        """For each commission at ``keys``, the commission of its day before it: one query (on
        PostgreSQL a window over the rows of these days; elsewhere the ledger up to the last)."""
        self.within = {}
        if not keys:
            return
        ids = [pk for _at, pk in keys]
        if not self.kept:
            last = max(keys)
            query = CommissionEntry.objects.filter(
                Q(earned_at__lt=last[0]) | Q(earned_at=last[0], id__lte=last[1]), partner=self.partner, kind=COMMISSION
            ).order_by("earned_at", "id")
            running, wanted = ZERO, set(ids)
            for pk, amount in query.values_list("id", "amount"):
                if pk in wanted:
                    self.within[pk] = running
                running += amount
            return
        # One window per day of the page, bounded by the page's rows: from the day's start up to
        # its last row on the page, or (where that is shorter) from its first row on the page to
        # the day's end, counted back from the day's total. A page of the newest rows of a busy
        # day then reads those rows, not the whole day (12,700 rows of one day: 28 -> 2 ms).
        days = sorted({_program_day(at) for at, _pk in keys})
        now = timezone.now()
        parts: list[str] = []
        params: list[object] = []
        for n, day in enumerate(days):
            in_day = [key for key in keys if _program_day(key[0]) == day]
            lo, hi = min(in_day), max(in_day)
            start, end = _day_start(day), _day_start(day + timedelta(days=1))
            # Several days: the oldest holds the page's last rows of it, the others its first.
            # One day: the nearer end by time.
            from_end = n == 0 if len(days) > 1 else min(end, now) - hi[0] < lo[0] - start
            if from_end:
                i = bisect.bisect_left(self.days, day)
                day_total = (self.before_day[i + 1] if i + 1 < len(self.days) else self.total) - self.before_day[i]
                parts.append(
                    "(SELECT id, %s::numeric - SUM(amount) OVER (ORDER BY earned_at DESC, id DESC) AS before "
                    "FROM commissions_commissionentry WHERE partner_id = %s AND kind = 'commission' "
                    "AND earned_at < %s AND (earned_at, id) >= (%s, %s))"
                )
                params += [day_total, self.partner.pk, end, lo[0], lo[1]]
            else:
                parts.append(
                    "(SELECT id, SUM(amount) OVER (ORDER BY earned_at, id) - amount AS before "
                    "FROM commissions_commissionentry WHERE partner_id = %s AND kind = 'commission' "
                    "AND earned_at >= %s AND (earned_at, id) <= (%s, %s))"
                )
                params += [self.partner.pk, start, hi[0], hi[1]]
        sql = f"SELECT id, before FROM ({' UNION ALL '.join(parts)}) AS day_rows WHERE id = ANY(%s)"
        with connection.cursor() as cursor:
            cursor.execute(sql, [*params, ids])
            self.within = dict(cursor.fetchall())

    def day_rows(self, day: date) -> list[tuple[Key, Decimal]]:
        """The commission rows of one day (or, without the rollup, of the whole ledger), in order."""
        query = CommissionEntry.objects.filter(partner=self.partner, kind=COMMISSION)
        if self.kept:
            query = query.filter(earned_at__gte=_day_start(day), earned_at__lt=_day_start(day + timedelta(days=1)))
        return sorted(((at, pk), amount) for pk, at, amount in query.values_list("id", "earned_at", "amount"))

    def before(self, key: Key) -> Decimal:
        """The commission before the loaded commission at ``key``."""
        if not self.kept:
            return self.within[key[1]]
        i = bisect.bisect_left(self.days, _program_day(key[0]))
        return (self.before_day[i] if i < len(self.days) else self.total) + self.within[key[1]]


@dataclass(frozen=True)
class _History:
    """What the own takes give, kept in the cache under the fingerprint of their history."""

    takes_of: dict[int, list[tuple[tuple, Decimal]]]  # commission -> [(reversal's event, taken)]
    take_keys: list[Key]  # the commissions' keys of the takes, in order
    take_sums: list[Decimal]  # the running sum of the takes along take_keys
    debit_consumers: list[tuple]  # (event, id, None, what it takes first in first out)
    debit_days: dict[date, tuple[Decimal, int]]  # the debits' sum and count per program day


def _debits_digest(partner: Partner) -> tuple[int, datetime | None, str]:
    """(count, last moment, digest) of the partner's reversals and voids: one query on
    PostgreSQL (an index holds only them)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                # The ledger is append-only: its rows' count, sums and last id change with any row.
                # The voids' count, not string_agg(DISTINCT kind): that sort was 1.5 of 3.5 ms.
                "SELECT COUNT(*), MAX(earned_at), concat_ws(':', MAX(id), SUM(amount), SUM(payment_id), "
                "SUM(extract(epoch FROM earned_at)), COUNT(*) FILTER (WHERE kind = 'void')) "
                "FROM commissions_commissionentry WHERE partner_id = %s AND kind <> 'commission'",
                [partner.pk],
            )
            count, last, digest = cursor.fetchone()
        return count, last, digest or ""
    rows = sorted(_debits(partner))
    last = max((row[3] for row in rows), default=None)
    return len(rows), last, hashlib.sha256(repr(rows).encode()).hexdigest()


def _debits(partner: Partner) -> list[tuple]:
    return list(
        CommissionEntry.objects.filter(partner=partner)
        .exclude(kind=COMMISSION)
        .order_by()
        .values_list("id", "kind", "amount", "earned_at", "payment_id")
    )


def _payouts_digest(partner: Partner, last: datetime | None) -> tuple[datetime | None, str, str]:
    """(latest request, digest of the payouts that hold money, digest of their ids and amounts
    requested by ``last``): one query on PostgreSQL."""
    if connection.vendor != "postgresql":
        payouts = sorted(_counted_payouts(partner))
        before = [(pk, amount) for pk, amount, _status, at in payouts if last is not None and at <= last]
        latest = max((at for *_rest, at in payouts), default=None)
        return latest, repr(payouts), repr(before)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT MAX(requested_at), md5(string_agg(concat_ws(':', id, amount, status, "
            "extract(epoch FROM requested_at)), ',' ORDER BY id)), md5(string_agg(concat_ws(':', id, amount), ',' "
            f"ORDER BY id) FILTER (WHERE requested_at <= %s)) FROM {Payout._meta.db_table} "
            f"WHERE partner_id = %s AND status IN ({', '.join(['%s'] * len(COUNTED))})",
            [last, partner.pk, *sorted(COUNTED)],
        )
        latest, digest, before = cursor.fetchone()
    return latest, digest or "", before or ""


def _counted_payouts(partner: Partner) -> list[tuple[int, Decimal, str, datetime]]:
    """(id, amount, status, requested_at) of the payouts that hold money."""
    if connection.vendor != "postgresql":
        return list(
            Payout.objects.filter(partner=partner, status__in=COUNTED)
            .order_by()
            .values_list("id", "amount", "status", "requested_at")
        )
    with connection.cursor() as cursor:  # 500 payouts: a plain cursor, no ORM converters per row
        cursor.execute(
            f"SELECT id, amount, status, requested_at FROM {Payout._meta.db_table} "
            f"WHERE partner_id = %s AND status IN ({', '.join(['%s'] * len(COUNTED))})",
            [partner.pk, *sorted(COUNTED)],
        )
        return [(pk, amount, status, _aware(at)) for pk, amount, status, at in cursor.fetchall()]


def _history(partner: Partner, payouts: list[tuple], now: datetime) -> _History:
    """The own takes from the replay, and what follows from them."""
    entries = list(
        CommissionEntry.objects.filter(partner=partner)
        .order_by()
        .values_list("id", "kind", "amount", "earned_at", "payment_id")
    )
    life = allocate(entries=entries, payouts=payouts, now=now, hold_days=settings.COMMISSION_HOLD_DAYS)
    earned = {pk: at for pk, _kind, _amount, at, _payment in entries}
    takes = sorted(((earned[own], own), ref, amount) for ref, (own, amount) in life.own_takes.items() if amount)
    takes_of: dict[int, list[tuple[tuple, Decimal]]] = {}
    take_sums, running = [], ZERO
    for (_at, own), ref, amount in takes:
        takes_of.setdefault(own, []).append(((_micros(earned[ref]), _REVERSAL, ref), amount))
        running += amount
        take_sums.append(running)
    for events in takes_of.values():
        events.sort()
    took = {ref: amount for _key, ref, amount in takes}
    debit_consumers, debit_days = [], {}
    for pk, kind, amount, at, _payment in entries:
        if kind == COMMISSION:
            continue
        debit_consumers.append(((_micros(at), _REVERSAL, pk), pk, None, -amount - took.get(pk, ZERO)))
        day = _program_day(at)
        total, count = debit_days.get(day, (ZERO, 0))
        debit_days[day] = (total + amount, count + 1)
    history = _History(
        takes_of=takes_of,
        take_keys=[key for key, _ref, _amount in takes],
        take_sums=take_sums,
        debit_consumers=sorted(debit_consumers),
        debit_days=debit_days,
    )
    return history


def _in(ids: list[int]) -> Q:
    """``pk__in``, on PostgreSQL as one array parameter (thousands of ids compile slowly)."""
    if connection.vendor != "postgresql":
        return Q(pk__in=ids)
    # Constant SQL, the ids a parameter.
    return Q(RawSQL(f"{_LEDGER}.id = ANY(%s::bigint[])", [_array(ids)], output_field=BooleanField()))  # noqa: S611


def _array(values: list) -> str:
    """A PostgreSQL array's text (ints, or aware datetimes in ISO 8601): one string parameter
    instead of a list psycopg adapts element by element on every query."""
    if values and isinstance(values[0], datetime):
        return "{" + ",".join(value.isoformat() for value in values) + "}"
    return "{" + ",".join(map(str, values)) + "}"


def _not_in(ids: list[int]) -> Q:
    return ~_in(ids) if ids else Q()


def _before(key: Key) -> Q:
    """Rows before ``key`` in the ledger's order."""
    return Q(earned_at__lt=key[0]) | Q(earned_at=key[0], id__lt=key[1])


def _after(key: Key) -> Q:
    """Rows after ``key`` in the ledger's order."""
    return Q(earned_at__gt=key[0]) | Q(earned_at=key[0], id__gt=key[1])


@dataclass(frozen=True)
class _Scan:
    """The matured commissions up to ``cutoff`` of each filtered state, read once in the
    ledger's order: per state the runs of consecutive non-empty commissions it holds (first and
    last key, both included) or, when there are many short runs, their ids; and the totals
    (payments, refunds, commission, rows) of all its entries read (zero and emptied commissions
    too, and for the reversed state the reversals)."""

    cutoff: datetime
    last: Key | None  # the last matured commission read
    first_zero: Key | None  # the first matured commission of 0.00 (available, wherever it lies)
    runs: dict[str, list[tuple[Key, Key]]]
    ids: dict[str, list[int] | None]
    totals: dict[str, tuple[Decimal, Decimal, Decimal, int]]
    emptied: list[int]  # commissions their own reversals took entirely
    owned: list[int]  # commissions a reversal took from
    # Every entry the scan read in each filtered state, in the ledger's order: the filters' pages
    # without dates are slices of it. Paid, in a payout and reversed change only with a new
    # scan; "available" also gains every commission that matures after the scan's cutoff.
    members: dict[str, list[int]]


class PageStates:
    """Everything the states of any page need, read once: the payouts that hold money, the own
    takes (cached), the consumers' cumulative demand, the days' sums."""

    def __init__(self, *, partner: Partner, now: datetime | None = None) -> None:
        self.partner = partner
        self.now = now or timezone.now()
        self.hold = timedelta(days=settings.COMMISSION_HOLD_DAYS)
        count, last, digest = _debits_digest(partner)
        latest, payouts_digest, payouts_before = _payouts_digest(partner, last)
        # Anything dated after now (never written by the app) leaves it to the replay.
        self.replay = any(at is not None and at > self.now for at in (last, latest))
        if self.replay:
            self.life = partner_lifecycle(partner=partner, now=self.now)
            return
        # The own takes depend on the debits, the payouts before the last of them, and the
        # commissions matured by then (their days' sums: a back-dated payment changes them).
        key = _CACHE_KEY.format(partner.pk)
        cached = cache_get_shared(key)  # (fingerprint, history, payouts' digest, consumers)
        debit_days = cached[1].debit_days if cached else {}
        self.prefix = _CommissionPrefix(partner, debit_days)
        through = _program_day(last - self.hold) if last else date.min
        fingerprint = hashlib.sha256(
            "|".join(
                [
                    str(settings.COMMISSION_HOLD_DAYS),
                    f"{count}:{digest}",
                    payouts_before,
                    self.prefix.rollup_through(through),
                ]
            ).encode()
        ).hexdigest()
        self.inputs = f"{fingerprint}|{payouts_digest}"  # what the consumers' ranges depend on
        self.scanned: _Scan | None = None
        if cached and cached[0] == fingerprint and cached[2] == payouts_digest:
            history, consumers = cached[1], cached[3]
        else:
            payouts = _counted_payouts(partner)
            history = cached[1] if cached and cached[0] == fingerprint else _history(partner, payouts, self.now)
            consumers = history.debit_consumers + [
                ((_micros(at), _PAYOUT, pk), pk, status, amount) for pk, amount, status, at in payouts
            ]
            consumers.sort(key=lambda consumer: consumer[0])
            consumers = [consumer for consumer in consumers if consumer[3] > 0]
            cache_set_shared(key, (fingerprint, history, payouts_digest, consumers), _CACHE_SECONDS)
        if history.debit_days != debit_days:  # the days' sums read before the debits were known
            self.prefix = _CommissionPrefix(partner, history.debit_days)
        self.takes_of, self.take_keys, self.take_sums = history.takes_of, history.take_keys, history.take_sums
        self.consumers = consumers
        self.ends: list[Decimal] = []
        running = ZERO
        for consumer in self.consumers:
            running += consumer[3]
            self.ends.append(running)
        self.demand = running

    def ledger_days(self) -> list[tuple[date, Decimal, Decimal, Decimal, int]] | None:
        """(day, payments, refunds, commission, rows) of the ledger per program day, oldest first
        (``LedgerDay``, read for the states anyway); None where the rollup is not kept (SQLite)
        or the states came from a replay."""
        if self.replay or not self.prefix.kept:
            return None
        return self.prefix.sums

    def _taken_before(self, key: Key) -> Decimal:
        i = bisect.bisect_left(self.take_keys, key)
        return self.take_sums[i - 1] if i else ZERO

    def supply_range(self, key: Key, amount: Decimal) -> tuple[Decimal, Decimal]:
        """The matured commission at ``key``'s place in the supply, less own takes."""
        low = self.prefix.before(key) - self._taken_before(key)
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
        self.prefix.load([(at, pk) for pk, kind, amount, at in rows if kind == COMMISSION and at <= cutoff and amount])
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
        credited = (_micros(earned_at + self.hold), _CREDIT, pk)
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
        scan = self.scan()
        if scan is None:  # a debt: the slower filters below
            return self._slow_filter(state, cutoff)
        matured = commission & Q(earned_at__lte=cutoff)
        kept = ~Q(amount=0) & _not_in(scan.emptied)
        held = kept & self._members(scan, state)
        if state == AVAILABLE:
            # Whatever matured after the scan lies past the demand: available.
            if scan.last is None:
                return matured & (Q(amount=0) | kept)
            # The first of them as the index's lower bound: the last page reads from there.
            runs = scan.runs[AVAILABLE]
            first = min(key for key in (scan.first_zero, runs[0][0] if runs else None, scan.last) if key)
            later = _after(scan.last)
            return matured & ~_before(first) & (Q(amount=0) | (kept & (self._members(scan, state) | later)))
        if state == REVERSED:
            taken, debits = self.reversed_parts()
            return taken | debits
        return matured & held

    def state_ids(self, state: str) -> tuple[list[int], Q | None] | None:
        """The entries in ``state`` (a filtered one) as the scan read them, in the ledger's order
        (oldest first), and a filter of the partner's ledger for the state's entries after them
        (None: there are none; for "available", the commissions matured since the scan's cutoff,
        all available); None for another state, or where there is no scan (a replay, a debt)."""
        scan = None if self.replay or state not in _FILTERED else self.scan()
        if scan is None:
            return None
        since = None
        if state == AVAILABLE:
            since = Q(kind=COMMISSION, earned_at__gt=scan.cutoff, earned_at__lte=self.now - self.hold)
        return scan.members[state], since

    def reversed_parts(self) -> tuple[Q, Q] | None:
        """``ids_filter(REVERSED)`` as its two disjoint halves, for a page that reads each from its
        own index: (the matured commissions with a reversed part and those a reversal took from,
        the reversals and voids themselves); None where the filter is not made of them (a
        replay, a debt). Built once per page (their id arrays run to thousands)."""
        if not hasattr(self, "_reversed_parts"):
            self._reversed_parts = self._reversed_halves()
        return self._reversed_parts

    def _reversed_halves(self) -> tuple[Q, Q] | None:
        scan = None if self.replay else self.scan()
        if scan is None:
            return None
        commission = Q(kind=COMMISSION)
        matured = commission & Q(earned_at__lte=self.now - self.hold)
        held = ~Q(amount=0) & _not_in(scan.emptied) & self._members(scan, REVERSED)
        return commission & ((matured & held) | _in(scan.owned)), ~commission & ~Q(amount=0)

    @staticmethod
    def _members(scan: _Scan, state: str) -> Q:
        ids = scan.ids.get(state)
        if ids is not None:
            return _in(ids)
        found = scan.runs[state]
        if not found:
            return Q(pk__in=[])
        # The span of all the runs as the index's range: a page reads the rows in it only.
        span = Q(earned_at__gte=found[0][0][0], earned_at__lte=found[-1][1][0])
        if connection.vendor == "postgresql":
            # One condition with the runs as arrays: hundreds of ORs cost more to build, compile
            # and plan than the page's query itself.
            runs = RawSQL(  # noqa: S611 (constant SQL, the runs are parameters)
                "EXISTS (SELECT 1 FROM unnest(%s::timestamptz[], %s::bigint[], %s::timestamptz[], %s::bigint[]) "
                f"AS run(first_at, first_id, last_at, last_id) WHERE ({_LEDGER}.earned_at, {_LEDGER}.id) "
                f">= (run.first_at, run.first_id) AND ({_LEDGER}.earned_at, {_LEDGER}.id) <= (run.last_at, run.last_id))",
                [
                    _array([first[0] for first, _last in found]),
                    _array([first[1] for first, _last in found]),
                    _array([last[0] for _first, last in found]),
                    _array([last[1] for _first, last in found]),
                ],
                output_field=BooleanField(),
            )
            return span & Q(runs)
        runs = Q()
        for first, last in found:
            runs |= ~_before(first) & ~_after(last)
        return span & runs

    def scanned_totals(self, state: str) -> tuple[Decimal, Decimal, Decimal, int, Q | None] | None:
        """(payments, refunds, commission, rows, rest) of the entries in ``state`` the scan read
        (the matured commissions up to its cutoff, and the reversals) and a filter for the
        state's other rows (None: there are none), or None when the scan does not apply."""
        if self.replay or state not in _FILTERED:
            return None
        scan = self.scan()
        if scan is None:
            return None
        payments, refunds, commission, rows = scan.totals[state]
        # Only the available commissions grow as time passes (a new debit is a new scan).
        rest = Q(earned_at__gt=scan.cutoff) if state == AVAILABLE else None
        return payments, refunds, commission, rows, rest

    def scan(self) -> _Scan | None:
        """The filtered states' runs, from the cache while its inputs hold (PostgreSQL), else by
        reading the matured commissions' ids and amounts once in the ledger's order."""
        if self.scanned is not None:
            return self.scanned or None
        cutoff = self.now - self.hold
        key = _SCAN_KEY.format(self.partner.pk)
        cached = cache_get_shared(key) if self.prefix.kept else None
        if cached is not None and cached[0] <= cutoff:
            valid = self._scan_valid(cached[0])
            if cached[1] == valid:
                self.scanned = cached[2]
                return self.scanned or None
        scan = self._scan(cutoff)
        if self.prefix.kept:
            cache_set_shared(key, (cutoff, self._scan_valid(cutoff), scan or False), _CACHE_SECONDS)
        self.scanned = scan or False
        return scan

    def _scan_valid(self, cutoff: datetime) -> str:
        """What a scan up to ``cutoff`` depends on: the consumers, and every ledger day through
        the cutoff's (a back-dated or new row before the cutoff changes one)."""
        return hashlib.sha256(f"{self.inputs}|{self.prefix.rollup_through(_program_day(cutoff))}".encode()).hexdigest()

    def _scan(self, cutoff: datetime) -> _Scan | None:
        took = {pk: sum((taken for _event, taken in takes), ZERO) for pk, takes in self.takes_of.items()}
        ranges = []
        for consumer, end in zip(self.consumers, self.ends, strict=True):
            status = consumer[2]
            state = REVERSED if status is None else PAID if status == PAID_STATUS else IN_PAYOUT
            ranges.append((end - consumer[3], end, state))
        runs: dict[str, list[list[Key]]] = {state: [] for state in _FILTERED}
        ids: dict[str, list[int]] = {state: [] for state in _FILTERED}
        totals = {state: [ZERO, ZERO, ZERO, 0] for state in _FILTERED}
        running = dict.fromkeys(_FILTERED, False)
        low, j, last = ZERO, 0, None
        emptied, first_zero, reversed_ids, available_ids = [], None, [], []
        for pk, earned_at, amount, payment, kind, refund in self._rows(cutoff):
            if kind != COMMISSION:  # a reversal or a void: reversed (unless it took nothing)
                if amount:
                    reversed_ids.append(pk)
                    total = totals[REVERSED]
                    total[1] += refund or ZERO
                    total[2] += amount
                    total[3] += 1
                continue
            key = last = (earned_at, pk)
            high = low + amount - took.get(pk, ZERO)
            held = set()
            if high > low:
                while j < len(ranges) and ranges[j][1] <= low:
                    j += 1
                k = j
                while k < len(ranges) and ranges[k][0] < high:
                    held.add(ranges[k][2])
                    k += 1
                if high > self.demand:
                    held.add(AVAILABLE)
                for state in _FILTERED:
                    if state not in held:
                        running[state] = False
                        continue
                    if running[state]:
                        runs[state][-1][1] = key
                    else:
                        runs[state].append([key, key])
                        running[state] = True
                    ids[state].append(pk)
            elif amount == ZERO:
                held.add(AVAILABLE)
                first_zero = first_zero or key
            else:  # its own reversals took it all (they take only from matured commissions)
                emptied.append(pk)
            if pk in took:
                held.add(REVERSED)
            if REVERSED in held:
                reversed_ids.append(pk)
            if AVAILABLE in held:
                available_ids.append(pk)
            for state in held:
                total = totals[state]
                total[0] += payment or ZERO
                total[2] += amount
                total[3] += 1
            low = high
        if low < self.demand:
            return None  # commissions maturing later would go to the consumers: no fixed runs
        return _Scan(
            cutoff=cutoff,
            last=last,
            first_zero=first_zero,
            runs={state: [(first, end) for first, end in found] for state, found in runs.items()},
            # A few members in many runs: their ids make the shorter filter.
            ids={
                state: found if len(found) <= _IDS_PER_RUN * len(runs[state]) else None for state, found in ids.items()
            },
            totals={state: (total[0], total[1], total[2], total[3]) for state, total in totals.items()},
            emptied=emptied,
            owned=sorted(took),
            members={PAID: ids[PAID], IN_PAYOUT: ids[IN_PAYOUT], REVERSED: reversed_ids, AVAILABLE: available_ids},
        )

    def _rows(self, cutoff: datetime):
        """(id, earned_at, amount, its payment's amount, kind, its refund's amount) of the matured
        commissions and of the reversals and voids, in the ledger's order."""
        if connection.vendor != "postgresql":
            rows = CommissionEntry.objects.filter(
                Q(kind=COMMISSION, earned_at__lte=cutoff) | ~Q(kind=COMMISSION), partner=self.partner
            )
            yield from rows.order_by("earned_at", "id").values_list(
                "id", "earned_at", "amount", "payment__amount", "kind", "refund__amount"
            )
            return
        with connection.cursor() as cursor:  # a plain cursor: 100,000 rows without ORM converters
            cursor.execute(
                "SELECT e.id, e.earned_at, e.amount, p.amount, e.kind, r.amount FROM commissions_commissionentry e "
                "LEFT JOIN commissions_payment p ON p.id = e.payment_id AND e.kind = 'commission' "
                "LEFT JOIN commissions_refund r ON r.id = e.refund_id "
                "WHERE e.partner_id = %s AND (e.kind <> 'commission' OR e.earned_at <= %s) ORDER BY e.earned_at, e.id",
                [self.partner.pk, cutoff],
            )
            while batch := cursor.fetchmany(10_000):
                yield from batch

    def _slow_filter(self, state: str, cutoff: datetime) -> Q:
        commission = Q(kind=COMMISSION)
        if state == AVAILABLE:
            return commission & Q(earned_at__lte=cutoff) & (Q(amount=0) | self._after_demand(cutoff))
        # Paid, in a payout, reversed: the consumers' ranges are spread over the whole ledger, so
        # the matured commissions' amounts are read in order (ids and amounts only, no replay).
        if state == PAID:
            return self._touching(cutoff, lambda status: status == PAID_STATUS)
        if state == IN_PAYOUT:
            return self._touching(cutoff, lambda status: status is not None and status != PAID_STATUS)
        owned = Q(pk__in=sorted(self.takes_of))  # a reversal took from its own commission
        return self._touching(cutoff, lambda status: status is None) | owned | (~commission & ~Q(amount=0))

    def _touching(self, cutoff: datetime, wanted) -> Q:
        """Matured commissions whose supply range overlaps a consumer ``wanted(status)`` picks:
        their ids, or the matured commissions less the others', whichever list is shorter."""
        ranges = [
            (end - consumer[3], end)
            for consumer, end in zip(self.consumers, self.ends, strict=True)
            if wanted(consumer[2])
        ]
        if not ranges:
            return Q(pk__in=[])
        took = {pk: sum((taken for _event, taken in takes), ZERO) for pk, takes in self.takes_of.items()}
        inside: list[int] = []
        outside: list[int] = []
        low, j = ZERO, 0
        for pk, amount in self._matured_amounts(cutoff):
            high = low + amount - took.get(pk, ZERO)
            while j < len(ranges) and ranges[j][1] <= low:
                j += 1
            if j < len(ranges) and high > low and ranges[j][0] < high:
                inside.append(pk)
            else:
                outside.append(pk)
            low = high
        if len(inside) <= len(outside):
            return Q(pk__in=inside)
        return Q(kind=COMMISSION, earned_at__lte=cutoff) & ~Q(pk__in=outside)

    def _matured_amounts(self, cutoff: datetime):
        """(id, amount) of the matured commissions in the ledger's order."""
        if connection.vendor != "postgresql":
            rows = CommissionEntry.objects.filter(partner=self.partner, kind=COMMISSION, earned_at__lte=cutoff)
            yield from rows.order_by("earned_at", "id").values_list("id", "amount")
            return
        with connection.cursor() as cursor:  # a plain cursor: 100,000 rows without ORM converters
            cursor.execute(
                "SELECT id, amount FROM commissions_commissionentry WHERE partner_id = %s AND kind = 'commission' "
                "AND earned_at <= %s ORDER BY earned_at, id",
                [self.partner.pk, cutoff],
            )
            while batch := cursor.fetchmany(10_000):
                yield from batch

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
            rows = prefix.day_rows(day)
            low = prefix.before_day[start] - self._taken_before((_day_start(day), 0))
        else:
            rows, low = prefix.day_rows(date.min), ZERO
        for key, amount in rows:
            if key[0] > cutoff:
                return None
            own = sum((taken for _event, taken in self.takes_of.get(key[1], [])), ZERO)
            high = low + amount - own
            if high > self.demand and high > low:
                return key
            low = high
        return None
