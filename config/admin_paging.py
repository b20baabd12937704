"""The admin's paginator for tables that grow with the program (payouts, partners, the ledger,
the event log): Django's changelist counts every matching row for its page links, which on
millions of rows costs more than the page itself.

On PostgreSQL a count is exact up to ``EXACT_UP_TO`` rows (a bounded count reads at most that
many index entries); past that, the page links use the planner's estimate of the rows (EXPLAIN,
no scan). Pair it with ``show_full_result_count = False`` (no second count of the whole table).
SQLite counts exactly.
"""

from __future__ import annotations

import json

from django.core.paginator import Paginator
from django.db import connections
from django.utils.functional import cached_property


class EstimatedCountPaginator(Paginator):
    EXACT_UP_TO = 10_000

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        connection = connections[queryset.db]
        if connection.vendor != "postgresql":
            return super().count
        unordered = queryset.order_by()
        bounded = unordered[: self.EXACT_UP_TO + 1].count()
        if bounded <= self.EXACT_UP_TO:
            return bounded
        sql, params = unordered.query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
            plan = cursor.fetchone()[0]
        if isinstance(plan, str):
            plan = json.loads(plan)
        return max(bounded, int(plan[0]["Plan"]["Plan Rows"]))
