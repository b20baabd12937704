"""Statement-level triggers that keep a daily rollup table equal to its source table
(``commissions/ledgerdays.py`` for the ledger, ``commissions/referraldays.py`` for the referrals):
one PL/pgSQL function and one ``AFTER … FOR EACH STATEMENT`` trigger with transition tables for
each of INSERT, UPDATE and DELETE. PostgreSQL only."""

from __future__ import annotations

from collections.abc import Callable

# The transition tables each operation's trigger sees.
_TABLES = {
    "insert": "REFERENCING NEW TABLE AS new_rows",
    "update": "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows",
    "delete": "REFERENCING OLD TABLE AS old_rows",
}


def statement_triggers(
    *,
    name: str,
    table: str,
    apply: Callable[[str], str],
    changes: Callable[..., str],
    ops: tuple[str, ...] = ("insert", "update", "delete"),
) -> tuple[list[str], list[str]]:
    """(forward, reverse) SQL: functions ``<name>_insert|update|delete`` (those of ``ops``)
    running ``apply`` over ``changes(rows, sign)`` (the new rows added, the old ones subtracted)
    and their triggers on ``table``; reverse drops them."""
    bodies = {
        "insert": changes("new_rows"),
        "update": changes("new_rows") + " UNION ALL " + changes("old_rows", "-"),
        "delete": changes("old_rows", "-"),
    }
    bodies = {op: body for op, body in bodies.items() if op in ops}
    forward = [
        f"CREATE FUNCTION {name}_{op}() RETURNS trigger LANGUAGE plpgsql AS $$\n{apply(body)} $$"
        for op, body in bodies.items()
    ]
    forward += [
        f"CREATE TRIGGER {name}_{op} AFTER {op.upper()} ON {table} {_TABLES[op]} "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {name}_{op}()"
        for op in bodies
    ]
    reverse = [f"DROP TRIGGER IF EXISTS {name}_{op} ON {table}" for op in bodies]
    reverse += [f"DROP FUNCTION IF EXISTS {name}_{op}()" for op in bodies]
    return forward, reverse


def add_to_free_row(table: str, keys: dict[str, str], amounts: dict[str, str]) -> str:
    """PL/pgSQL adding ``amounts`` (column: SQL expression) to a row of ``table`` with these
    ``keys`` (column: SQL expression) that no other transaction holds (``FOR UPDATE SKIP
    LOCKED``), or else inserting a new row: it never waits for a lock (the rollups' design)."""
    matches = " AND ".join(f"{column} = {value}" for column, value in keys.items())
    sums = ", ".join(f"{column} = {column} + {value}" for column, value in amounts.items())
    columns = ", ".join([*keys, *amounts])
    values = ", ".join([*keys.values(), *amounts.values()])
    return f"""UPDATE {table} SET {sums}
    WHERE id = (SELECT id FROM {table} WHERE {matches} LIMIT 1 FOR UPDATE SKIP LOCKED);
    IF NOT FOUND THEN
      INSERT INTO {table} ({columns}) VALUES ({values});
    END IF;"""


def execute_on_postgres(schema_editor, *batches: list[str]) -> None:
    """Run each batch of statements in order, on PostgreSQL only (a migration's trigger DDL)."""
    if schema_editor.connection.vendor != "postgresql":
        return
    for batch in batches:
        for sql in batch:
            schema_editor.execute(sql, params=None)
