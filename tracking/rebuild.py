"""Rebuilding the rollups from the raw rows: the proof that the incremental counters are right,
and the repair when they are not.

``rebuild_rollups`` recomputes any day range of ``DailyLinkStats`` from the clicks, referrals and
commission entries, and of the dimension rollups (``DailyDimensionStats``,
``PartnerDailyDimensionStats``) from the clicks; it reports every counter that differs and writes
the rebuilt values (unless ``dry_run``). Each chunk of days is read and written under a lock that
keeps every writer out meanwhile (``tracking.rollups.lock_tables``)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from celery import shared_task
from django.db import models, transaction
from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate

from tracking.models import ROLLUP_COUNTERS, DailyDimensionStats, DailyLinkStats, PartnerDailyDimensionStats
from tracking.rollups import day_start, lock_tables, monthly_rebuild, program_tz

logger = logging.getLogger(__name__)

_ZERO_MONEY = Decimal("0.00")
# A rebuild locks the counters tables while it reads and writes one chunk of days; chunks keep
# each lock short when a year is rebuilt.
_CHUNK_DAYS = 31

# DailyDimensionStats.dimension -> the Click column it counts.
DIMENSION_COLUMNS = {
    "sub1": "sub1",
    "sub2": "sub2",
    "sub3": "sub3",
    "referrer": "referrer_host",
    "device": "device",
    "country": "country",
}
_DIMENSION_COUNTERS = ("clicks", "unique_clicks")


@dataclass(frozen=True)
class RollupDifference:
    link_id: int
    day: date
    counter: str
    old: int | Decimal | tuple
    new: int | Decimal | tuple

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


def _value(counter: str, value) -> int | Decimal:
    if counter == "commission":
        return Decimal(value if value is not None else 0).quantize(Decimal("0.01"))
    return int(value or 0)


def _reconcile(
    report: RebuildReport,
    model: type[models.Model],
    counters: tuple[str, ...],
    rebuilt: dict[tuple, tuple],
    stored: Iterable[models.Model],
    *,
    key: Callable[[models.Model], tuple],
    order: Callable[[tuple], tuple],
    describe: Callable[[tuple, tuple, tuple], list[RollupDifference]],
    new_rows: Callable[[list[tuple[tuple, tuple]]], list[models.Model]],
    delete_empty: bool,
) -> int:
    """Compare the rebuilt counters (key -> values in ``counters`` order) with the stored rows of
    the same range, report each difference (``describe``) and, unless a dry run, write: update
    the rows that differ, create the missing ones (``new_rows``), delete the ones with nothing
    left when ``delete_empty``. Returns how many keys were compared."""
    zero = tuple(_value(counter, 0) for counter in counters)
    existing = {key(row): row for row in stored}
    keys = sorted(set(rebuilt) | set(existing), key=order)
    to_update, to_create, to_delete = [], [], []
    for k in keys:
        new = rebuilt.get(k, zero)
        row = existing.get(k)
        old = zero if row is None else tuple(_value(c, getattr(row, c)) for c in counters)
        if old == new:
            continue
        report.differences.extend(describe(k, old, new))
        if row is None:
            to_create.append((k, new))
        elif delete_empty and new == zero:
            to_delete.append(row.pk)
        else:
            for counter, value in zip(counters, new, strict=True):
                setattr(row, counter, value)
            to_update.append(row)
    report.rows_written += len(to_update) + len(to_create) + len(to_delete)
    if not report.dry_run:
        if to_delete:
            model.objects.filter(pk__in=to_delete).delete()
        if to_update:
            model.objects.bulk_update(to_update, list(counters), batch_size=1000)
        if to_create:
            model.objects.bulk_create(new_rows(to_create), batch_size=1000)
    return len(keys)


def _owners(link_ids: Iterable[int]) -> dict[int, int]:
    from tracking.models import Link

    return dict(Link.objects.filter(pk__in=set(link_ids)).values_list("pk", "partner_id"))


def _in_range(model: type[models.Model], report: RebuildReport, start: date, end: date):
    rows = model.objects.filter(day__gte=start, day__lte=end)
    return rows if report.partner_id is None else rows.filter(partner_id=report.partner_id)


# --- DailyLinkStats -------------------------------------------------------------------------


def _raw_counters(start: date, end: date, partner_id: int | None) -> dict[tuple[int, date], tuple]:
    """Every counter (``ROLLUP_COUNTERS`` order) of every (link, day) in the range, computed from
    the raw rows, grouped by the day in the program's time zone (the database converts each
    instant to that zone)."""
    from commissions.models import CommissionEntry, Referral
    from tracking.models import Click

    tz = program_tz()
    since, until = day_start(start), day_start(end + timedelta(days=1))
    counters: dict[tuple[int, date], dict[str, int | Decimal]] = {}

    def put(link_id: int, day: date, **values) -> None:
        counters.setdefault((link_id, day), {}).update(values)

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
    return {key: tuple(_value(c, values.get(c)) for c in ROLLUP_COUNTERS) for key, values in counters.items()}


def _rebuild_chunk(report: RebuildReport, start: date, end: date) -> None:
    with transaction.atomic():
        if not report.dry_run:
            lock_tables(DailyLinkStats)

        def describe(key, old, new):
            link_id, day = key
            return [
                RollupDifference(link_id, day, counter, before, after)
                for counter, before, after in zip(ROLLUP_COUNTERS, old, new, strict=True)
                if before != after
            ]

        def new_rows(items):
            owners = _owners(link_id for (link_id, _day), _ in items)
            return [
                DailyLinkStats(
                    link_id=link_id, partner_id=owners[link_id], day=day, **dict(zip(ROLLUP_COUNTERS, new, strict=True))
                )
                for (link_id, day), new in items
            ]

        report.rows_checked += _reconcile(
            report,
            DailyLinkStats,
            ROLLUP_COUNTERS,
            _raw_counters(start, end, report.partner_id),
            _in_range(DailyLinkStats, report, start, end),
            key=lambda row: (row.link_id, row.day),
            order=lambda key: (key[1], key[0]),
            describe=describe,
            new_rows=new_rows,
            delete_empty=False,
        )


# --- the dimension rollups (sub-IDs, referring site, device, country) --------------------------


def _raw_dimension_counts(start: date, end: date, partner_id: int | None) -> dict[tuple, tuple[int, int]]:
    """(clicks, unique clicks) per (link, dimension, day, value) from the raw clicks."""
    from tracking.models import Click

    tz = program_tz()
    since, until = day_start(start), day_start(end + timedelta(days=1))
    clicks = Click.objects.filter(created_at__gte=since, created_at__lt=until)
    if partner_id is not None:
        clicks = clicks.filter(link__partner_id=partner_id)
    counts: dict[tuple, tuple[int, int]] = {}
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


def _rebuild_dimension_chunk(report: RebuildReport, start: date, end: date) -> None:
    with transaction.atomic():
        if not report.dry_run:
            lock_tables(DailyDimensionStats, PartnerDailyDimensionStats)
        rebuilt = _raw_dimension_counts(start, end, report.partner_id)
        owners = _owners(key[0] for key in rebuilt)

        def describe_link(key, old, new):
            link_id, dimension, day, value = key
            return [
                RollupDifference(link_id, day, f"{dimension}={value} {counter}", before, after)
                for counter, before, after in zip(_DIMENSION_COUNTERS, old, new, strict=True)
                if before != after
            ]

        def new_link_rows(items):
            return [
                DailyDimensionStats(
                    link_id=link_id,
                    partner_id=owners[link_id],
                    dimension=dimension,
                    day=day,
                    value=value,
                    clicks=n,
                    unique_clicks=u,
                )
                for (link_id, dimension, day, value), (n, u) in items
            ]

        report.rows_checked += _reconcile(
            report,
            DailyDimensionStats,
            _DIMENSION_COUNTERS,
            rebuilt,
            _in_range(DailyDimensionStats, report, start, end),
            key=lambda row: (row.link_id, row.dimension, row.day, row.value),
            order=lambda key: key,
            describe=describe_link,
            new_rows=new_link_rows,
            delete_empty=True,
        )

        # The partner-wide rows: the per-link counts summed per partner.
        partner_wide: dict[tuple, tuple[int, int]] = {}
        for (link_id, dimension, day, value), (n, u) in rebuilt.items():
            key = (owners[link_id], dimension, day, value)
            old_n, old_u = partner_wide.get(key, (0, 0))
            partner_wide[key] = (old_n + n, old_u + u)

        def describe_partner(key, old, new):
            partner_id, dimension, day, value = key
            return [RollupDifference(0, day, f"partner {partner_id} {dimension}={value}", old, new)]

        def new_partner_rows(items):
            return [
                PartnerDailyDimensionStats(
                    partner_id=partner_id, dimension=dimension, day=day, value=value, clicks=n, unique_clicks=u
                )
                for (partner_id, dimension, day, value), (n, u) in items
            ]

        _reconcile(
            report,
            PartnerDailyDimensionStats,
            _DIMENSION_COUNTERS,
            partner_wide,
            _in_range(PartnerDailyDimensionStats, report, start, end),
            key=lambda row: (row.partner_id, row.dimension, row.day, row.value),
            order=lambda key: key,
            describe=describe_partner,
            new_rows=new_partner_rows,
            delete_empty=True,
        )


def rebuild_dimension_rollups(
    start: date, end: date, *, partner_id: int | None = None, dry_run: bool = False
) -> RebuildReport:
    """``rebuild_rollups`` for the dimension rollups alone: recompute every (link, dimension, day,
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


@shared_task(name="tracking.rollups.rebuild_rollups_task")
def rebuild_rollups_task(start: date | str, end: date | str, partner_id: int | None = None) -> dict:
    """Rebuild a day range (ISO dates, inclusive) and return the report. Idempotent: a second
    run finds no differences. (The task keeps the name it had in ``tracking.rollups``.)"""
    start, end = (value if isinstance(value, date) else date.fromisoformat(value) for value in (start, end))
    return rebuild_rollups(start, end, partner_id=partner_id).as_dict()
