"""The triggers that keep ``ReferralDay`` equal to the referrals' counts per partner, link,
program day of sign-up and stored status, and ``ReferralCount`` equal to their counts per partner
and stored status, and their recomputation (PostgreSQL; SQLite counts the referrals themselves).

The same design as ``commissions/ledgerdays.py`` (never waiting for a lock: each change adds to
a row of that key nobody else holds, or inserts another; reads sum them): one row-level INSERT
trigger for both tables, statement-level DELETE triggers with transition tables, and for UPDATE
a row-level trigger that runs only when a counted column changes. Every path that writes a
referral (the events API's two paths, the Stripe connector, the expiry task, staff edits,
deletes, a move to another partner) goes through INSERT, UPDATE or DELETE on the table, so the
counts stay exact whatever wrote them. The
day is ``commissions_ledger_day(signed_up_at)``, the function ``ledgerdays`` keeps for the
program time zone (``rebuild_ledger_days`` recomputes these rows too).
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connection, transaction

from commissions.daytriggers import add_to_free_row, execute_on_postgres, statement_triggers

_REFERRALS = "commissions_referral"
_DAYS = "commissions_referralday"
_COUNTS = "commissions_referralcount"


def _counts(source: str, sign: str = "") -> str:
    return (
        "SELECT partner_id, link_id, commissions_ledger_day(signed_up_at) AS day, status, "
        f"{sign}COUNT(*) AS referrals FROM {source} GROUP BY 1, 2, 3, 4"
    )


def _applier(table: str, keys: tuple[str, ...]):
    """A PL/pgSQL block adding a select's counts to ``table``'s rows of each key: to a row of that
    key no other transaction holds (``FOR UPDATE SKIP LOCKED``), else to a new one."""
    columns, numbered = ", ".join(keys), ", ".join(str(n) for n in range(1, len(keys) + 1))
    add = add_to_free_row(table, {key: f"c.{key}" for key in keys}, {"referrals": "c.referrals"})

    def apply(select: str) -> str:
        return f"""DECLARE
  c record;
BEGIN
  FOR c IN SELECT {columns}, SUM(referrals) AS referrals
           FROM ({select}) AS changed GROUP BY {numbered} ORDER BY {numbered} LOOP
    CONTINUE WHEN c.referrals = 0;
    {add}
  END LOOP;
  RETURN NULL;
