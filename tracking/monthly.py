"""The triggers that keep ``LinkMonthlyStats`` equal to the monthly sums of ``DailyLinkStats``,
and its recomputation. SQL for PostgreSQL and SQLite, used by migration 0003.

PostgreSQL: statement-level triggers with transition tables, so one statement's rows (a click
consumer batch, a rebuild chunk) move each month row once, after the statement has taken all
its (link, day) rows and in (link, month) order. Every writer takes its (link, day) rows in
link order, so the month rows cannot close a lock cycle. SQLite (one writer at a time):
row-level triggers.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from tracking.models import ROLLUP_COUNTERS

_DAILY = "tracking_dailylinkstats"
_MONTHLY = "tracking_linkmonthlystats"
_COUNTERS = ROLLUP_COUNTERS

_ADD = ", ".join(f"{c} = m.{c} + excluded.{c}" for c in _COUNTERS)
_SUMS = ", ".join(f"SUM({c})" for c in _COUNTERS)
_COLUMNS = f"link_id, partner_id, month, {', '.join(_COUNTERS)}"


def _pg_upsert(source: str) -> str:
    return (
        f"INSERT INTO {_MONTHLY} AS m ({_COLUMNS}) "
        f"SELECT link_id, partner_id, date_trunc('month', day)::date, {_SUMS} FROM {source} "
        "GROUP BY link_id, partner_id, date_trunc('month', day) ORDER BY link_id, date_trunc('month', day) "
        f"ON CONFLICT (link_id, month) DO UPDATE SET {_ADD}"
    )


_NEGATED = ", ".join(f"-{c}" for c in _COUNTERS)
_PLAIN = ", ".join(_COUNTERS)
_SUBTRACT = ", ".join(f"{c} = m.{c} - d.{c}" for c in _COUNTERS)

POSTGRES_FORWARD = [
    f"""CREATE FUNCTION tracking_monthly_after_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  {_pg_upsert("new_rows")};
  RETURN NULL;
END $$""",
    f"""CREATE FUNCTION tracking_monthly_after_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  {
        _pg_upsert(
            f"(SELECT link_id, partner_id, day, {_PLAIN} FROM new_rows "
            f"UNION ALL SELECT link_id, partner_id, day, {_NEGATED} FROM old_rows) AS changed"
        )
    };
  RETURN NULL;
END $$""",
    # Only existing month rows are changed: a delete comes from a link or partner being
    # deleted (their month rows go too) or from a repair, never creates a month.
    f"""CREATE FUNCTION tracking_monthly_after_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE {_MONTHLY} AS m SET {_SUBTRACT}
  FROM (SELECT link_id, date_trunc('month', day)::date AS month, {", ".join(f"SUM({c}) AS {c}" for c in _COUNTERS)}
        FROM old_rows GROUP BY link_id, date_trunc('month', day)) AS d
  WHERE m.link_id = d.link_id AND m.month = d.month;
  RETURN NULL;
END $$""",
    f"CREATE TRIGGER tracking_monthly_insert AFTER INSERT ON {_DAILY} REFERENCING NEW TABLE AS new_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION tracking_monthly_after_insert()",
    f"CREATE TRIGGER tracking_monthly_update AFTER UPDATE ON {_DAILY} REFERENCING OLD TABLE AS old_rows "
    "NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION tracking_monthly_after_update()",
    f"CREATE TRIGGER tracking_monthly_delete AFTER DELETE ON {_DAILY} REFERENCING OLD TABLE AS old_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION tracking_monthly_after_delete()",
]
POSTGRES_REVERSE = [
    f"DROP TRIGGER IF EXISTS tracking_monthly_insert ON {_DAILY}",
    f"DROP TRIGGER IF EXISTS tracking_monthly_update ON {_DAILY}",
    f"DROP TRIGGER IF EXISTS tracking_monthly_delete ON {_DAILY}",
    "DROP FUNCTION IF EXISTS tracking_monthly_after_insert()",
    "DROP FUNCTION IF EXISTS tracking_monthly_after_update()",
    "DROP FUNCTION IF EXISTS tracking_monthly_after_delete()",
]

_SQLITE_MONTH = "substr({row}.day, 1, 8) || '01'"


def _sqlite_upsert(row: str, sign: str = "") -> str:
    values = ", ".join(f"{sign}{row}.{c}" for c in _COUNTERS)
    add = ", ".join(f"{c} = {c} + excluded.{c}" for c in _COUNTERS)  # SQLite: no alias in a trigger
    return (
        f"INSERT INTO {_MONTHLY} ({_COLUMNS}) VALUES ({row}.link_id, {row}.partner_id, "
        f"{_SQLITE_MONTH.format(row=row)}, {values}) ON CONFLICT (link_id, month) DO UPDATE SET {add};"
    )


_SQLITE_SUBTRACT_OLD = (
    f"UPDATE {_MONTHLY} SET "
    + ", ".join(f"{c} = {c} - old.{c}" for c in _COUNTERS)
    + f" WHERE link_id = old.link_id AND month = {_SQLITE_MONTH.format(row='old')};"
)

SQLITE_FORWARD = [
    f"CREATE TRIGGER tracking_monthly_insert AFTER INSERT ON {_DAILY} BEGIN {_sqlite_upsert('new')} END",
    f"CREATE TRIGGER tracking_monthly_update AFTER UPDATE ON {_DAILY} BEGIN "
    f"{_sqlite_upsert('new')} {_sqlite_upsert('old', '-')} END",
    f"CREATE TRIGGER tracking_monthly_delete AFTER DELETE ON {_DAILY} BEGIN {_SQLITE_SUBTRACT_OLD} END",
]
SQLITE_REVERSE = [
    "DROP TRIGGER IF EXISTS tracking_monthly_insert",
    "DROP TRIGGER IF EXISTS tracking_monthly_update",
    "DROP TRIGGER IF EXISTS tracking_monthly_delete",
]


def recompute_sql(vendor: str, *, partner_filter: bool) -> list[str]:
    """Statements that replace the month rows (all, or one partner's: one ``%s`` parameter
    each) with the sums of the daily rows."""
    month = "date_trunc('month', day)::date" if vendor == "postgresql" else _SQLITE_MONTH.format(row=_DAILY)
    where = "WHERE partner_id = %s" if partner_filter else ""
    return [
        f"DELETE FROM {_MONTHLY} {where}",
        f"INSERT INTO {_MONTHLY} ({_COLUMNS}) SELECT link_id, partner_id, {month}, {_SUMS} FROM {_DAILY} {where} "
        f"GROUP BY link_id, partner_id, {month}",
    ]


def install(schema_editor) -> None:
    vendor = schema_editor.connection.vendor
    statements = {"postgresql": POSTGRES_FORWARD, "sqlite": SQLITE_FORWARD}.get(vendor)
    if statements is None:
        # DATABASE_URL accepts PostgreSQL (production) and SQLite (demo, tests) only.
        raise ImproperlyConfigured(f"Partner Panel runs on PostgreSQL or SQLite, not {vendor}.")
    for sql in statements:
        schema_editor.execute(sql, params=None)
    for sql in recompute_sql(vendor, partner_filter=False):
        schema_editor.execute(sql, params=None)


def uninstall(schema_editor) -> None:
    vendor = schema_editor.connection.vendor
    for sql in {"postgresql": POSTGRES_REVERSE, "sqlite": SQLITE_REVERSE}.get(vendor, []):
        schema_editor.execute(sql, params=None)
