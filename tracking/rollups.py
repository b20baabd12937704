"""Daily per-link counters: the only source of every report and chart.

Writers call ``rollup_add`` in the same transaction as the row they count, so a counter is
never ahead of or behind its raw rows. The increment is one atomic upsert
(``INSERT … ON CONFLICT DO UPDATE SET x = x + excluded.x``), so concurrent writers never lose
an update (PostgreSQL and SQLite both speak it).

``rebuild_rollups`` recomputes any day range from the raw rows (clicks, referrals, commission
entries), reports every counter that differs and writes the rebuilt values. It is the proof
that the incremental counters are right, and the repair when they are not.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from functools import lru_cache
from zoneinfo import ZoneInfo

from celery import shared_task
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from tracking.models import ROLLUP_COUNTERS, DailyLinkStats

logger = logging.getLogger(__name__)

_COUNTERS = ROLLUP_COUNTERS
_ZERO_MONEY = Decimal("0.00")
# A rebuild locks the counters table while it reads and writes one chunk of days (see
# ``_rebuild_chunk``); chunks keep each lock short when a year is rebuilt.
_CHUNK_DAYS = 31


@lru_cache(maxsize=8)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def program_tz() -> ZoneInfo:
    """The program's time zone (settings.TIME_ZONE, from PROGRAM_TIME_ZONE): reports' days."""
    return _zone(settings.TIME_ZONE)


def program_day(moment: datetime) -> date:
    """The calendar day of ``moment`` in the program's time zone (settings.TIME_ZONE)."""
    # Explicitly the program's zone, not whatever zone a request may have activated: a counter
    # must land on the same day whoever writes it.
    return timezone.localdate(moment, timezone=program_tz())


def program_today() -> date:
    return program_day(timezone.now())


def day_start(day: date) -> datetime:
    """The aware instant a program day begins (DST-safe: midnight in the program's zone)."""
    return datetime.combine(day, time.min, tzinfo=program_tz())


def rollup_add(
    *,
    link_id: int,
    partner_id: int,
    day: date,
    clicks: int = 0,
    unique_clicks: int = 0,
    new_trials: int = 0,
    new_subscriptions: int = 0,
    commission: Decimal = Decimal("0.00"),
) -> None:
    """Add the given amounts to the (link, day) counters, creating the row if needed."""
    values = (clicks, unique_clicks, new_trials, new_subscriptions, commission)
    if not any(values):
        return
    table = connection.ops.quote_name(DailyLinkStats._meta.db_table)
    sets = ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in _COUNTERS)
    sql = (
        f"INSERT INTO {table} (link_id, partner_id, day, {', '.join(_COUNTERS)}) "
        f"VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
        f"ON CONFLICT (link_id, day) DO UPDATE SET {sets}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, (link_id, partner_id, day, *values[:4], Decimal(values[4])))


def monthly_rebuild(*, partner_id: int | None = None) -> None:
    """Recompute ``LinkMonthlyStats`` from the daily rollups (one partner, or all), under the
    rollups' table lock so no increment lands between the read and the write. The triggers keep
    them equal anyway; this repairs rows written while the triggers were off (a restore)."""
    from tracking.monthly import recompute_sql

    params = [partner_id] if partner_id is not None else []
    with transaction.atomic():
        _lock_counters()
        with connection.cursor() as cursor:
            for sql in recompute_sql(connection.vendor, partner_filter=partner_id is not None):
                cursor.execute(sql, params)


# --- Rebuild ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RollupDifference:
    link_id: int
    day: date
    counter: str
    old: int | Decimal
    new: int | Decimal

    def __str__(self) -> str:
        return f"link {self.link_id} {self.day.isoformat()} {self.counter}: {self.old} -> {self.new}"


@dataclass
class RebuildReport:
    start: date
    end: date
    partner_id: int | None = None
    dry_run: bool = False
    rows_checked: int = 0
    rows_written: int = 0
    differences: list[RollupDifference] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.differences

    def summary(self) -> str:
        scope = f" for partner {self.partner_id}" if self.partner_id is not None else ""
        verb = "would write" if self.dry_run else "wrote"
        return (
            f"Rollups {self.start.isoformat()}..{self.end.isoformat()}{scope}: {self.rows_checked} link-days checked, "
            f"{len(self.differences)} differences, {verb} {self.rows_written} rows."
        )

    def as_dict(self, *, limit: int = 100) -> dict:
        """JSON-friendly (a Celery result / log line); at most ``limit`` differences listed."""
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "partner_id": self.partner_id,
            "rows_checked": self.rows_checked,
            "rows_written": self.rows_written,
            "difference_count": len(self.differences),
            "differences": [
                {
                    "link_id": d.link_id,
                    "day": d.day.isoformat(),
                    "counter": d.counter,
                    "old": str(d.old),
                    "new": str(d.new),
                }
                for d in self.differences[:limit]
            ],
        }


