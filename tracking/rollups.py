"""Daily per-link counters: the only source of every report and chart.

Writers call ``rollup_add`` in the same transaction as the row they count, so a counter is
never ahead of or behind its raw rows. The increment is one atomic upsert
(``INSERT … ON CONFLICT DO UPDATE SET x = x + excluded.x``), so concurrent writers never lose
an update (PostgreSQL and SQLite both speak it).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from django.db import connection
from django.utils import timezone

from tracking.models import DailyLinkStats

_COUNTERS = ("clicks", "unique_clicks", "new_trials", "new_subscriptions", "commission")


def program_day(moment: datetime) -> date:
    """The calendar day of ``moment`` in the program's time zone (settings.TIME_ZONE)."""
    return timezone.localdate(moment)


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
