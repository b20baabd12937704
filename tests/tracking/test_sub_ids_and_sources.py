"""Sub-IDs on the click URL, the click's sources (referring site, device, country), their
passage through every click path, and the dimension rollups (exact against the raw clicks)."""

from __future__ import annotations

import json
import random
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db.models import Count, Q
from django.utils import timezone

from tests.factories import LinkFactory
from tests.tracking.conftest import BROWSER_UA
from tracking import click_stream, clicks, spool
from tracking.click_writes import ClickData, write_clicks
from tracking.ids import new_click_id
from tracking.models import Click, DailyDimensionStats
from tracking.rebuild import DIMENSION_COLUMNS, rebuild_dimension_rollups, rebuild_rollups
from tracking.rollups import program_day
from tracking.sources import device_type, referrer_host

pytestmark = pytest.mark.django_db

IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Mobile/15E148 Safari/604.1"
)
IPAD = (
    "Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 "
    "Mobile/15E148 Safari/604.1"
)
ANDROID_PHONE = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 "
    "Mobile Safari/537.36"
)
ANDROID_TABLET = (
    "Mozilla/5.0 (Linux; Android 14; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
)
MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 "
    "Safari/605.1.15"
)


def _only_click() -> Click:
    (click,) = Click.objects.all()
    return click


def _query(response) -> dict[str, list[str]]:
    return parse_qs(urlsplit(response["Location"]).query)


# --- sub-IDs on the redirect ----------------------------------------------------------------------


def test_sub_ids_are_recorded_and_removed_before_the_redirect(visit):
    link = LinkFactory(destination="https://crazycall.com/pricing")
    response = visit(link.code, "sub1=youtube&sub2=video-12&sub3=pinned&utm_source=x")
    assert response.status_code == 302
    query = _query(response)
    assert "sub1" not in query and "sub2" not in query and "sub3" not in query
    assert query["utm_source"] == ["x"] and "aff_click" in query
    click = _only_click()
    assert (click.sub1, click.sub2, click.sub3) == ("youtube", "video-12", "pinned")


def test_a_link_that_passes_sub_ids_on_sends_them_to_the_destination_too(visit):
    link = LinkFactory(pass_sub_ids=True)
    query = _query(visit(link.code, "sub1=newsletter&sub2=may"))
    assert query["sub1"] == ["newsletter"] and query["sub2"] == ["may"]
    assert _only_click().sub1 == "newsletter"


def test_a_long_sub_id_is_cut_to_100_characters_and_still_redirects(visit):
    link = LinkFactory()
    response = visit(link.code, "sub1=" + "a" * 300 + "&sub2=%00%01tab%09")
    assert response.status_code == 302
    click = _only_click()
    assert click.sub1 == "a" * 100 and click.sub2 == "tab"


def test_a_click_without_sub_ids_records_empty_ones(visit):
    link = LinkFactory()
    visit(link.code)
    click = _only_click()
    assert (click.sub1, click.sub2, click.sub3) == ("", "", "")


# --- sources --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user_agent", "device"),
    [
        (BROWSER_UA, "desktop"),
        (MAC, "desktop"),
        (IPHONE, "mobile"),
        (ANDROID_PHONE, "mobile"),
        (IPAD, "tablet"),
        (ANDROID_TABLET, "tablet"),
        ("", ""),
    ],
)
def test_the_device_type_is_read_from_the_user_agent(user_agent, device):
    assert device_type(user_agent) == device


@pytest.mark.parametrize(
    ("referer", "host"),
    [
        ("https://www.youtube.com/watch?v=abc", "youtube.com"),
        ("http://Blog.Example.org:8080/post", "blog.example.org"),
        ("android-app://com.google.android.gm/", ""),
        ("not a url", ""),
        ("", ""),
        ("https://[::1", ""),
    ],
)
def test_the_referring_site_is_the_host_of_the_referer(referer, host):
    assert referrer_host(referer) == host


