"""``bench.reports.time_views``: every view is requested once per round, in turn, so a slow spell
of the machine is shared by all the views instead of landing on the few timed during it."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.db import connection

from bench.reports import View, time_views


class RecordingClient:
    """Records the order of the paths requested; answers each with 200."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    def get(self, path: str, headers: dict | None = None) -> SimpleNamespace:
        self.paths.append(path)
        return SimpleNamespace(status_code=200)


@pytest.mark.django_db
def test_samples_are_taken_in_rounds_over_every_view():
    client = RecordingClient()
    views = [View("a", "A", "/a/", {}), View("b", "B", "/b/", {}), View("c", "C", "/c/", {})]

    results = time_views(client, views, samples=4, warmup=2)

    # Warm-up (2 each, view by view), one request per view for its query count, then 4 rounds.
    assert client.paths[:6] == ["/a/", "/a/", "/b/", "/b/", "/c/", "/c/"]
    assert client.paths[6:9] == ["/a/", "/b/", "/c/"]
    assert client.paths[9:] == ["/a/", "/b/", "/c/"] * 4
    assert [(r.key, r.samples, r.status) for r in results] == [("a", 4, 200), ("b", 4, 200), ("c", 4, 200)]
    assert all(0 <= r.median_ms <= r.p95_ms for r in results)


@pytest.mark.django_db
def test_the_query_count_is_that_of_one_request(partner_client):
    partner_client.get("/settings/")  # warm (the first request fills caches), as time_views does
    executed: list[str] = []  # counted as the database runs them (the request resets Django's query log)
    with connection.execute_wrapper(lambda execute, sql, *args: executed.append(sql) or execute(sql, *args)):
        assert partner_client.get("/settings/").status_code == 200

    (result,) = time_views(partner_client, [View("settings", "settings", "/settings/", {})], samples=2, warmup=1)

    assert (result.status, result.queries) == (200, len(executed))
