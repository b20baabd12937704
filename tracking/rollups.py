"""Daily per-link counters: the only source of every report and chart.

Writers call ``rollup_add`` in the same transaction as the row they count, so a counter is
never ahead of or behind its raw rows. The increment is one atomic upsert
(``INSERT … ON CONFLICT DO UPDATE SET x = x + excluded.x``), so concurrent writers never lose
an update (PostgreSQL and SQLite both speak it).

``tracking.rebuild.rebuild_rollups`` recomputes any day range from the raw rows (clicks,
referrals, commission entries), reports every counter that differs and writes the rebuilt
values. It is the proof that the incremental counters are right, and the repair when they are not.
"""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal
from functools import lru_cache
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, models, transaction
from django.utils import timezone

from tracking.models import ROLLUP_COUNTERS, DailyLinkStats

_COUNTERS = ROLLUP_COUNTERS


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
        lock_tables(DailyLinkStats)
        with connection.cursor() as cursor:
            for sql in recompute_sql(connection.vendor, partner_filter=partner_id is not None):
                cursor.execute(sql, params)


def lock_tables(*rollups: type[models.Model]) -> None:
    """While a rebuild reads the raw rows and writes these counters, no one may increment them:
    otherwise a click committed between the read and the write would be counted by its writer
    and then overwritten. SHARE ROW EXCLUSIVE conflicts with the row-exclusive lock every
    INSERT/UPDATE takes, so writers wait (and writers already in flight are waited for before
    the read). SQLite serialises writers on its own. Inside the caller's transaction."""
    if connection.vendor == "postgresql":
        tables = ", ".join(connection.ops.quote_name(model._meta.db_table) for model in rollups)
        with connection.cursor() as cursor:
            cursor.execute(f"LOCK TABLE {tables} IN SHARE ROW EXCLUSIVE MODE")