def test_a_click_records_its_referring_site_device_and_country(visit, settings):
    settings.COUNTRY_HEADER = "CF-IPCountry"
    link = LinkFactory()
    visit(link.code, user_agent=IPHONE, HTTP_REFERER="https://www.instagram.com/p/1", HTTP_CF_IPCOUNTRY="de")
    click = _only_click()
    assert (click.referrer_host, click.device, click.country) == ("instagram.com", "mobile", "DE")


def test_without_a_country_header_configured_no_country_is_recorded(visit, settings):
    settings.COUNTRY_HEADER = ""
    link = LinkFactory()
    visit(link.code, HTTP_CF_IPCOUNTRY="DE")
    assert _only_click().country == ""


@pytest.mark.parametrize("value", ["XX", "T1", "Germany", "<b>", ""])
def test_a_country_header_that_is_not_a_country_code_is_ignored(visit, settings, value):
    settings.COUNTRY_HEADER = "CF-IPCountry"
    link = LinkFactory()
    visit(link.code, HTTP_CF_IPCOUNTRY=value)
    assert _only_click().country == ""


def test_no_ip_address_is_stored_in_clear(visit):
    link = LinkFactory()
    visit(link.code, ip="198.51.100.23")
    click = _only_click()
    assert "198.51.100.23" not in json.dumps([str(getattr(click, f.attname)) for f in Click._meta.fields])


# --- every click path carries the new fields --------------------------------------------------------


def _data(link, **kw) -> ClickData:
    fields = {
        "id": new_click_id(),
        "link_id": link.pk,
        "partner_id": link.partner_id,
        "visitor_id": "v" * 32,
        "created_at": timezone.now(),
        "user_agent": IPHONE,
        "referer": "https://news.ycombinator.com/item?id=1",
    }
    return ClickData(**{**fields, **kw})


def test_the_spool_line_carries_sub_ids_and_country():
    link = LinkFactory()
    click = _data(link, sub1="qr", sub2="poster", sub3="lobby", country="FR")
    assert spool.decode(spool.encode(click)) == click


def test_a_spool_line_written_before_sub_ids_existed_still_reads():
    link = LinkFactory()
    click = _data(link)
    old_line = json.dumps(
        [click.id.hex, link.pk, link.partner_id, click.visitor_id, 0, "", click.user_agent, click.referer]
    ).encode()
    decoded = spool.decode(old_line)
    assert (decoded.sub1, decoded.sub2, decoded.sub3, decoded.country) == ("", "", "", "")
    assert spool.decode_many([old_line, spool.encode(click)])[1] == click


def test_the_stream_entry_carries_sub_ids_and_country():
    link = LinkFactory()
    click = _data(link, sub1="qr", country="FR")
    assert click_stream._decode(click_stream._encode(click)) == click
    plain = _data(link)
    assert "s1" not in click_stream._encode(plain) and click_stream._decode(click_stream._encode(plain)) == plain


def test_a_spooled_click_reaches_the_database_with_its_sources(
    settings, tmp_path, visit, django_capture_on_commit_callbacks
):
    settings.CLICK_BUFFER = "spool"
    settings.CLICK_SPOOL_DIR = tmp_path / "spool"
    settings.COUNTRY_HEADER = "CF-IPCountry"
    link = LinkFactory()
    try:
        visit(link.code, "sub1=qr", user_agent=IPAD, HTTP_REFERER="https://t.co/x", HTTP_CF_IPCOUNTRY="JP")
        assert not Click.objects.exists()
        with django_capture_on_commit_callbacks(execute=True):
            assert clicks.flush_click_buffer(1000) == 1
    finally:
        spool.close_current()
    click = _only_click()
    assert (click.sub1, click.referrer_host, click.device, click.country) == ("qr", "t.co", "tablet", "JP")
    assert DailyDimensionStats.objects.filter(link=link, dimension="sub1", value="qr", clicks=1).exists()


# --- dimension rollups -----------------------------------------------------------------------------