def _chunks(start: date, end: date) -> Iterator[tuple[date, date]]:
    current = start
    while current <= end:
        last = min(end, current + timedelta(days=_CHUNK_DAYS - 1))
        yield current, last
        current = last + timedelta(days=1)


_Key = tuple[int, date]


def _raw_counters(start: date, end: date, partner_id: int | None) -> dict[_Key, dict[str, int | Decimal]]:
    """Every counter of every (link, day) in the range, computed from the raw rows, grouped by
    the day in the program's time zone (the database converts each instant to that zone)."""
    from commissions.models import CommissionEntry, Referral
    from tracking.models import Click

    tz = program_tz()
    since, until = day_start(start), day_start(end + timedelta(days=1))
    counters: dict[_Key, dict[str, int | Decimal]] = {}

    def put(link_id: int, day: date, **values) -> None:
        row = counters.setdefault((link_id, day), {})
        row.update(values)

    clicks = Click.objects.filter(created_at__gte=since, created_at__lt=until)
    if partner_id is not None:
        clicks = clicks.filter(link__partner_id=partner_id)
    for row in (
        clicks.annotate(d=TruncDate("created_at", tzinfo=tz))
        .values("link_id", "d")
        .annotate(n=Count("pk"), u=Count("pk", filter=Q(is_unique=True)))
        .order_by()
    ):
        put(row["link_id"], row["d"], clicks=row["n"], unique_clicks=row["u"])

    referrals = Referral.objects.all()
    if partner_id is not None:
        referrals = referrals.filter(partner_id=partner_id)
    for moment, counter in (("signed_up_at", "new_trials"), ("first_paid_at", "new_subscriptions")):
        in_range = referrals.filter(**{f"{moment}__gte": since, f"{moment}__lt": until})
        for row in (
            in_range.annotate(d=TruncDate(moment, tzinfo=tz)).values("link_id", "d").annotate(n=Count("pk")).order_by()
        ):
            put(row["link_id"], row["d"], **{counter: row["n"]})

    entries = CommissionEntry.objects.filter(earned_at__gte=since, earned_at__lt=until)
    if partner_id is not None:
        entries = entries.filter(partner_id=partner_id)
    for row in (
        entries.annotate(d=TruncDate("earned_at", tzinfo=tz))
        .values("referral__link_id", "d")
        .annotate(total=Sum("amount"))
        .order_by()
    ):
        put(row["referral__link_id"], row["d"], commission=row["total"] or _ZERO_MONEY)
    return counters


def _value(values: dict, counter: str) -> int | Decimal:
    default = _ZERO_MONEY if counter == "commission" else 0
    value = values.get(counter, default)
    return Decimal(value).quantize(Decimal("0.01")) if counter == "commission" else int(value)


