"""The admin's paginator for tables that grow with the program (payouts, partners, the ledger,
the event log): Django's changelist counts every matching row for its page links, which on
millions of rows costs more than the page itself.

On PostgreSQL the planner's estimate of the rows (EXPLAIN, no scan) is used when it is above
``EXACT_UP_TO``; below it the rows are counted exactly (a count bounded at that many rows). Pair it with ``show_full_result_count = False`` (no second count of the whole table).
SQLite counts exactly.
"""

from __future__ import annotations

import json

from django.core.exceptions import EmptyResultSet
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
        # Keys only: the changelist's annotations (the payouts' balance check) are not counted.
        unordered = queryset.order_by().values("pk")
        try:
            sql, params = unordered.query.sql_with_params()
        except EmptyResultSet:
            # A filter that can match nothing (a search for an email nobody has): no SQL at all.
            return 0
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
            plan = cursor.fetchone()[0]
        if isinstance(plan, str):
            plan = json.loads(plan)
        estimate = int(plan[0]["Plan"]["Plan Rows"])
        if estimate > self.EXACT_UP_TO:
            return estimate
        # Few rows expected: counted exactly, and never more than EXACT_UP_TO + 1 of them (a rare
        # filter the planner underestimates still costs a bounded count).
        bounded = unordered[: self.EXACT_UP_TO + 1].count()
        return bounded if bounded <= self.EXACT_UP_TO else max(bounded, estimate)
