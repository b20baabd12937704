"""Performance broken down by sub-ID (page and CSV) and the Sources view, per partner and per link."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from tests.commissions.conftest import paid, signed_up
from tests.factories import LinkFactory, PromoCodeFactory
from tracking.click_writes import ClickData, write_clicks
from tracking.ids import new_click_id
from tracking.models import Click

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Mobile/15E148 Safari/604.1"
)
DESKTOP = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
)


def _click(link, *, visitor: str, sub1: str = "", referer: str = "", ua: str = DESKTOP, country: str = "", ago_h=2):
    data = ClickData(
        id=new_click_id(),
        link_id=link.pk,
        partner_id=link.partner_id,
        visitor_id=visitor,
        created_at=timezone.now() - timedelta(hours=ago_h),
        user_agent=ua,
        referer=referer,
        sub1=sub1,
        country=country,
    )
    write_clicks([data])
    return Click.objects.get(pk=data.id)


@pytest.fixture
def link_with_traffic(partner_client, send):
    """Clicks with sub1 = yt (3, 2 unique), qr (1) and none (2); a yt click signs up and pays,
    a none click signs up; a promo-code sign-up lands on the default link."""
    link = LinkFactory(partner=partner_client.partner, code="campaign")
    yt = _click(link, visitor="a", sub1="yt", referer="https://www.youtube.com/x", ua=IPHONE, country="US")
    _click(link, visitor="a", sub1="yt", referer="https://www.youtube.com/x", ua=IPHONE, country="US")
    _click(link, visitor="b", sub1="yt", referer="https://www.youtube.com/y", country="DE")
    _click(link, visitor="c", sub1="qr", ua=IPHONE)
    plain = _click(link, visitor="d")
    _click(link, visitor="e", referer="https://t.co/z")
    assert send(signed_up("cus_yt", yt.id)).status_code == 201
    assert send(paid("pay_yt", "cus_yt", "50.00")).status_code == 201
    assert send(signed_up("cus_plain", plain.id)).status_code == 201
    return link


def _rows(response) -> dict[str, tuple]:
    return {
        item["row"].value: (
            item["row"].clicks,
            item["row"].unique_clicks,
            item["row"].trials,
            item["row"].subscriptions,
            item["row"].commission,
        )
        for item in response.context["rows"]
    }


def test_a_link_breaks_down_by_sub1_with_conversions_and_commission(partner_client, link_with_traffic):
    response = partner_client.get(f"/performance/links/{link_with_traffic.pk}/")
    assert response.status_code == 200
    assert _rows(response) == {
        "yt": (3, 2, 1, 1, Decimal("10.00")),
        "qr": (1, 1, 0, 0, Decimal("0")),
        "": (2, 2, 1, 0, Decimal("0")),
    }
    assert "(none)" in response.content.decode()


def test_the_sub_id_breakdown_adds_up_to_the_links_totals(partner_client, link_with_traffic):
    rows = _rows(partner_client.get(f"/performance/links/{link_with_traffic.pk}/?by=sub2"))
    assert rows == {"": (6, 5, 2, 1, Decimal("10.00"))}


def test_a_range_before_the_activity_shows_no_values(partner_client, link_with_traffic):
    today = timezone.localdate()
    start, end = today - timedelta(days=10), today - timedelta(days=5)
    response = partner_client.get(
        f"/performance/links/{link_with_traffic.pk}/?by=sub1&start={start.isoformat()}&end={end.isoformat()}"
    )
    assert _rows(response) == {}  # the referrals exist, but nothing of theirs happened in these days


def test_the_sub_id_csv_has_every_value(partner_client, link_with_traffic):
    response = partner_client.get(f"/performance/links/{link_with_traffic.pk}/export.csv?by=sub1")
    assert response.status_code == 200
    lines = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    assert lines[0] == [
        "Link",
        "Sub-ID",
        "Value",
        "Clicks",
        "Unique clicks",
        "Trials",
        "Subscriptions",
        "Commission (USD)",
    ]
    by_value = {line[2]: line for line in lines[1:]}
    assert by_value["yt"][3:8] == ["3", "2", "1", "1", "10.00"]
    assert set(by_value) == {"yt", "qr", ""}


def test_another_partners_link_has_no_breakdown(partner_client):
    other = LinkFactory()
    assert partner_client.get(f"/performance/links/{other.pk}/").status_code == 404
    assert partner_client.get(f"/performance/links/{other.pk}/export.csv").status_code == 404
    assert partner_client.get(f"/performance/sources/?link={other.pk}").status_code == 404


def test_sources_by_referring_site_device_and_country(partner_client, link_with_traffic):
    by_site = _rows(partner_client.get("/performance/sources/?by=referrer"))
    assert {value: row[:2] for value, row in by_site.items()} == {"youtube.com": (3, 2), "t.co": (1, 1), "": (2, 2)}
    by_device = _rows(partner_client.get("/performance/sources/?by=device"))
    assert {value: row[0] for value, row in by_device.items()} == {"mobile": 3, "desktop": 3}
    by_country = _rows(partner_client.get("/performance/sources/?by=country"))
    assert {value: row[0] for value, row in by_country.items()} == {"US": 2, "DE": 1, "": 3}


def test_sources_per_link_count_only_that_links_clicks(partner_client, link_with_traffic):
    other = LinkFactory(partner=partner_client.partner)
    _click(other, visitor="z", referer="https://www.youtube.com/q")
    everything = _rows(partner_client.get("/performance/sources/?by=referrer"))
    one = _rows(partner_client.get(f"/performance/sources/?by=referrer&link={link_with_traffic.pk}"))
    assert everything["youtube.com"][0] == 4 and one["youtube.com"][0] == 3


def test_the_sources_page_carries_its_chart_data(partner_client, link_with_traffic):
    response = partner_client.get("/performance/sources/?by=device")
    page = response.content.decode()
    assert 'id="performance-data"' in page and "chart.umd.js" in page
    assert response.context["chart_data"]["labels"] == ["Mobile", "Desktop"] or response.context["chart_data"][
        "labels"
    ] == ["Desktop", "Mobile"]


def test_a_partner_never_sees_another_partners_sources(partner_client):
    other = LinkFactory()
    _click(other, visitor="x", referer="https://secret.example.org/")
    response = partner_client.get("/performance/sources/")
    assert response.context["rows"] == []
    assert "secret.example.org" not in response.content.decode()


def test_the_sources_and_sub_id_pages_make_the_same_number_of_queries_whatever_the_data(
    partner_client, django_assert_max_num_queries
):
    link = LinkFactory(partner=partner_client.partner)
    _click(link, visitor="a", sub1="one", referer="https://a.example/")
    counts = {}
    for url in ("/performance/sources/", f"/performance/links/{link.pk}/"):
        with django_assert_max_num_queries(30) as ctx:
            partner_client.get(url)
        counts[url] = len(ctx.captured_queries)
    for n in range(20):
        _click(link, visitor=f"v{n}", sub1=f"s{n}", referer=f"https://site{n}.example/", country="FR")
    for url, count in counts.items():
        with django_assert_max_num_queries(count):
            partner_client.get(url)


def test_a_promo_code_referral_is_in_the_none_row_of_the_default_link(partner_client, send):
    PromoCodeFactory(partner=partner_client.partner, code="PODCAST")
    body = signed_up("cus_promo", None)
    body["data"]["promo_code"] = "PODCAST"
    send(body)
    default = partner_client.partner.links.get(is_default=True)
    rows = _rows(partner_client.get(f"/performance/links/{default.pk}/"))
    assert rows == {"": (0, 0, 1, 0, Decimal("0"))}


def test_the_performance_page_links_each_row_to_its_sub_ids_and_sources_for_the_same_range(
    partner_client, link_with_traffic
):
    body = partner_client.get("/performance/?start=2026-01-01&end=2026-01-31").content.decode()
    range_query = "start=2026-01-01&amp;end=2026-01-31"
    assert f'href="/performance/links/{link_with_traffic.pk}/?{range_query}"' in body
    assert f'href="/performance/sources/?{range_query}&amp;link={link_with_traffic.pk}"' in body
