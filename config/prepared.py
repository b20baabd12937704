"""PostgreSQL prepared statements for the hottest fixed queries (the events API's).

A statement is written with ``%(name)s`` parameters and a PostgreSQL type for each. It is
PREPAREd once per database connection and then EXECUTEd with the values: PostgreSQL does not
parse and plan it again for every event, and Django interpolates a few values instead of the
whole text (for the events' CTEs, parsing and planning cost more than running them). SQL
``PREPARE`` lives as long as the session, so this needs a real connection per Django
connection, not a pooler in transaction mode (``EVENTS_SQL_FAST_PATH=false`` then).
"""

from __future__ import annotations

import hashlib
import re
import weakref
from typing import Any

from django.db import connection

# The statements prepared on each open psycopg connection.
_prepared: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()


class PreparedStatement:
    def __init__(self, label: str, sql: str, types: dict[str, str]) -> None:
        names: list[str] = []

        def positional(match: re.Match[str]) -> str:
            if match[1] not in names:
                names.append(match[1])
            return f"${names.index(match[1]) + 1}"

        body = re.sub(r"%\((\w+)\)s", positional, sql)
        self.names = names
        # The text's hash in the name: a deployment with a changed statement prepares it anew.
        self.name = f"pp_{label}_{hashlib.sha256(body.encode()).hexdigest()[:12]}"
        self.prepare_sql = f"PREPARE {self.name} ({', '.join(types[n] for n in names)}) AS {body}"
        self.execute_sql = f"EXECUTE {self.name} ({', '.join(['%s'] * len(names))})"

    def prepare(self) -> None:
        """Once per connection (a new connection, or one whose session was reset, prepares
        again; the catalog is asked first, so a statement prepared before is not an error)."""
        connection.ensure_connection()
        done = _prepared.setdefault(connection.connection, set())
        if self.name in done:
            return
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_prepared_statements WHERE name = %s", [self.name])
            if cursor.fetchone() is None:
                cursor.execute(self.prepare_sql)
        done.add(self.name)

    def run(self, cursor, params: dict[str, Any]) -> None:
        """EXECUTE on ``cursor`` (after ``prepare``, outside any transaction it could abort)."""
        cursor.execute(self.execute_sql, [params[name] for name in self.names])


def forget_prepared() -> None:
    """Forget what was prepared (tests that reset the session with DEALLOCATE ALL)."""
    _prepared.clear()
