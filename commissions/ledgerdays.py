"""The triggers that keep ``LedgerDay`` equal to the ledger's sums per partner and program day,
and their recomputation (PostgreSQL; SQLite reads the ledger itself).

Statement-level triggers with transition tables: one statement's entries move each
(partner, day, stripe) row once, in key order, so two writers cannot deadlock on them. The day
is the entry's ``earned_at`` in the program time zone, by ``commissions_ledger_day()``, which is
created with ``settings.TIME_ZONE``: after changing ``PROGRAM_TIME_ZONE`` run
``manage.py rebuild_ledger_days`` (as ``rebuild_rollups`` for the link rollups), which re-creates
the function and recomputes every row.

Lock order, known limit: the events' one-statement path (fastpath.py) takes its daily link rollup
row before this trigger takes the (partner, day, stripe) row, the ORM path (services.py) inserts
the entry (this row) before its rollup row. A refund (ORM path) and a payment (one statement) of
the same partner, link and day whose entries fall on the same stripe, at the same moment, can
deadlock; PostgreSQL aborts one and the merchant's retry applies it (events are idempotent).
"""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.db import connection, transaction

from commissions.models import LedgerDay

_LEDGER = "commissions_commissionentry"
_DAYS = "commissions_ledgerday"
_STRIPES = LedgerDay.STRIPES


def day_function_sql(time_zone: str) -> str:
    quoted = time_zone.replace("'", "''")
    return (
        "CREATE OR REPLACE FUNCTION commissions_ledger_day(at timestamptz) RETURNS date "
        f"LANGUAGE sql IMMUTABLE AS $$ SELECT (at AT TIME ZONE '{quoted}')::date $$"
    )


def _sums(source: str, sign: str = "") -> str:
    """(partner, day, stripe) sums of the ledger rows in ``source`` (a transition table)."""
    return (
        f"SELECT e.partner_id, commissions_ledger_day(e.earned_at) AS day, mod(e.id, {_STRIPES}) AS stripe, "
        f"{sign}COALESCE(SUM(p.amount) FILTER (WHERE e.kind = 'commission'), 0) AS payments, "
        f"{sign}COALESCE(SUM(r.amount) FILTER (WHERE e.kind = 'reversal'), 0) AS refunds, "
        f"{sign}SUM(e.amount) AS commission, {sign}COUNT(*) AS entries "
        f"FROM {source} e "
        "LEFT JOIN commissions_payment p ON p.id = e.payment_id AND e.kind = 'commission' "
        "LEFT JOIN commissions_refund r ON r.id = e.refund_id "
        "GROUP BY 1, 2, 3"
    )


def _upsert(select: str) -> str:
    return (
        f"INSERT INTO {_DAYS} AS d (partner_id, day, stripe, payments, refunds, commission, entries) "
        f"SELECT partner_id, day, stripe, SUM(payments), SUM(refunds), SUM(commission), SUM(entries) "
        f"FROM ({select}) AS changed GROUP BY 1, 2, 3 ORDER BY 1, 2, 3 "
        "ON CONFLICT (partner_id, day, stripe) DO UPDATE SET payments = d.payments + excluded.payments, "
        "refunds = d.refunds + excluded.refunds, commission = d.commission + excluded.commission, "
        "entries = d.entries + excluded.entries"
    )


POSTGRES_FORWARD = [
    f"""CREATE FUNCTION commissions_ledger_days_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  {_upsert(_sums("new_rows"))};
  RETURN NULL;
END $$""",
    f"""CREATE FUNCTION commissions_ledger_days_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  {_upsert(_sums("new_rows") + " UNION ALL " + _sums("old_rows", "-"))};
  RETURN NULL;
END $$""",
    f"""CREATE FUNCTION commissions_ledger_days_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  {_upsert(_sums("old_rows", "-"))};
  RETURN NULL;
END $$""",
    f"CREATE TRIGGER commissions_ledger_days_insert AFTER INSERT ON {_LEDGER} REFERENCING NEW TABLE AS new_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION commissions_ledger_days_insert()",
    f"CREATE TRIGGER commissions_ledger_days_update AFTER UPDATE ON {_LEDGER} REFERENCING OLD TABLE AS old_rows "
    "NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION commissions_ledger_days_update()",
    f"CREATE TRIGGER commissions_ledger_days_delete AFTER DELETE ON {_LEDGER} REFERENCING OLD TABLE AS old_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION commissions_ledger_days_delete()",
]
POSTGRES_REVERSE = [
    f"DROP TRIGGER IF EXISTS commissions_ledger_days_insert ON {_LEDGER}",
    f"DROP TRIGGER IF EXISTS commissions_ledger_days_update ON {_LEDGER}",
    f"DROP TRIGGER IF EXISTS commissions_ledger_days_delete ON {_LEDGER}",
    "DROP FUNCTION IF EXISTS commissions_ledger_days_insert()",
    "DROP FUNCTION IF EXISTS commissions_ledger_days_update()",
    "DROP FUNCTION IF EXISTS commissions_ledger_days_delete()",
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
    # The trigger's sums, over the whole ledger (or these partners' part of it).
    select = (
        f"SELECT e.partner_id, commissions_ledger_day(e.earned_at), mod(e.id, {_STRIPES}), "
        "COALESCE(SUM(p.amount) FILTER (WHERE e.kind = 'commission'), 0), "
        "COALESCE(SUM(r.amount) FILTER (WHERE e.kind = 'reversal'), 0), SUM(e.amount), COUNT(*) "
        f"FROM {_LEDGER} e "
        "LEFT JOIN commissions_payment p ON p.id = e.payment_id AND e.kind = 'commission' "
        f"LEFT JOIN commissions_refund r ON r.id = e.refund_id {where_e} GROUP BY 1, 2, 3"
    )
    return [
        f"DELETE FROM {_DAYS} {where}",
        f"INSERT INTO {_DAYS} (partner_id, day, stripe, payments, refunds, commission, entries) {select}",
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
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(day_function_sql(settings.TIME_ZONE), params=None)
    for sql in POSTGRES_FORWARD:
        schema_editor.execute(sql, params=None)
    for sql in recompute_sql(partner_filter=False):
        schema_editor.execute(sql, params=None)


def uninstall(schema_editor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    for sql in POSTGRES_REVERSE:
        schema_editor.execute(sql, params=None)
