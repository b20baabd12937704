"""The rollups of written clicks summed in Python: what ``tracking.click_writes.write_clicks``
does on databases other than PostgreSQL (SQLite), where the sums are not made by the insert
statement itself. Rows are upserted in key order (the lock order of every writer)."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import date
from typing import TYPE_CHECKING

from django.db import connection

from tracking.rollups import program_day, rollup_add
from tracking.sources import device_type, referrer_host

if TYPE_CHECKING:
    from tracking.click_writes import ClickData

# Rows per multi-row VALUES statement.
_CHUNK = 500


def _db(model, field: str, value):
    return model._meta.get_field(field).get_db_prep_value(value, connection, prepared=False)


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def count_in_python(inserted: Sequence[ClickData], unique_ids: frozenset[uuid.UUID]) -> None:
    """Other databases (SQLite): the rollups of the inserted clicks, summed here and upserted
    in key order."""
    totals: Counter[tuple[int, int, date]] = Counter()
    uniques: Counter[tuple[int, int, date]] = Counter()
    for click in inserted:
        key = (click.link_id, click.partner_id, program_day(click.created_at))
        totals[key] += 1
        uniques[key] += int(click.id in unique_ids)
    for key in sorted(totals, key=lambda k: (k[0], k[2])):
        link_id, partner_id, day = key
        rollup_add(link_id=link_id, partner_id=partner_id, day=day, clicks=totals[key], unique_clicks=uniques[key])
    dimension_rollup_add(dimension_counts(inserted, unique_ids))


DIMENSIONS = ("sub1", "sub2", "sub3", "referrer", "device", "country")


def click_dimensions(click: ClickData) -> tuple[tuple[str, str], ...]:
    """(dimension, value) of a click for the dimension rollups, empty values left out."""
    values = (
        click.sub1,
        click.sub2,
        click.sub3,
        referrer_host(click.referer),
        device_type(click.user_agent),
        click.country,
    )
    return tuple((name, value) for name, value in zip(DIMENSIONS, values, strict=True) if value)


_DimensionKey = tuple[int, str, date, str, int]  # link, dimension, day, value, partner


def dimension_counts(
    clicks: Iterable[ClickData], unique_ids: frozenset[uuid.UUID] | set[uuid.UUID]
) -> dict[_DimensionKey, tuple[int, int]]:
    """(clicks, unique clicks) per (link, dimension, day, value, partner) of these clicks."""
    counts: dict[_DimensionKey, list[int]] = {}
    for click in clicks:
        day = program_day(click.created_at)
        unique = int(click.id in unique_ids)
        for name, value in click_dimensions(click):
            row = counts.setdefault((click.link_id, name, day, value, click.partner_id), [0, 0])
            row[0] += 1
            row[1] += unique
    return {key: (n, u) for key, (n, u) in counts.items()}


def partner_dimension_counts(
    counts: dict[_DimensionKey, tuple[int, int]],
) -> dict[tuple[int, str, date, str], tuple[int, int]]:
    """The per-link counts summed per (partner, dimension, day, value)."""
    out: dict[tuple[int, str, date, str], list[int]] = {}
    for (_link_id, name, day, value, partner_id), (n, u) in counts.items():
        row = out.setdefault((partner_id, name, day, value), [0, 0])
        row[0] += n
        row[1] += u
    return {key: (n, u) for key, (n, u) in out.items()}


_PARTNER_DIMENSION_CONFLICT = (
    "ON CONFLICT (partner_id, dimension, day, value) DO UPDATE SET clicks = {table}.clicks + excluded.clicks, "
    "unique_clicks = {table}.unique_clicks + excluded.unique_clicks"
)


def dimension_rollup_add(counts: dict[_DimensionKey, tuple[int, int]]) -> None:
    """Add these counts to ``DailyDimensionStats`` and ``PartnerDailyDimensionStats`` (rows in
    key order: the same lock order for every writer). Databases other than PostgreSQL, whose
    flush sums the counts in SQL (``click_writes._insert_clicks_counted``)."""
    if not counts:
        return
    from tracking.models import DailyDimensionStats

    table = _table(DailyDimensionStats)
    keys = sorted(counts)
    conflict = (
        f"ON CONFLICT (link_id, dimension, day, value) DO UPDATE SET clicks = {table}.clicks + excluded.clicks, "
        f"unique_clicks = {table}.unique_clicks + excluded.unique_clicks"
    )
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start : start + _CHUNK]
        params: list = []
        for key in chunk:
            link_id, name, day, value, partner_id = key
            params += [link_id, name, _db(DailyDimensionStats, "day", day), value, partner_id, *counts[key]]
        values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s)"] * len(chunk))
        sql = (
            f"INSERT INTO {table} (link_id, dimension, day, value, partner_id, clicks, unique_clicks) "
            f"VALUES {values} {conflict}"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
    _partner_dimension_rollup_add(partner_dimension_counts(counts))


def _partner_dimension_rollup_add(counts: dict[tuple[int, str, date, str], tuple[int, int]]) -> None:
    from tracking.models import PartnerDailyDimensionStats

    table = _table(PartnerDailyDimensionStats)
    keys = sorted(counts)
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start : start + _CHUNK]
        params: list = []
        for key in chunk:
            partner_id, name, day, value = key
            params += [partner_id, name, _db(PartnerDailyDimensionStats, "day", day), value, *counts[key]]
        values = ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(chunk))
        sql = (
            f"INSERT INTO {table} (partner_id, dimension, day, value, clicks, unique_clicks) VALUES {values} "
            + _PARTNER_DIMENSION_CONFLICT.format(table=table)
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
