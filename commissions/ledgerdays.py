"""The triggers that keep ``LedgerDay`` equal to the ledger's sums per partner and program day,
and their recomputation (PostgreSQL; SQLite reads the ledger itself).

A row-level INSERT trigger adds each new entry, and statement-level UPDATE and DELETE triggers
with transition tables add one statement's changes, to a row of each (partner, day) they touch.
They never wait for a lock: each adds to a row of that day no other transaction holds (``FOR
UPDATE SKIP LOCKED``), or inserts a new one (no unique key, so an insert never waits either). A day has as many rows as events of one partner ever wrote it at
the same moment, a handful; reads sum them. Waiting here would order this lock against the
daily link rollup's, which the events' two paths take in opposite orders (the one-statement path
before its entry, the ORM path after it): that deadlocked under load. The day is the entry's
``earned_at`` in the program time zone, by ``commissions_ledger_day()``, created with
``settings.TIME_ZONE``: after changing ``PROGRAM_TIME_ZONE`` run ``manage.py rebuild_ledger_days``
(as ``rebuild_rollups`` for the link rollups), which re-creates the function and recomputes every
row.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.db import connection, transaction

from commissions.daytriggers import add_to_free_row, execute_on_postgres, statement_triggers

_LEDGER = "commissions_commissionentry"
_DAYS = "commissions_ledgerday"


def day_function_sql(time_zone: str) -> str:
    quoted = time_zone.replace("'", "''")
    return (
        "CREATE OR REPLACE FUNCTION commissions_ledger_day(at timestamptz) RETURNS date "
        f"LANGUAGE sql IMMUTABLE AS $$ SELECT (at AT TIME ZONE '{quoted}')::date $$"
    )


def _sums(source: str, sign: str = "") -> str:
    """(partner, day) sums of the ledger rows in ``source`` (a transition table)."""
    return (
        "SELECT e.partner_id, commissions_ledger_day(e.earned_at) AS day, "
        f"{sign}COALESCE(SUM(p.amount) FILTER (WHERE e.kind = 'commission'), 0) AS payments, "
        f"{sign}COALESCE(SUM(r.amount) FILTER (WHERE e.kind = 'reversal'), 0) AS refunds, "
        f"{sign}SUM(e.amount) AS commission, {sign}COUNT(*) AS entries "
        f"FROM {source} e "
        "LEFT JOIN commissions_payment p ON p.id = e.payment_id AND e.kind = 'commission' "
        "LEFT JOIN commissions_refund r ON r.id = e.refund_id "
        "GROUP BY 1, 2"
    )


_AMOUNTS = ("payments", "refunds", "commission", "entries")


def _apply(select: str) -> str:
    """A PL/pgSQL block adding ``select``'s (partner, day) sums to rows no one else holds."""
    keys = {"partner_id": "c.partner_id", "day": "c.day"}
    return f"""DECLARE
  c record;
BEGIN
  FOR c IN SELECT partner_id, day, {", ".join(f"SUM({a}) AS {a}" for a in _AMOUNTS)}
           FROM ({select}) AS changed GROUP BY 1, 2 ORDER BY 1, 2 LOOP
    {add_to_free_row(_DAYS, keys, {a: f"c.{a}" for a in _AMOUNTS})}
  END LOOP;
  RETURN NULL;
END"""


# Migration 0009 (its INSERT trigger replaced by 0021's below).
POSTGRES_FORWARD, _STATEMENT_REVERSE = statement_triggers(
    name="commissions_ledger_days", table=_LEDGER, apply=_apply, changes=_sums
)