def _lock_counters() -> None:
    # While a chunk is rebuilt no one may increment a counter: otherwise a click committed
    # between our read of the raw rows and our write would be counted by rollup_add and then
    # overwritten. SHARE ROW EXCLUSIVE conflicts with the row-exclusive lock every INSERT/UPDATE
    # takes, so writers wait (and writers already in flight are waited for before we read).
    # SQLite serialises writers on its own.
    if connection.vendor == "postgresql":
        table = connection.ops.quote_name(DailyLinkStats._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE")


def _rebuild_chunk(report: RebuildReport, start: date, end: date) -> None:
    from tracking.models import Link

    with transaction.atomic():
        if not report.dry_run:
            _lock_counters()
        rebuilt = _raw_counters(start, end, report.partner_id)
        stored = DailyLinkStats.objects.filter(day__gte=start, day__lte=end)
        if report.partner_id is not None:
            stored = stored.filter(partner_id=report.partner_id)
        existing = {(row.link_id, row.day): row for row in stored}

        keys = sorted(set(rebuilt) | set(existing), key=lambda k: (k[1], k[0]))
        report.rows_checked += len(keys)
        to_update: list[DailyLinkStats] = []
        to_create: list[tuple[_Key, dict]] = []
        for key in keys:
            new_values = rebuilt.get(key, {})
            row = existing.get(key)
            changed = False
            for counter in _COUNTERS:
                old = _value({} if row is None else {counter: getattr(row, counter)}, counter)
                new = _value(new_values, counter)
                if old != new:
                    changed = True
                    report.differences.append(RollupDifference(key[0], key[1], counter, old, new))
            if not changed:
                continue
            if row is None:
                to_create.append((key, new_values))
            else:
                for counter in _COUNTERS:
                    setattr(row, counter, _value(new_values, counter))
                to_update.append(row)

        report.rows_written += len(to_update) + len(to_create)
        if report.dry_run or not (to_update or to_create):
            return
        if to_update:
            DailyLinkStats.objects.bulk_update(to_update, list(_COUNTERS), batch_size=1000)
        if to_create:
            owners = dict(Link.objects.filter(pk__in={key[0] for key, _ in to_create}).values_list("pk", "partner_id"))
            DailyLinkStats.objects.bulk_create(
                [
                    DailyLinkStats(
                        link_id=link_id,
                        partner_id=owners[link_id],
                        day=day,
                        **{counter: _value(values, counter) for counter in _COUNTERS},
                    )
                    for (link_id, day), values in to_create
                ],
                batch_size=1000,
            )


# --- dimension rollups (sub-IDs, referring site, device, country) ------------------------------

# DailyDimensionStats.dimension -> the Click column it counts.
DIMENSION_COLUMNS = {
    "sub1": "sub1",
    "sub2": "sub2",
    "sub3": "sub3",
    "referrer": "referrer_host",
    "device": "device",
    "country": "country",
}

_DimKey = tuple[int, str, date, str]  # link, dimension, day, value


def _raw_dimension_counts(start: date, end: date, partner_id: int | None) -> dict[_DimKey, tuple[int, int]]:
    """(clicks, unique clicks) per (link, dimension, day, value) from the raw clicks."""
    from tracking.models import Click

    tz = program_tz()
    since, until = day_start(start), day_start(end + timedelta(days=1))
    clicks = Click.objects.filter(created_at__gte=since, created_at__lt=until)
    if partner_id is not None:
        clicks = clicks.filter(link__partner_id=partner_id)
    counts: dict[_DimKey, tuple[int, int]] = {}
    for dimension, column in DIMENSION_COLUMNS.items():
        rows = (
            clicks.exclude(**{column: ""})
            .annotate(d=TruncDate("created_at", tzinfo=tz))
            .values_list("link_id", "d", column)
            .annotate(n=Count("pk"), u=Count("pk", filter=Q(is_unique=True)))
            .order_by()
        )
        for link_id, day, value, n, u in rows:
            counts[(link_id, dimension, day, value)] = (n, u)
    return counts


def _lock_dimension_counters() -> None:
    # As _lock_counters: no click may add to a dimension row between our read and our write.
    if connection.vendor == "postgresql":
        from tracking.models import DailyDimensionStats, PartnerDailyDimensionStats

        tables = ", ".join(
            connection.ops.quote_name(model._meta.db_table)
            for model in (DailyDimensionStats, PartnerDailyDimensionStats)
        )
        with connection.cursor() as cursor:
            cursor.execute(f"LOCK TABLE {tables} IN SHARE ROW EXCLUSIVE MODE")


def _rebuild_partner_dimensions(
    report: RebuildReport, start: date, end: date, rebuilt: dict[_DimKey, tuple[int, int]]
) -> None:
    """The partner-wide rows from the rebuilt per-link counts; caller holds the lock."""
    from tracking.models import Link, PartnerDailyDimensionStats

    owners = dict(Link.objects.filter(pk__in={key[0] for key in rebuilt}).values_list("pk", "partner_id"))
    raw: dict[tuple[int, str, date, str], tuple[int, int]] = {}
    for (link_id, dimension, day, value), (n, u) in rebuilt.items():
        key = (owners[link_id], dimension, day, value)
        old_n, old_u = raw.get(key, (0, 0))
        raw[key] = (old_n + n, old_u + u)
    stored_rows = PartnerDailyDimensionStats.objects.filter(day__gte=start, day__lte=end)
    if report.partner_id is not None:
        stored_rows = stored_rows.filter(partner_id=report.partner_id)
    stored = {(row.partner_id, row.dimension, row.day, row.value): row for row in stored_rows}
    to_update, to_create, to_delete = [], [], []
    for key in sorted(set(raw) | set(stored)):
        new = raw.get(key, (0, 0))
        row = stored.get(key)
        old = (0, 0) if row is None else (row.clicks, row.unique_clicks)
        if old == new:
            continue
        partner_id, dimension, day, value = key
        report.differences.append(RollupDifference(0, day, f"partner {partner_id} {dimension}={value}", old, new))
        if row is None:
            to_create.append(
                PartnerDailyDimensionStats(
                    partner_id=partner_id,
                    dimension=dimension,
                    day=day,
                    value=value,
                    clicks=new[0],
                    unique_clicks=new[1],
                )
            )
        elif new == (0, 0):
            to_delete.append(row.pk)
        else:
            row.clicks, row.unique_clicks = new
            to_update.append(row)
    report.rows_written += len(to_update) + len(to_create) + len(to_delete)
    if report.dry_run:
        return
    if to_delete:
        PartnerDailyDimensionStats.objects.filter(pk__in=to_delete).delete()
    if to_update:
        PartnerDailyDimensionStats.objects.bulk_update(to_update, ["clicks", "unique_clicks"], batch_size=1000)
    if to_create:
        PartnerDailyDimensionStats.objects.bulk_create(to_create, batch_size=1000)


def _rebuild_dimension_chunk(report: RebuildReport, start: date, end: date) -> None:
    from tracking.models import DailyDimensionStats, Link

    with transaction.atomic():
        if not report.dry_run:
            _lock_dimension_counters()
        rebuilt = _raw_dimension_counts(start, end, report.partner_id)
        stored_rows = DailyDimensionStats.objects.filter(day__gte=start, day__lte=end)
        if report.partner_id is not None:
            stored_rows = stored_rows.filter(partner_id=report.partner_id)
        stored = {(row.link_id, row.dimension, row.day, row.value): row for row in stored_rows}
        keys = sorted(set(rebuilt) | set(stored))
        report.rows_checked += len(keys)
        to_update, to_create, to_delete = [], [], []
        for key in keys:
            new = rebuilt.get(key, (0, 0))
            row = stored.get(key)
            old = (0, 0) if row is None else (row.clicks, row.unique_clicks)
            if old == new:
                continue
            link_id, dimension, day, value = key
            for counter, before, after in zip(("clicks", "unique_clicks"), old, new, strict=True):
                if before != after:
                    report.differences.append(
                        RollupDifference(link_id, day, f"{dimension}={value} {counter}", before, after)
                    )
            if row is None:
                to_create.append((key, new))
            elif new == (0, 0):
                to_delete.append(row.pk)
            else:
                row.clicks, row.unique_clicks = new
                to_update.append(row)
        report.rows_written += len(to_update) + len(to_create) + len(to_delete)
        _rebuild_partner_dimensions(report, start, end, rebuilt)
        if report.dry_run:
            return
        if to_delete:
            DailyDimensionStats.objects.filter(pk__in=to_delete).delete()
        if to_update:
            DailyDimensionStats.objects.bulk_update(to_update, ["clicks", "unique_clicks"], batch_size=1000)
        if to_create:
            owners = dict(Link.objects.filter(pk__in={key[0] for key, _ in to_create}).values_list("pk", "partner_id"))
            DailyDimensionStats.objects.bulk_create(
                [
                    DailyDimensionStats(
                        link_id=link_id,
                        partner_id=owners[link_id],
                        dimension=dimension,
                        day=day,
                        value=value,
                        clicks=n,
                        unique_clicks=u,
                    )
                    for (link_id, dimension, day, value), (n, u) in to_create
                ],
                batch_size=1000,
            )


def rebuild_dimension_rollups(
    start: date, end: date, *, partner_id: int | None = None, dry_run: bool = False
) -> RebuildReport:
    """``rebuild_rollups`` for ``DailyDimensionStats``: recompute every (link, dimension, day,
    value) of the range from the raw clicks, report what differs, write it (unless ``dry_run``)."""
    if start > end:
        raise ValueError("start must not be after end")
    report = RebuildReport(start=start, end=end, partner_id=partner_id, dry_run=dry_run)
    for chunk_start, chunk_end in _chunks(start, end):
        _rebuild_dimension_chunk(report, chunk_start, chunk_end)
    return report


def rebuild_rollups(start: date, end: date, *, partner_id: int | None = None, dry_run: bool = False) -> RebuildReport:
    """Recompute every counter of the days ``start``..``end`` (inclusive, program time zone)
    from the raw rows, report the differences found, then write the rebuilt values (unless
    ``dry_run``). Only rows that differ are written. The dimension rollups are rebuilt too."""
    if start > end:
        raise ValueError("start must not be after end")
    report = RebuildReport(start=start, end=end, partner_id=partner_id, dry_run=dry_run)
    for chunk_start, chunk_end in _chunks(start, end):
        _rebuild_chunk(report, chunk_start, chunk_end)
        _rebuild_dimension_chunk(report, chunk_start, chunk_end)
    if not dry_run:
        # The month rows followed every write by trigger; recomputing them repairs any drift.
        monthly_rebuild(partner_id=partner_id)
    if report.differences:
        logger.warning("%s First: %s", report.summary(), "; ".join(str(d) for d in report.differences[:10]))
    else:
        logger.info(report.summary())
    return report


def _as_date(value: date | str) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


@shared_task(name="tracking.rollups.rebuild_rollups_task")
def rebuild_rollups_task(start: date | str, end: date | str, partner_id: int | None = None) -> dict:
    """Rebuild a day range (ISO dates, inclusive) and return the report. Idempotent: a second
    run finds no differences."""
    return rebuild_rollups(_as_date(start), _as_date(end), partner_id=partner_id).as_dict()