END"""

    return apply


def _row_update_trigger(name: str, apply, change: str, counted: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """(forward, reverse) SQL of ``<name>_row_update``: a row-level trigger running ``apply`` over
    ``change`` (the new row added, the old one taken off), only when a ``counted`` column changed."""
    function = f"{name}_row_update"
    forward = [
        f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$\n{apply(change)} $$",
        f"DROP TRIGGER IF EXISTS {function} ON {_REFERRALS}",
        f"CREATE TRIGGER {function} AFTER UPDATE OF {', '.join(counted)} ON {_REFERRALS} "
        f"FOR EACH ROW WHEN ({' OR '.join(f'OLD.{c} IS DISTINCT FROM NEW.{c}' for c in counted)}) "
        f"EXECUTE FUNCTION {function}()",
    ]
    reverse = [f"DROP TRIGGER IF EXISTS {function} ON {_REFERRALS}", f"DROP FUNCTION IF EXISTS {function}()"]
    return forward, reverse


_apply = _applier(_DAYS, ("partner_id", "link_id", "day", "status"))


# Inserts and deletes: statement-level triggers with transition tables. Updates: a row-level
# trigger that PostgreSQL runs only when a counted column changed (its WHEN clause is evaluated
# without calling the function). Every payment updates its referral's totals; a statement
# trigger on every UPDATE cost each merchant event ~0.1 ms of PostgreSQL CPU (BENCHMARKS.md).
_STATEMENT_FORWARD, _STATEMENT_REVERSE = statement_triggers(
    name="commissions_referral_days", table=_REFERRALS, apply=_apply, changes=_counts, ops=("insert", "delete")
)
_COUNTED = ("partner_id", "link_id", "signed_up_at", "status")
_ROW_CHANGE = (
    "SELECT NEW.partner_id AS partner_id, NEW.link_id AS link_id, commissions_ledger_day(NEW.signed_up_at) AS day, "
    "NEW.status AS status, 1 AS referrals UNION ALL SELECT OLD.partner_id, OLD.link_id, "
    "commissions_ledger_day(OLD.signed_up_at), OLD.status, -1"
)
ROW_UPDATE_FORWARD, ROW_UPDATE_REVERSE = _row_update_trigger("commissions_referral_days", _apply, _ROW_CHANGE, _COUNTED)
# The statement-level UPDATE trigger of the first design (migration 0014 before 0016).
STATEMENT_UPDATE_REVERSE = [
    f"DROP TRIGGER IF EXISTS commissions_referral_days_update ON {_REFERRALS}",
    "DROP FUNCTION IF EXISTS commissions_referral_days_update()",
]
POSTGRES_FORWARD = _STATEMENT_FORWARD + ROW_UPDATE_FORWARD


# ReferralCount: the same design, keyed by (partner, status) alone.
def _status_counts(source: str, sign: str = "") -> str:
    return f"SELECT partner_id, status, {sign}COUNT(*) AS referrals FROM {source} GROUP BY 1, 2"


_apply_counts = _applier(_COUNTS, ("partner_id", "status"))


_COUNTS_STATEMENT_FORWARD, _COUNTS_STATEMENT_REVERSE = statement_triggers(
    name="commissions_referral_counts",
    table=_REFERRALS,
    apply=_apply_counts,
    changes=_status_counts,
    ops=("insert", "delete"),
)
_COUNTED_BY_STATUS = ("partner_id", "status")
_COUNTS_ROW_CHANGE = (
    "SELECT NEW.partner_id AS partner_id, NEW.status AS status, 1 AS referrals "
    "UNION ALL SELECT OLD.partner_id, OLD.status, -1"
)
_COUNTS_ROW_FORWARD, _COUNTS_ROW_REVERSE = _row_update_trigger(
    "commissions_referral_counts", _apply_counts, _COUNTS_ROW_CHANGE, _COUNTED_BY_STATUS
)
COUNTS_FORWARD = _COUNTS_STATEMENT_FORWARD + _COUNTS_ROW_FORWARD


# Migration 0021: one row-level INSERT trigger for both tables instead of the two statement-level
# ones. The everyday writer is one sign-up's statement inserting one referral (or none: a click
# outside the window, a replay); the two statement-level triggers ran for every such statement,
# with a transition table and two GROUP BYs each, 47 + 41 µs of PostgreSQL's CPU a sign-up
# (pg_stat_user_functions). The row-level one adds the new referral to a row of its (partner,
# link, day, status) and of its (partner, status), as those add their counts, never waiting
# either. A bulk load (loadbench) turns triggers off and recomputes (``recompute``).
_NEW_KEYS = {"partner_id": "NEW.partner_id", "status": "NEW.status"}
_ONE = {"referrals": "1"}
ROW_INSERT_FORWARD = [
    f"""CREATE OR REPLACE FUNCTION commissions_referral_rollups_row_insert() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  signed_up_day date := commissions_ledger_day(NEW.signed_up_at);
BEGIN
  {add_to_free_row(_DAYS, {**_NEW_KEYS, "link_id": "NEW.link_id", "day": "signed_up_day"}, _ONE)}
  {add_to_free_row(_COUNTS, _NEW_KEYS, _ONE)}
  RETURN NULL;