# Migration 0021: the INSERT trigger as a row-level one. The everyday writer is one event's
# statement inserting one entry (or none: a payment of a stranger, a replay); the statement-level
# trigger ran for every such statement, with a transition table and two GROUP BYs, 51 µs of
# PostgreSQL's CPU a call (pg_stat_user_functions). The row-level one runs once per entry written,
# adds that entry as the statement-level one adds its sums, and never waits either. A bulk load
# (loadbench) turns triggers off and recomputes (``recompute``).
_ROW_KEYS = {"partner_id": "NEW.partner_id", "day": "entry_day"}
_ROW_AMOUNTS = {"payments": "paid", "refunds": "refunded", "commission": "NEW.amount", "entries": "1"}
ROW_INSERT_FORWARD = [
    f"""CREATE OR REPLACE FUNCTION commissions_ledger_days_row_insert() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  entry_day date := commissions_ledger_day(NEW.earned_at);
  paid numeric := 0;
  refunded numeric := 0;
BEGIN
  IF NEW.kind = 'commission' THEN
    SELECT COALESCE(SUM(amount), 0) INTO paid FROM commissions_payment WHERE id = NEW.payment_id;
  ELSIF NEW.kind = 'reversal' THEN
    SELECT COALESCE(SUM(amount), 0) INTO refunded FROM commissions_refund WHERE id = NEW.refund_id;
  END IF;
  {add_to_free_row(_DAYS, _ROW_KEYS, _ROW_AMOUNTS)}
  RETURN NULL;
END $$""",
    f"DROP TRIGGER IF EXISTS commissions_ledger_days_insert ON {_LEDGER}",
    "DROP FUNCTION IF EXISTS commissions_ledger_days_insert()",
    f"CREATE TRIGGER commissions_ledger_days_row_insert AFTER INSERT ON {_LEDGER} FOR EACH ROW "
    "EXECUTE FUNCTION commissions_ledger_days_row_insert()",
]
ROW_INSERT_REVERSE = [
    f"DROP TRIGGER IF EXISTS commissions_ledger_days_row_insert ON {_LEDGER}",
    "DROP FUNCTION IF EXISTS commissions_ledger_days_row_insert()",
]
# 0021 backwards: the statement-level INSERT function and trigger (those of POSTGRES_FORWARD).
STATEMENT_INSERT_FORWARD, _ = statement_triggers(
    name="commissions_ledger_days", table=_LEDGER, apply=_apply, changes=_sums, ops=("insert",)
)
# Migration 0009 backwards: whichever INSERT trigger is there, and the rest.
POSTGRES_REVERSE = [
    *ROW_INSERT_REVERSE,
    *_STATEMENT_REVERSE,
    "DROP FUNCTION IF EXISTS commissions_ledger_day(timestamptz)",
]


def kept() -> bool:
    """Whether ``LedgerDay`` is kept on this database (PostgreSQL)."""
    return connection.vendor == "postgresql"


def recompute_sql(*, partner_filter: bool) -> list[str]:
    """Statements that replace the rows (all, or one set of partners: one ``%s`` array
    parameter each) with the ledger's sums."""
    where = "WHERE partner_id = ANY(%s)" if partner_filter else ""
    where_e = "WHERE e.partner_id = ANY(%s)" if partner_filter else ""
    # The trigger's sums, over the whole ledger (or these partners' part of it): one row a day.
    select = (
        "SELECT e.partner_id, commissions_ledger_day(e.earned_at), "
        "COALESCE(SUM(p.amount) FILTER (WHERE e.kind = 'commission'), 0), "
        "COALESCE(SUM(r.amount) FILTER (WHERE e.kind = 'reversal'), 0), SUM(e.amount), COUNT(*) "
        f"FROM {_LEDGER} e "
        "LEFT JOIN commissions_payment p ON p.id = e.payment_id AND e.kind = 'commission' "
        f"LEFT JOIN commissions_refund r ON r.id = e.refund_id {where_e} GROUP BY 1, 2"
    )
    return [
        f"DELETE FROM {_DAYS} {where}",
        f"INSERT INTO {_DAYS} (partner_id, day, payments, refunds, commission, entries) {select}",
    ]


def recompute(*, partner_ids: Iterable[int] | None = None) -> None:
    """Recompute the rows of these partners (or all) from the ledger, with the day function
    re-created for the current ``settings.TIME_ZONE``. PostgreSQL only (no-op elsewhere)."""
    if not kept():
        return
    ids = None if partner_ids is None else list(partner_ids)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(day_function_sql(settings.TIME_ZONE))
        for sql in recompute_sql(partner_filter=ids is not None):
            cursor.execute(sql, [ids] if ids is not None else None)


def install(schema_editor) -> None:
    execute_on_postgres(
        schema_editor, [day_function_sql(settings.TIME_ZONE)], POSTGRES_FORWARD, recompute_sql(partner_filter=False)
    )


def uninstall(schema_editor) -> None:
    execute_on_postgres(schema_editor, POSTGRES_REVERSE)


def use_row_insert_trigger(schema_editor) -> None:
    """Migration 0021: the statement-level INSERT trigger replaced by the row-level one."""
    execute_on_postgres(schema_editor, ROW_INSERT_FORWARD)


def use_statement_insert_trigger(schema_editor) -> None:
    """Migration 0021 backwards."""
    execute_on_postgres(schema_editor, ROW_INSERT_REVERSE, STATEMENT_INSERT_FORWARD)
