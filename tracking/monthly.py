"""The triggers that keep ``LinkMonthlyStats`` equal to the monthly sums of ``DailyLinkStats``,
and its recomputation. SQL for PostgreSQL and SQLite, used by migration 0003.

PostgreSQL: row-level AFTER triggers for INSERT and UPDATE (migration 0008), a statement-level
one with a transition table for DELETE. An AFTER row trigger runs when its statement has taken all
its (link, day) rows, in the order the statement wrote them; every writer takes its (link, day)
rows in link order, so the month rows are taken in that order too and cannot close a lock cycle.
Row-level, because the everyday writer is one event's upsert of one (link, day) row: statement-
level INSERT and UPDATE triggers both fired for every such upsert, even the one with no rows,
and the two cost about 0.1 ms of PostgreSQL's CPU per event (a tenth of it); the row trigger runs
once, for the row the upsert wrote, and only if it changed. (Migration 0003 installed the
statement-level ones, ``POSTGRES_FORWARD``; 0008 replaces them.) SQLite (one writer at a time):
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
# Migration 0008: the INSERT and UPDATE triggers as row-level ones.
_DELTA = ", ".join(f"NEW.{c} - OLD.{c}" for c in _COUNTERS)
_NEW = ", ".join(f"NEW.{c}" for c in _COUNTERS)
_OLD_SUBTRACTED = ", ".join(f"{c} = {c} - OLD.{c}" for c in _COUNTERS)
_MONTH_OF = "date_trunc('month', {row}.day)::date"


def _row_upsert(values: str) -> str:
    return (
        f"INSERT INTO {_MONTHLY} AS m ({_COLUMNS}) VALUES (NEW.link_id, NEW.partner_id, "
        f"{_MONTH_OF.format(row='NEW')}, {values}) ON CONFLICT (link_id, month) DO UPDATE SET {_ADD}"
    )


ROW_FORWARD = [
    f"""CREATE FUNCTION tracking_monthly_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' THEN
    IF OLD.link_id = NEW.link_id AND {_MONTH_OF.format(row="OLD")} = {_MONTH_OF.format(row="NEW")} THEN
      {_row_upsert(_DELTA)};
      RETURN NULL;
    END IF;
    -- Moved to another link or month: out of the old month row, into the new one.
    UPDATE {_MONTHLY} SET {_OLD_SUBTRACTED} WHERE link_id = OLD.link_id AND month = {_MONTH_OF.format(row="OLD")};
  END IF;
  {_row_upsert(_NEW)};
  RETURN NULL;
END $$""",
    f"CREATE TRIGGER tracking_monthly_insert AFTER INSERT ON {_DAILY} FOR EACH ROW "
    "EXECUTE FUNCTION tracking_monthly_row()",
    f"CREATE TRIGGER tracking_monthly_update AFTER UPDATE ON {_DAILY} FOR EACH ROW "
    "WHEN (OLD.* IS DISTINCT FROM NEW.*) EXECUTE FUNCTION tracking_monthly_row()",
]
_STATEMENT_INSERT_UPDATE_REVERSE = [
    f"DROP TRIGGER IF EXISTS tracking_monthly_insert ON {_DAILY}",
    f"DROP TRIGGER IF EXISTS tracking_monthly_update ON {_DAILY}",
    "DROP FUNCTION IF EXISTS tracking_monthly_after_insert()",
    "DROP FUNCTION IF EXISTS tracking_monthly_after_update()",
]


def use_row_triggers(schema_editor) -> None:
    """Migration 0008 (PostgreSQL): the statement-level INSERT and UPDATE triggers replaced by
    row-level ones."""
    if schema_editor.connection.vendor != "postgresql":
        return
    for sql in _STATEMENT_INSERT_UPDATE_REVERSE + ROW_FORWARD:
        schema_editor.execute(sql, params=None)


def use_statement_triggers(schema_editor) -> None:
    """Migration 0008 backwards."""
    if schema_editor.connection.vendor != "postgresql":
        return
    statements = [
        f"DROP TRIGGER IF EXISTS tracking_monthly_insert ON {_DAILY}",
        f"DROP TRIGGER IF EXISTS tracking_monthly_update ON {_DAILY}",
        "DROP FUNCTION IF EXISTS tracking_monthly_row()",
    ]
    statements += [POSTGRES_FORWARD[i] for i in (0, 1, 3, 4)]  # the INSERT and UPDATE functions and triggers
    for sql in statements:
        schema_editor.execute(sql, params=None)


POSTGRES_REVERSE = [
    f"DROP TRIGGER IF EXISTS tracking_monthly_insert ON {_DAILY}",
    f"DROP TRIGGER IF EXISTS tracking_monthly_update ON {_DAILY}",
    f"DROP TRIGGER IF EXISTS tracking_monthly_delete ON {_DAILY}",
    "DROP FUNCTION IF EXISTS tracking_monthly_after_insert()",
    "DROP FUNCTION IF EXISTS tracking_monthly_after_update()",
    "DROP FUNCTION IF EXISTS tracking_monthly_after_delete()",
    "DROP FUNCTION IF EXISTS tracking_monthly_row()",
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


def recompute_sql(vendor: str, *, partner_filter: bool, many: bool = False) -> list[str]:
    """Statements that replace the month rows (all, or one partner's: one ``%s`` parameter
    each; with ``many``, on PostgreSQL, several partners' as one array parameter) with the sums
    of the daily rows."""
    month = "date_trunc('month', day)::date" if vendor == "postgresql" else _SQLITE_MONTH.format(row=_DAILY)
    where = ("WHERE partner_id = ANY(%s)" if many else "WHERE partner_id = %s") if partner_filter else ""
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


def recompute(partner_ids: list[int]) -> None:
    """Replace these partners' month rows with the sums of their daily rows (PostgreSQL): for a
    loader that wrote the daily rows with the triggers off (``session_replication_role``)."""
    from django.db import connection

    with connection.cursor() as cursor:
        for sql in recompute_sql("postgresql", partner_filter=True, many=True):
            cursor.execute(sql, [list(partner_ids)])
