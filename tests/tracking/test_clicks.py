"""Recording clicks straight into the database: uniqueness, rollups, idempotency."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.factories import ClickFactory, LinkFactory
from tracking.click_writes import ClickData, record_click_direct, write_clicks
from tracking.clicks import click_for_attribution, record_click
from tracking.models import Click, DailyLinkStats, UniqueVisitor
from tracking.rebuild import rebuild_rollups
from tracking.rollups import program_day

pytestmark = pytest.mark.django_db


def _click(link, visitor="v1", at=None, click_id=None) -> ClickData:
    return ClickData(
        id=click_id or uuid.uuid4(),
        link_id=link.pk,
        partner_id=link.partner_id,
        visitor_id=visitor,
        created_at=at or timezone.now(),
        ip_hash="h" * 64,
        user_agent="Mozilla/5.0",
        referer="https://blog.example/",
    )


def _stats(link) -> tuple[int, int]:
    rows = DailyLinkStats.objects.filter(link=link)
    return sum(r.clicks for r in rows), sum(r.unique_clicks for r in rows)


def test_the_first_click_of_a_visitor_on_a_link_is_unique_and_later_ones_are_not():
    link = LinkFactory()
    assert record_click_direct(_click(link)) is True
    assert record_click_direct(_click(link)) is False
    assert record_click_direct(_click(link, visitor="v2")) is True
    assert _stats(link) == (3, 2)


def test_a_visitors_first_click_on_another_link_is_unique_there_too():
    a, b = LinkFactory(), LinkFactory()
    record_click_direct(_click(a))
    assert record_click_direct(_click(b)) is True


def test_a_click_is_stored_with_everything_the_redirect_knows():
    link = LinkFactory()
    data = _click(link)
    record_click_direct(data)
    click = Click.objects.get()
    assert (click.id, click.link_id, click.visitor_id, click.created_at) == (
        data.id,
        link.pk,
        "v1",
        data.created_at,
    )
    assert (click.ip_hash, click.user_agent, click.referer, click.is_unique) == (
        "h" * 64,
        "Mozilla/5.0",
        "https://blog.example/",
        True,
    )
    assert UniqueVisitor.objects.get().first_click_at == data.created_at


def test_writing_the_same_click_twice_stores_and_counts_it_once():
    link = LinkFactory()
    data = _click(link)
    first = write_clicks([data])
    again = write_clicks([data, data])
    assert len(first.inserted) == 1 and first.unique_count == 1
    assert again.inserted == [] and again.unique_count == 0
    assert Click.objects.count() == 1
    assert _stats(link) == (1, 1)


def test_a_batch_decides_uniqueness_by_the_earliest_click_of_each_pair():
    link = LinkFactory()
    now = timezone.now()
    late, early, other = _click(link, at=now), _click(link, at=now - timedelta(seconds=5)), _click(link, "v2", now)
    result = write_clicks([late, other, early])
    assert result.unique_ids == {early.id, other.id}
    assert set(Click.objects.filter(is_unique=True).values_list("id", flat=True)) == {early.id, other.id}
    assert _stats(link) == (3, 2)


def test_a_batch_counts_each_day_in_its_own_rollup_row():
    link = LinkFactory()
    today = timezone.now()
    yesterday = today - timedelta(days=1)
    write_clicks([_click(link, "a", yesterday), _click(link, "a", today), _click(link, "b", today)])
    rows = {r.day: (r.clicks, r.unique_clicks) for r in DailyLinkStats.objects.filter(link=link)}
    assert rows == {program_day(yesterday): (1, 1), program_day(today): (2, 1)}


def test_the_rollups_equal_a_rebuild_from_the_raw_clicks():
    links = [LinkFactory(), LinkFactory()]
    now = timezone.now()
    batch = [_click(links[n % 2], f"v{n % 5}", now - timedelta(hours=n * 7)) for n in range(40)]
    write_clicks(batch[:15])
    for click in batch[15:]:
        record_click_direct(click)
    write_clicks(batch)  # a full replay changes nothing
    report = rebuild_rollups(program_day(now - timedelta(days=15)), program_day(now), dry_run=True)
    assert report.differences == []
    assert sum(_stats(link)[0] for link in links) == 40


def test_with_the_buffer_off_a_click_is_written_directly(settings):
    settings.CLICK_BUFFER = False
    link = LinkFactory()
    assert record_click(_click(link)) == "direct"
    assert Click.objects.count() == 1


def test_click_for_attribution_finds_a_stored_click_with_its_link():
    click = ClickFactory()
    found = click_for_attribution(str(click.id))
    assert found == click
    assert found.link.trial_days == click.link.trial_days


@pytest.mark.parametrize(
    "value", [None, "", "garbage", "1234", "' OR 1=1 --", "x" * 36, 42, "00000000-0000-0000-0000-00000000000g"]
)
def test_click_for_attribution_returns_none_for_garbage(value):
    assert click_for_attribution(value) is None


def test_click_for_attribution_returns_none_for_an_unknown_click():
    assert click_for_attribution(str(uuid.uuid4())) is None


def test_click_for_attribution_accepts_the_id_without_dashes():
    click = ClickFactory()
    assert click_for_attribution(click.id.hex) == click