END $$""",
    f"DROP TRIGGER IF EXISTS commissions_referral_days_insert ON {_REFERRALS}",
    f"DROP TRIGGER IF EXISTS commissions_referral_counts_insert ON {_REFERRALS}",
    "DROP FUNCTION IF EXISTS commissions_referral_days_insert()",
    "DROP FUNCTION IF EXISTS commissions_referral_counts_insert()",
    f"CREATE TRIGGER commissions_referral_rollups_row_insert AFTER INSERT ON {_REFERRALS} FOR EACH ROW "
    "EXECUTE FUNCTION commissions_referral_rollups_row_insert()",
]
ROW_INSERT_REVERSE = [
    f"DROP TRIGGER IF EXISTS commissions_referral_rollups_row_insert ON {_REFERRALS}",
    "DROP FUNCTION IF EXISTS commissions_referral_rollups_row_insert()",
]
# 0021 backwards: the two statement-level INSERT functions and triggers (of 0014 and 0017).
STATEMENT_INSERT_FORWARD = (
    statement_triggers(
        name="commissions_referral_days", table=_REFERRALS, apply=_apply, changes=_counts, ops=("insert",)
    )[0]
    + statement_triggers(
        name="commissions_referral_counts",
        table=_REFERRALS,
        apply=_apply_counts,
        changes=_status_counts,
        ops=("insert",),
    )[0]
)
# Unwinding 0014 or 0017 drops the row-level trigger too (0021 backwards put the statement-level
# ones back first; this only makes either safe on its own).
POSTGRES_REVERSE = ROW_INSERT_REVERSE + _STATEMENT_REVERSE + ROW_UPDATE_REVERSE + STATEMENT_UPDATE_REVERSE
COUNTS_REVERSE = ROW_INSERT_REVERSE + _COUNTS_STATEMENT_REVERSE + _COUNTS_ROW_REVERSE


def kept() -> bool:
    return connection.vendor == "postgresql"


def days_recompute_sql(*, partner_filter: bool) -> list[str]:
    where = "WHERE partner_id = ANY(%s)" if partner_filter else ""
    return [
        f"DELETE FROM {_DAYS} {where}",
        f"INSERT INTO {_DAYS} (partner_id, link_id, day, status, referrals) "
        f"SELECT partner_id, link_id, commissions_ledger_day(signed_up_at), status, COUNT(*) FROM {_REFERRALS} "
        f"{where} GROUP BY 1, 2, 3, 4",
    ]


def recompute_sql(*, partner_filter: bool) -> list[str]:
    """Both tables' rows from the referrals (``manage.py rebuild_ledger_days``, ``loadbench``)."""
    return days_recompute_sql(partner_filter=partner_filter) + counts_recompute_sql(partner_filter=partner_filter)


def counts_recompute_sql(*, partner_filter: bool) -> list[str]:
    where = "WHERE partner_id = ANY(%s)" if partner_filter else ""
    return [
        f"DELETE FROM {_COUNTS} {where}",
        f"INSERT INTO {_COUNTS} (partner_id, status, referrals) "
        f"SELECT partner_id, status, COUNT(*) FROM {_REFERRALS} {where} GROUP BY 1, 2",
    ]


def recompute(*, partner_ids: Iterable[int] | None = None) -> None:
    """Recompute the rows of these partners (or all) from the referrals. PostgreSQL only."""
    if not kept():
        return
    ids = None if partner_ids is None else list(partner_ids)
    with transaction.atomic(), connection.cursor() as cursor:
        for sql in recompute_sql(partner_filter=ids is not None):
            cursor.execute(sql, [ids] if ids is not None else None)


def install(schema_editor) -> None:
    # Migration 0014: ReferralDay only (ReferralCount comes with 0017).
    execute_on_postgres(schema_editor, POSTGRES_FORWARD, days_recompute_sql(partner_filter=False))


def uninstall(schema_editor) -> None:
    execute_on_postgres(schema_editor, POSTGRES_REVERSE)


def install_counts(schema_editor) -> None:
    """Migration 0017: ``ReferralCount``'s triggers, and the counts of the referrals already there."""
    execute_on_postgres(schema_editor, COUNTS_FORWARD, counts_recompute_sql(partner_filter=False))


def uninstall_counts(schema_editor) -> None:
    execute_on_postgres(schema_editor, COUNTS_REVERSE)


def use_row_update_trigger(schema_editor) -> None:
    """Migration 0016: the statement-level UPDATE trigger replaced by the row-level one."""
    execute_on_postgres(schema_editor, STATEMENT_UPDATE_REVERSE, ROW_UPDATE_FORWARD)


def use_row_insert_trigger(schema_editor) -> None:
    """Migration 0021: the two statement-level INSERT triggers replaced by one row-level one."""
    execute_on_postgres(schema_editor, ROW_INSERT_FORWARD)


def use_statement_insert_triggers(schema_editor) -> None:
    """Migration 0021 backwards."""
    execute_on_postgres(schema_editor, ROW_INSERT_REVERSE, STATEMENT_INSERT_FORWARD)
