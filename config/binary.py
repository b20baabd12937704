"""PostgreSQL: cursors whose parameters are bound by the server, not quoted into the SQL text.

Django's psycopg cursors bind parameters on the client: every value is quoted into the SQL
text, in Python, and PostgreSQL parses it back. Two hot paths skip that:

- The click flusher's batch statements (hundreds of clicks as eight arrays per statement), where
  that quoting was a third of the flusher's CPU (BENCHMARKS.md). A statement run on
  ``binary_cursor()`` with ``%b`` placeholders sends each array in PostgreSQL's binary format,
  which psycopg's C extension writes about seven times faster, and PostgreSQL reads without
  parsing text.
- The events API's prepared statements (``config/prepared.py``), run on
  ``server_binding_cursor(prepare=True)``: psycopg prepares each on the server once per
  connection and then sends only its values.

The cursors are wrapped as Django wraps its own (database errors translated, queries logged
where Django logs them).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection
from django.db.backends import utils

# Above any count of runs: psycopg prepares a statement only when the caller asks (prepare=True).
# Django leaves a connection's prepare_threshold at None ("never"); its own cursors bind on the
# client and never prepare whatever the threshold.
_ONLY_WHEN_ASKED = 2**31 - 1


@contextmanager
def server_binding_cursor(*, prepare: bool = False) -> Iterator:
    """A cursor binding its parameters on the server; with ``prepare``, one that also has psycopg
    prepare each statement it runs (once per connection and text, then Bind and Execute only)."""
    from django.db.backends.postgresql.base import ServerBindingCursor

    connection.validate_thread_sharing()
    connection.ensure_connection()
    raw = connection.connection
    if prepare:
        if raw.prepare_threshold is None:
            raw.prepare_threshold = _ONLY_WHEN_ASKED
        cursor = _preparing_cursor_class()(raw)
        wrapped = _LoggedAsWritten(cursor, connection) if connection.queries_logged else connection.make_cursor(cursor)
    else:
        cursor = ServerBindingCursor(raw)
        wrapped = connection.make_debug_cursor(cursor) if connection.queries_logged else connection.make_cursor(cursor)
    with wrapped:
        yield wrapped


def binary_cursor():
    """A cursor for statements with ``%b`` (binary) placeholders."""
    return server_binding_cursor()


class _LoggedAsWritten(utils.CursorDebugWrapper):
    """Django's query log of a prepared statement's run as written, its parameters apart: psycopg
    does not keep the text it ran from a prepared statement, which Django's log would show."""

    def execute(self, sql, params=None):
        with self.debug_sql(sql, params):
            return utils.CursorWrapper.execute(self, sql, params)


@functools.cache
def _preparing_cursor_class() -> type:
    """Django's server-binding cursor, asking psycopg to prepare every statement it runs."""
    from django.db.backends.postgresql.base import ServerBindingCursor

    class PreparingCursor(ServerBindingCursor):
        def execute(self, query, params=None, *, prepare=None, binary=None):
            return super().execute(query, params, prepare=True, binary=binary)

    return PreparingCursor
