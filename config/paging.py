"""Pagination for long, ordered partner lists (the commission ledger, referrals, payouts).

Django's Paginator counts with ``COUNT(*)`` and reads a page with ``OFFSET``: on the last page of
100,000 ledger rows the database joins and throws away every row before it. ``SeekPaginator``
takes the count when the caller has it from a rollup, reads a page's primary keys first (the
ordering's index alone, no joins) from whichever end of the ordering is nearer, then fetches
just those rows with everything the queryset selects. Page numbers, ``page_obj`` and the
template stay Django's.
"""

from __future__ import annotations

from django.core.paginator import Paginator


class SeekPaginator(Paginator):
    """``keys``, when given, reads the primary keys of rows ``bottom``..``top`` of the ordering
    (an ordering the database cannot read from one index: ``commissions.selectors.status_sort_keys``),
    or returns None to leave a page to the walk from the nearer end of ``object_list``.
    ``rows``, when given, is read for the page's rows instead of ``object_list`` (a superset of it
    with the same joins: the ids already went through the filter)."""

    def __init__(self, object_list, per_page, *, count: int | None = None, keys=None, rows=None, **kwargs) -> None:
        super().__init__(object_list, per_page, **kwargs)
        self.keys = keys
        # ``rows``: the queryset the page's rows are read from by primary key, when the list's
        # filter is costly to apply again (a state filter's id arrays); same columns and joins.
        self.rows = rows
        if count is not None:
            # ``count`` is a cached_property: a known count (an exact rollup) replaces the COUNT(*).
            # Never below zero: a rollup that drifted (restored with its triggers off, say) shows
            # wrong numbers until rebuilt (manage.py rebuild_ledger_days), but no error page.
            self.__dict__["count"] = max(count, 0)

    def page(self, number):
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        top = min(bottom + self.per_page, self.count)
        ids = self.keys(bottom, top) if self.keys is not None and top > bottom else None
        if ids is None:
            ids = self._walk(bottom, top)
        source = self.object_list if self.rows is None else self.rows
        rows = {row.pk: row for row in source.order_by().filter(pk__in=ids)} if ids else {}
        return self._get_page([rows[pk] for pk in ids if pk in rows], number, self)

    def _walk(self, bottom: int, top: int) -> list:
        """The ids of rows ``bottom``..``top`` along the ordering's index, from the nearer end."""
        keys = self.object_list.values_list("pk", flat=True)
        if bottom > self.count - top:
            # Nearer the end: the same ordering reversed, skipping fewer index entries.
            return list(keys.reverse()[self.count - top : self.count - bottom])[::-1]
        return list(keys[bottom:top])
