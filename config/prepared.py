"""PostgreSQL prepared statements for the hottest fixed queries (the events API's).

A statement is written with ``%(name)s`` parameters and a PostgreSQL type for each. psycopg
prepares it on the server (the extended protocol's Parse, named by psycopg) the first time a
connection runs it, and afterwards sends only the values (Bind and Execute): PostgreSQL does not
parse and plan it again for every event (for the events' CTEs, parsing and planning cost more
than running them), and the values travel as parameters, neither quoted into the text by Django
nor parsed back by PostgreSQL. Against SQL ``PREPARE`` and an ``EXECUTE`` with quoted values
(before 2026-12-06), that saved about 10 µs of the app's CPU and 40 µs of PostgreSQL's per event
(BENCHMARKS.md, analysis). A prepared statement lives as long as the session, so this needs a real connection per Django
connection, not a pooler in transaction mode (``EVENTS_SQL_FAST_PATH=false`` then).

Django's own queries keep its client-side binding and are never prepared: only the cursor of
``config.binary.server_binding_cursor(prepare=True)`` binds on the server and prepares.
"""

from __future__ import annotations

import re
from typing import Any

from config.binary import server_binding_cursor

# psycopg turns a query's %(name)s placeholders into $n once per text, and keeps the result only
# for texts of at most this many bytes (psycopg/_queries.py, MAX_CACHED_STATEMENT_LENGTH); a
# longer one is parsed again at every run, which costs more than the rest of the call.
PSYCOPG_CACHED_LENGTH = 4096
# A quoted literal (kept as it is), or a run of whitespace and -- comments.
_TOKEN = re.compile(r"('(?:[^']|'')*')|(?:\s|--[^\n]*)+")


def compact(sql: str) -> str:
    """``sql`` without its comments and with each run of whitespace outside quotes one space."""
    return _TOKEN.sub(lambda m: m[1] or " ", sql).strip()


class PreparedStatement:
    def __init__(self, label: str, sql: str, types: dict[str, str]) -> None:
        self.label = label
        # Each parameter typed where it appears, so that PostgreSQL never has to guess one (psycopg
        # sends a str or a None untyped). The label first, as the query log shows it.
        typed = re.sub(r"%\((\w+)\)s", lambda m: f"{m[0]}::{types[m[1]]}", sql)
        self.sql = f"/* {self.name_in_log} */ {compact(typed)}"
        if len(self.sql.encode()) > PSYCOPG_CACHED_LENGTH:
            raise ValueError(f"{self.name_in_log}: {len(self.sql.encode())} bytes, over {PSYCOPG_CACHED_LENGTH}")

    @property
    def name_in_log(self) -> str:
        """How the statement starts in Django's query log (tests and the query counts read it)."""
        return f"pp_{self.label}"

    def cursor(self):
        """A cursor to ``run`` the statement on (``config.binary.server_binding_cursor``)."""
        return server_binding_cursor(prepare=True)

    def run(self, cursor, params: dict[str, Any]) -> None:
        """Run on a cursor of ``cursor()``."""
        cursor.execute(self.sql, params)