def _raw(link_ids) -> dict[tuple[int, str, str], tuple[int, int]]:
    counts = {}
    for dimension, column in DIMENSION_COLUMNS.items():
        rows = (
            Click.objects.filter(link_id__in=link_ids)
            .exclude(**{column: ""})
            .values_list("link_id", column)
            .annotate(n=Count("pk"), u=Count("pk", filter=Q(is_unique=True)))
        )
        for link_id, value, n, u in rows:
            counts[(link_id, dimension, value)] = (n, u)
    return counts


def _stored(link_ids) -> dict[tuple[int, str, str], tuple[int, int]]:
    counts: dict = {}
    for row in DailyDimensionStats.objects.filter(link_id__in=link_ids):
        n, u = counts.get((row.link_id, row.dimension, row.value), (0, 0))
        counts[(row.link_id, row.dimension, row.value)] = (n + row.clicks, u + row.unique_clicks)
    return counts


def _random_clicks(links, n: int, seed: int) -> list[ClickData]:
    rng = random.Random(seed)
    now = timezone.now()
    agents = [IPHONE, IPAD, ANDROID_PHONE, MAC, BROWSER_UA, ""]
    referers = ["", "https://www.youtube.com/x", "https://t.co/y", "https://blog.example.org/z"]
    return [
        _data(
            rng.choice(links),
            visitor_id=f"visitor-{rng.randrange(15)}",
            created_at=now - timedelta(hours=rng.randrange(72)),
            user_agent=rng.choice(agents),
            referer=rng.choice(referers),
            sub1=rng.choice(["", "", "qr", "yt"]),
            sub2=rng.choice(["", "a", "b"]),
            sub3=rng.choice(["", "z"]),
            country=rng.choice(["", "US", "DE"]),
        )
        for _ in range(n)
    ]


def test_dimension_rollups_are_exact_against_the_raw_clicks_batched_or_one_by_one():
    links = [LinkFactory(), LinkFactory()]
    batch = _random_clicks(links, 120, seed=1)
    write_clicks(batch[:80])
    for click in batch[80:]:
        write_clicks([click])
    write_clicks(batch[:10])  # a replayed batch counts nothing twice
    ids = [link.pk for link in links]
    assert _stored(ids) == _raw(ids)
    assert sum(n for (_, dim, _), (n, _) in _raw(ids).items() if dim == "sub1") < 120  # some clicks have none


def test_a_dimensions_values_plus_the_clicks_without_one_are_the_links_clicks():
    link = LinkFactory()
    write_clicks(_random_clicks([link], 60, seed=2))
    total = Click.objects.filter(link=link).count()
    with_sub1 = sum(row.clicks for row in DailyDimensionStats.objects.filter(link=link, dimension="sub1"))
    assert with_sub1 + Click.objects.filter(link=link, sub1="").count() == total


def test_the_rebuild_repairs_dimension_rollups_and_reports_the_differences():
    link = LinkFactory()
    write_clicks(_random_clicks([link], 50, seed=3))
    expected = _stored([link.pk])
    rows = list(DailyDimensionStats.objects.filter(link=link).order_by("pk"))
    rows[0].clicks += 5
    rows[0].save()
    rows[1].delete()
    DailyDimensionStats.objects.create(
        link=link,
        partner_id=link.partner_id,
        day=program_day(timezone.now()),
        dimension="sub1",
        value="ghost",
        clicks=3,
    )
    today = program_day(timezone.now())
    dry = rebuild_dimension_rollups(today - timedelta(days=5), today, dry_run=True)
    assert len(dry.differences) >= 3 and _stored([link.pk]) != expected
    report = rebuild_rollups(today - timedelta(days=5), today)
    assert not report.ok
    assert _stored([link.pk]) == expected
    assert rebuild_dimension_rollups(today - timedelta(days=5), today).ok


