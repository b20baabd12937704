"""Races that only a real database shows (PostgreSQL, threads with their own connections)."""

from __future__ import annotations

import random
import threading
import uuid
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from tests.factories import LinkFactory
from tests.tracking.conftest import BROWSER_UA
from tracking.click_writes import ClickData, write_clicks
from tracking.models import Click, DailyLinkStats
from tracking.rebuild import rebuild_rollups
from tracking.rollups import program_day

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _run_together(workers: list[Callable[[], object]]) -> list[object]:
    barrier = threading.Barrier(len(workers))
    results: list[object] = [None] * len(workers)
    errors: list[BaseException] = []

    def run(index: int, work: Callable[[], object]) -> None:
        try:
            barrier.wait(timeout=30)
            results[index] = work()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, w)) for i, w in enumerate(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    return results


def test_simultaneous_first_clicks_of_one_visitor_make_exactly_one_unique_click():
    link = LinkFactory()

    def click():
        # No cookie yet: every request is "the first" as far as the browser knows; the visitor
        # is the same (IP + user agent), so the database must pick exactly one.
        return Client().get(f"/r/{link.code}", HTTP_USER_AGENT=BROWSER_UA, REMOTE_ADDR="203.0.113.50").status_code

    statuses = _run_together([click] * 12)
    assert statuses == [302] * 12
    assert Click.objects.filter(link=link).count() == 12
    assert Click.objects.filter(link=link, is_unique=True).count() == 1
    stats = DailyLinkStats.objects.get(link=link)
    assert (stats.clicks, stats.unique_clicks) == (12, 1)


def test_simultaneous_first_clicks_of_different_visitors_are_all_unique():
    link = LinkFactory()

    def click_from(n: int):
        return lambda: Client().get(f"/r/{link.code}", HTTP_USER_AGENT=BROWSER_UA, REMOTE_ADDR=f"203.0.113.{n}")

    _run_together([click_from(n) for n in range(10)])
    stats = DailyLinkStats.objects.get(link=link)
    assert (stats.clicks, stats.unique_clicks) == (10, 10)


def test_overlapping_batches_written_at_once_store_and_count_each_click_once():
    links = [LinkFactory(), LinkFactory(), LinkFactory()]
    now = timezone.now()
    clicks = [
        ClickData(
            id=uuid.uuid4(),
            link_id=links[n % 3].pk,
            partner_id=links[n % 3].partner_id,
            visitor_id=f"v{n % 7}",
            created_at=now - timedelta(minutes=n),
        )
        for n in range(120)
    ]
    rng = random.Random(7)

    def batch():
        # Re-delivered, reclaimed and fallback copies of the same clicks, in any order.
        sample = rng.sample(clicks, 90)
        return len(write_clicks(sample).inserted)

    inserted = _run_together([batch] * 6)
    assert sum(inserted) == Click.objects.count()
    stored = Click.objects.count()
    assert stored == len({c.id for c in clicks} & set(Click.objects.values_list("id", flat=True)))
    assert Click.objects.filter(is_unique=True).count() == len(
        {(c.link_id, c.visitor_id) for c in clicks if Click.objects.filter(pk=c.id).exists()}
    )
    days = [program_day(c.created_at) for c in clicks]
    assert rebuild_rollups(min(days), max(days), dry_run=True).differences == []


def test_flushers_racing_on_one_click_spool_store_every_click_once(settings, tmp_path):
    """Four flushers (the daemon, sign-ups looking for a click) on one host's spool at once, while
    the spool still fills: every click stored once, the unique clicks and rollups exact."""
    from tracking import spool
    from tracking.clicks import flush_click_buffer, record_click

    settings.CLICK_BUFFER = "spool"
    settings.CLICK_SPOOL_DIR = tmp_path / "spool"
    link = LinkFactory()
    now = timezone.now()
    sent = [
        ClickData(
            id=uuid.uuid4(),
            link_id=link.pk,
            partner_id=link.partner_id,
            visitor_id=f"visitor-{i % 37}",
            created_at=now + timedelta(microseconds=i),
        )
        for i in range(600)
    ]
    for click in sent[:400]:
        record_click(click)
    spool.close_current()  # a rotated file, and a live one still being appended to below

    def flusher():
        return sum(flush_click_buffer(50) for _ in range(12))

    def writer():
        for click in sent[400:]:
            record_click(click)
        return 0

    _run_together([flusher, flusher, flusher, flusher, writer])
    while flush_click_buffer(1000):
        pass
    spool.close_current()
    while flush_click_buffer(1000):
        pass
    assert Click.objects.filter(link=link).count() == 600
    assert Click.objects.filter(link=link, is_unique=True).count() == 37
    stats = DailyLinkStats.objects.get(link=link)
    assert (stats.clicks, stats.unique_clicks) == (600, 37)
    today = program_day(now)
    assert rebuild_rollups(today, today, dry_run=True).differences == []
    assert spool.pending_bytes() == 0
