"""The buffered click path through a real Redis stream (db 1), and its fallbacks."""

from __future__ import annotations

import os
import uuid
from io import StringIO
from urllib.parse import urlsplit

import pytest
from django.core.management import call_command
from django.utils import timezone

from tests.factories import LinkFactory
from tests.tracking.conftest import OTHER_BROWSER_UA, rollup_totals
from tracking import click_stream, clicks
from tracking.click_writes import ClickData
from tracking.clicks import click_for_attribution, flush_click_buffer
from tracking.models import Click, Link
from tracking.rebuild import rebuild_rollups
from tracking.rollups import program_day
from tracking.tasks import flush_click_buffer_task

pytestmark = pytest.mark.django_db

# A port nothing listens on: connection refused at once.
CLOSED_PORT_URL = "redis://127.0.0.1:1/1"


def _test_redis_url() -> str:
    base = urlsplit(os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/1")
    return f"redis://{base.netloc}/1"


@pytest.fixture
def stream(settings, monkeypatch):
    """The click buffer on, in Redis db 1, under a stream key of its own."""
    import redis

    url = _test_redis_url()
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis is not reachable at {url} ({exc.__class__.__name__}); the buffered click path needs it")
    key = f"test:tracking:clicks:{uuid.uuid4().hex}"
    monkeypatch.setattr(clicks, "STREAM_KEY", key)
    settings.REDIS_URL = url
    settings.CLICK_BUFFER = True
    yield client
    client.delete(key)
    client.close()


def _flush(django_capture_on_commit_callbacks, **kwargs) -> int:
    # The test runs inside a transaction: run the acknowledgements registered for its commit.
    with django_capture_on_commit_callbacks(execute=True):
        return flush_click_buffer(**kwargs)


def _visits(visit, client, code: str) -> None:
    """Three visitors, one of them clicking three times, one refusing cookies twice."""
    client.cookies.clear()
    visit(code, ip="203.0.113.1")
    visit(code, ip="203.0.113.1")
    visit(code, ip="198.51.100.2")
    client.cookies.clear()
    visit(code, ip="203.0.113.9", user_agent=OTHER_BROWSER_UA)
    client.cookies.clear()
    visit(code, ip="203.0.113.9", user_agent=OTHER_BROWSER_UA)
    client.cookies.clear()
    visit(code, ip="192.0.2.33")


def test_a_buffered_click_redirects_at_once_and_reaches_the_database_when_flushed(
    stream, visit, django_capture_on_commit_callbacks
):
    link = LinkFactory()
    response = visit(link.code)
    assert response.status_code == 302
    click_id = response.cookies["aff_click"].value
    assert response["Location"] == f"{link.destination}?aff_click={click_id}"
    assert not Click.objects.exists()
    assert stream.xlen(clicks.STREAM_KEY) == 1

    assert _flush(django_capture_on_commit_callbacks) == 1
    click = Click.objects.get()
    assert str(click.id) == click_id
    assert click.is_unique
    assert rollup_totals(link) == (1, 1)
    assert stream.xlen(clicks.STREAM_KEY) == 0
    assert stream.xpending(clicks.STREAM_KEY, clicks.GROUP)["pending"] == 0


def test_buffered_clicks_make_the_same_rows_and_rollups_as_direct_ones(
    stream, visit, client, settings, django_capture_on_commit_callbacks
):
    direct_link, buffered_link = LinkFactory(), LinkFactory()
    settings.CLICK_BUFFER = False
    _visits(visit, client, direct_link.code)
    settings.CLICK_BUFFER = True
    _visits(visit, client, buffered_link.code)
    assert Click.objects.filter(link=buffered_link).count() == 0

    _flush(django_capture_on_commit_callbacks)

    def shape(link: Link) -> list[tuple[str, bool]]:
        return list(Click.objects.filter(link=link).order_by("created_at").values_list("visitor_id", "is_unique"))

    assert shape(buffered_link) == shape(direct_link)
    assert rollup_totals(buffered_link) == rollup_totals(direct_link) == (6, 3)
    today = program_day(timezone.now())
    assert rebuild_rollups(today, today, dry_run=True).differences == []


def test_the_buffered_redirect_makes_no_database_query_once_the_link_is_cached(
    stream, visit, django_assert_num_queries
):
    link = LinkFactory()
    with django_assert_num_queries(1):
        visit(link.code)
    with django_assert_num_queries(0):
        visit(link.code)
    assert stream.xlen(clicks.STREAM_KEY) == 2


def test_a_redelivered_entry_does_not_make_a_second_click(stream, visit, django_capture_on_commit_callbacks):
    link = LinkFactory()
    visit(link.code)
    _, fields = stream.xrange(clicks.STREAM_KEY)[0]
    _flush(django_capture_on_commit_callbacks)
    stream.xadd(clicks.STREAM_KEY, fields)  # the same click delivered again

    assert _flush(django_capture_on_commit_callbacks) == 1
    assert Click.objects.count() == 1
    assert rollup_totals(link) == (1, 1)


def test_entries_left_pending_by_a_dead_consumer_are_reclaimed(
    stream, visit, monkeypatch, django_capture_on_commit_callbacks
):
    link = LinkFactory()
    visit(link.code)
    visit(link.code)
    clicks._ensure_group(stream)
    # Another consumer reads both entries and dies before writing or acknowledging them.
    stream.xreadgroup(clicks.GROUP, "dead-worker", {clicks.STREAM_KEY: ">"}, count=10)
    assert flush_click_buffer() == 0  # not idle long enough yet: nothing to take

    monkeypatch.setattr(clicks, "RECLAIM_IDLE_MS", 0)
    assert _flush(django_capture_on_commit_callbacks) == 2
    assert Click.objects.count() == 2
    assert rollup_totals(link) == (2, 1)
    assert stream.xpending(clicks.STREAM_KEY, clicks.GROUP)["pending"] == 0


def test_entries_are_acknowledged_only_once_the_transaction_commits(stream, visit):
    link = LinkFactory()
    visit(link.code)
    # Inside the test's transaction no commit happens, so nothing may be acknowledged.
    flush_click_buffer()
    assert stream.xpending(clicks.STREAM_KEY, clicks.GROUP)["pending"] == 1
    assert stream.xlen(clicks.STREAM_KEY) == 1


def test_a_malformed_entry_is_dropped_without_blocking_the_stream(stream, visit, django_capture_on_commit_callbacks):
    link = LinkFactory()
    stream.xadd(clicks.STREAM_KEY, {"id": "not-a-uuid", "l": "x"})
    visit(link.code)
    assert _flush(django_capture_on_commit_callbacks) == 2
    assert Click.objects.count() == 1
    assert stream.xlen(clicks.STREAM_KEY) == 0


def test_clicks_of_a_link_deleted_meanwhile_are_dropped(stream, visit, django_capture_on_commit_callbacks):
    keep, gone = LinkFactory(), LinkFactory()
    visit(keep.code)
    visit(gone.code)
    gone.delete()
    assert _flush(django_capture_on_commit_callbacks) == 2
    assert list(Click.objects.values_list("link_id", flat=True)) == [keep.pk]


def test_click_for_attribution_flushes_the_buffer_to_find_a_fresh_click(stream, visit):
    link = LinkFactory()
    click_id = visit(link.code).cookies["aff_click"].value
    assert not Click.objects.exists()
    click = click_for_attribution(click_id)
    assert click is not None and str(click.id) == click_id
    assert click.link == link


def test_the_flush_task_and_command_drain_the_stream(stream, visit, django_capture_on_commit_callbacks):
    link = LinkFactory()
    visit(link.code)
    with django_capture_on_commit_callbacks(execute=True):
        assert flush_click_buffer_task.delay().get() == 1
    visit(link.code)
    out = StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("flush_clicks", stdout=out)
    assert "Flushed 1 buffered clicks" in out.getvalue()
    assert Click.objects.count() == 2
    assert stream.xlen(clicks.STREAM_KEY) == 0


def test_a_large_backlog_is_flushed_in_batches(stream, django_capture_on_commit_callbacks):
    link = LinkFactory()
    now = timezone.now()
    for n in range(25):
        click_stream._redis("redirect").xadd(
            clicks.STREAM_KEY,
            click_stream._encode(ClickData(uuid.uuid4(), link.pk, link.partner_id, f"v{n % 10}", now)),
        )
    with django_capture_on_commit_callbacks(execute=True):
        assert clicks.flush_click_buffer_all(max_batch=10) == 25
    assert rollup_totals(link) == (25, 10)


def test_with_redis_unreachable_the_redirect_still_answers_and_records_the_click_directly(
    visit, settings, django_assert_max_num_queries
):
    settings.REDIS_URL = CLOSED_PORT_URL
    settings.CLICK_BUFFER = True
    link = LinkFactory()
    response = visit(link.code)
    assert response.status_code == 302
    click = Click.objects.get()
    assert response.cookies["aff_click"].value == str(click.id)
    assert response["Location"].endswith(f"aff_click={click.id}")
    assert rollup_totals(link) == (1, 1)
    # The next click does not wait for Redis again; it is written directly too.
    visit(link.code)
    assert Click.objects.count() == 2


def test_with_redis_unreachable_the_flush_task_does_nothing_and_fails_nothing(settings):
    settings.REDIS_URL = CLOSED_PORT_URL
    settings.CLICK_BUFFER = True
    assert flush_click_buffer_task.delay().get() == 0


def test_with_redis_unreachable_click_for_attribution_still_finds_stored_clicks(settings, visit):
    link = LinkFactory()
    click_id = visit(link.code).cookies["aff_click"].value
    settings.REDIS_URL = CLOSED_PORT_URL
    settings.CLICK_BUFFER = True
    assert str(click_for_attribution(click_id).id) == click_id
    assert click_for_attribution(str(uuid.uuid4())) is None


def _buffered_click(link) -> ClickData:
    click = ClickData(uuid.uuid4(), link.pk, link.partner_id, uuid.uuid4().hex, timezone.now())
    assert clicks.record_click(click) == "buffered"
    return click


def test_the_consumer_recreates_its_group_when_the_stream_was_deleted_under_it(
    stream, django_capture_on_commit_callbacks
):
    # E.g. Redis restarted without persistence: the group this process created is gone.
    link = LinkFactory()
    _buffered_click(link)
    assert _flush(django_capture_on_commit_callbacks) == 1
    stream.delete(clicks.STREAM_KEY)
    second = _buffered_click(link)  # XADD makes a new stream, without the group
    assert _flush(django_capture_on_commit_callbacks) == 1
    assert Click.objects.filter(pk=second.id).exists()


def test_the_consumer_daemon_lingers_after_a_small_batch_and_reclaims_only_now_and_then(
    stream, monkeypatch, django_capture_on_commit_callbacks
):
    link = LinkFactory()
    for _ in range(3):
        _buffered_click(link)
    client = click_stream._redis("consumer")
    autoclaims, sleeps, batches = [], [], []
    real_autoclaim, real_flush = client.xautoclaim, clicks.flush_click_buffer
    monkeypatch.setattr(client, "xautoclaim", lambda *a, **k: autoclaims.append(1) or real_autoclaim(*a, **k))
    # The daemon's pauses (a sleep that a stop request cuts short).
    monkeypatch.setattr(clicks, "_pause", lambda seconds, stop: sleeps.append(seconds))
    # The daemon recycles its connection between batches; this test's connection holds its transaction.
    monkeypatch.setattr("django.db.close_old_connections", lambda: None)

    def counted_flush(*args, **kwargs):
        batches.append(real_flush(*args, **kwargs))
        return batches[-1]

    monkeypatch.setattr(clicks, "flush_click_buffer", counted_flush)
    with django_capture_on_commit_callbacks(execute=True):
        total = clicks.consume_click_buffer(batch=100, block_ms=10, linger_ms=100, stop=lambda: len(batches) >= 4)
    assert (total, batches) == (3, [3, 0, 0, 0])
    assert sleeps == [0.1]  # after the small batch only; an empty read already waited block_ms
    assert autoclaims == [1]  # the first batch looked for a dead consumer's entries; the next 30 s do not
    assert Click.objects.filter(link=link).count() == 3
    assert stream.xlen(clicks.STREAM_KEY) == 0


def test_the_daemons_pause_ends_soon_after_a_stop_request():
    import time

    stop_at = time.monotonic() + 0.1
    started = time.monotonic()
    clicks._pause(30.0, lambda: time.monotonic() >= stop_at)
    assert time.monotonic() - started < 5  # not the 30 s asked for
    started = time.monotonic()
    clicks._pause(0.2, lambda: False)
    assert time.monotonic() - started >= 0.2