def test_a_partner_creates_a_link_that_passes_sub_ids_on(partner_client, visit):
    response = partner_client.post(
        "/resources/", {"trial_days": "14", "destination": "", "code": "passing", "pass_sub_ids": "on"}
    )
    assert response.status_code == 302
    link = partner_client.partner.links.get(code="passing")
    assert link.pass_sub_ids
    assert "sub1" in _query(visit("passing", "sub1=blog"))


def _partner_rows(partner_id) -> dict[tuple[str, str], tuple[int, int]]:
    from tracking.models import PartnerDailyDimensionStats

    counts: dict = {}
    for row in PartnerDailyDimensionStats.objects.filter(partner_id=partner_id):
        n, u = counts.get((row.dimension, row.value), (0, 0))
        counts[(row.dimension, row.value)] = (n + row.clicks, u + row.unique_clicks)
    return counts


def _summed_link_rows(partner_id) -> dict[tuple[str, str], tuple[int, int]]:
    counts: dict = {}
    for row in DailyDimensionStats.objects.filter(partner_id=partner_id):
        n, u = counts.get((row.dimension, row.value), (0, 0))
        counts[(row.dimension, row.value)] = (n + row.clicks, u + row.unique_clicks)
    return counts


def test_partner_wide_dimension_rows_are_the_sum_of_the_links_rows_and_are_rebuilt():
    from tests.factories import PartnerFactory
    from tracking.models import PartnerDailyDimensionStats

    partner = PartnerFactory()
    links = [LinkFactory(partner=partner), LinkFactory(partner=partner)]
    write_clicks(_random_clicks(links, 40, seed=4)[:25])
    for click in _random_clicks(links, 40, seed=4)[25:]:
        write_clicks([click])
    expected = _summed_link_rows(partner.pk)
    assert _partner_rows(partner.pk) == expected and expected
    PartnerDailyDimensionStats.objects.filter(partner=partner).first().delete()
    today = program_day(timezone.now())
    assert not rebuild_rollups(today - timedelta(days=5), today).ok
    assert _partner_rows(partner.pk) == expected


@pytest.mark.parametrize("zone", ["UTC", "America/New_York", "Pacific/Auckland"])
def test_every_rollup_a_flush_writes_equals_a_rebuild_from_the_raw_clicks_day_by_day(settings, zone):
    # Whatever sums the counts (SQL on PostgreSQL, Python elsewhere), each (link, day), (link,
    # dimension, day, value) and (partner, dimension, day, value) row must be what the rebuild
    # reads from the raw clicks, on the program's days: clicks a microsecond either side of
    # the zone's midnights, two partners in one batch, duplicates inside a batch, replays.
    from tests.factories import PartnerFactory
    from tracking.models import DailyLinkStats
    from tracking.rollups import day_start

    settings.TIME_ZONE = zone
    partners = [PartnerFactory(), PartnerFactory()]
    links = [LinkFactory(partner=partners[0]), LinkFactory(partner=partners[0]), LinkFactory(partner=partners[1])]
    batch = _random_clicks(links, 150, seed=5)
    today = program_day(timezone.now())
    edges = []
    for back in (1, 2):
        midnight = day_start(today - timedelta(days=back))
        for offset in (timedelta(microseconds=-1), timedelta(0), timedelta(microseconds=1)):
            edges.append(_data(links[back], visitor_id=f"edge-{back}", created_at=midnight + offset, sub1="edge"))
    assert {program_day(c.created_at) for c in edges} == {today - timedelta(days=d) for d in (1, 2, 3)}
    write_clicks(batch[:100] + edges + batch[:5])  # a click twice in one batch counts once
    write_clicks(batch[90:])  # overlaps: the replayed ten count nothing
    for click in batch[140:]:
        write_clicks([click])
    start = today - timedelta(days=5)
    report = rebuild_rollups(start, today, dry_run=True)
    assert report.ok, [str(d) for d in report.differences[:5]]
    assert report.rows_checked > 0
    assert Click.objects.count() == 150 + len(edges)  # all inside the rebuilt days
    assert sum(row.clicks for row in DailyLinkStats.objects.all()) == 150 + len(edges)
