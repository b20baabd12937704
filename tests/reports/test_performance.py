"""The performance report page and its CSV export."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import StreamingHttpResponse
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from tests.factories import CreativeFactory, LinkFactory, PartnerFactory
from tests.reports import builders as b
from tracking.models import Creative
from tracking.rollups import program_today

pytestmark = pytest.mark.django_db


def _png() -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("RGB", (468, 60), "#1f5fd6").save(buffer, format="PNG")
    return SimpleUploadedFile("banner.png", buffer.getvalue(), content_type="image/png")


@pytest.fixture
def report_partner(partner, settings, tmp_path):
    """Default link (no activity), a banner link that converts, a 30-day link with clicks only."""
    settings.MEDIA_ROOT = tmp_path
    now = timezone.now()
    banner = CreativeFactory(kind=Creative.Kind.BANNER, title="Summer banner 468x60", image=_png())
    converting = LinkFactory(
        partner=partner, description="Blog sidebar", destination="https://crazycall.com/pricing", creative=banner
    )
    clicky = LinkFactory(partner=partner, description="Newsletter", destination="", trial_days=30)
    first = b.click(converting, "v1", now - timedelta(days=2))
    for visitor in ("v1", "v2", "v3", "v4"):
        b.click(converting, visitor, now - timedelta(days=1))
    referral = b.signup(first, now - timedelta(days=1))
    b.pay(referral, "99.00", now - timedelta(hours=5))  # commission 19.80
    for n in range(3):
        b.click(clicky, f"n{n}", now - timedelta(days=3))
    b.click(clicky, "old", now - timedelta(days=45))  # outside the default 30 days
    other = PartnerFactory()
    LinkFactory(partner=other, description="Not yours", code="not-yours-link")
    return partner


def _rows(response) -> list[dict]:
    assert isinstance(response, StreamingHttpResponse)
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text)))


def test_each_link_is_a_row_with_its_numbers_rates_and_creative(report_partner, client, settings):
    client.force_login(report_partner.user)
    response = client.get(reverse("tracking:performance"))
    assert response.status_code == 200
    html = response.content.decode()
    rows = {row.link.description: row for row in response.context["report"].rows}
    blog = rows["Blog sidebar"]
    assert (blog.clicks, blog.unique_clicks, blog.trials, blog.subscriptions) == (5, 4, 1, 1)
    assert str(blog.commission) == "19.80"
    assert str(blog.earnings_per_click) == "3.96"
    assert "25.0 %" in html and "100.0 %" in html  # 1 trial / 4 unique clicks; 1 subscription / 1 trial
    assert 'class="thumb"' in html and "Summer banner 468x60" in html
    assert "https://crazycall.com/pricing" in html
    assert "30 days" in html
    newsletter = rows["Newsletter"]
    assert (newsletter.clicks, newsletter.trials) == (3, 0)
    assert newsletter.trial_to_paid is None  # no trials: the rate is undefined, shown as a dash
    totals = response.context["report"].totals
    assert (totals.clicks, totals.unique_clicks, totals.trials, totals.subscriptions) == (8, 7, 1, 1)
    assert str(totals.commission) == "19.80"
    footer = html.split("<tfoot>", 1)[1]
    for shown in (">8<", ">7<", ">1<", ">19.80<", ">14.3 %<", ">100.0 %<", ">2.48<"):
        assert shown in footer, shown
    assert "Not yours" not in html
    assert 'id="performance-data" type="application/json"' in html
    assert "<script>" not in html  # CSP: no inline scripts


def test_the_help_text_defines_the_conversion_rates(report_partner, client):
    client.force_login(report_partner.user)
    html = client.get(reverse("tracking:performance")).content.decode()
    assert "Trials ÷ unique clicks" in html
    assert "Subscriptions ÷ trials" in html
    assert "Commission ÷ clicks" in html


@pytest.mark.parametrize(
    ("sort", "expected_first"),
    [
        ("-commission", "Blog sidebar"),
        ("description", "Blog sidebar"),
        ("-description", "Newsletter"),
        ("-trial_days", "Newsletter"),
    ],
)
def test_columns_sort_the_rows(report_partner, client, sort, expected_first):
    client.force_login(report_partner.user)
    rows = client.get(reverse("tracking:performance"), {"sort": sort}).context["report"].rows
    assert rows[0].link.description == expected_first


def test_an_unknown_sort_keeps_the_natural_order(report_partner, client):
    client.force_login(report_partner.user)
    rows = client.get(reverse("tracking:performance"), {"sort": "-password"}).context["report"].rows
    assert rows[0].link.is_default


def test_a_date_range_selects_the_days_counted(report_partner, client):
    client.force_login(report_partner.user)
    today = program_today()
    start = (today - timedelta(days=60)).isoformat()
    response = client.get(reverse("tracking:performance"), {"start": start, "end": today.isoformat()})
    rows = {row.link.description: row for row in response.context["report"].rows}
    assert rows["Newsletter"].clicks == 4


def test_a_bad_range_says_so_and_shows_the_last_30_days(report_partner, client):
    client.force_login(report_partner.user)
    response = client.get(reverse("tracking:performance"), {"start": "2025-05-01", "end": "2025-04-01"})
    assert response.status_code == 200
    assert "start must be on or before end." in response.content.decode()
    assert response.context["end"] == program_today()


def test_the_csv_export_streams_the_same_rows(report_partner, client):
    client.force_login(report_partner.user)
    response = client.get(reverse("tracking:performance_export"), {"sort": "-commission"})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    today = program_today()
    expected_name = f"performance-{(today - timedelta(days=29)).isoformat()}-{today.isoformat()}.csv"
    assert response["Content-Disposition"] == f'attachment; filename="{expected_name}"'
    rows = _rows(response)
    # Ties keep the natural order: the default link first, then the newest.
    assert [row["Link"] for row in rows] == ["Blog sidebar", "Default link", "Newsletter"]
    blog = rows[0]
    assert blog == {
        "Link": "Blog sidebar",
        "Link code": blog["Link code"],
        "Link URL": f"http://testserver/r/{blog['Link code']}",
        "Lands on": "https://crazycall.com/pricing",
        "Creative": "Summer banner 468x60",
        "Trial": "14 days",
        "Clicks": "5",
        "Unique clicks": "4",
        "Trials": "1",
        "Subscriptions": "1",
        "Click → trial": "25.00",
        "Trial → paid": "100.00",
        "Commission (USD)": "19.80",
        "Earnings per click (USD)": "3.96",
    }
    newsletter = next(row for row in rows if row["Link"] == "Newsletter")
    assert newsletter["Lands on"] == "https://crazycall.com/"
    assert newsletter["Trial → paid"] == "" and newsletter["Commission (USD)"] == "0.00"
    assert all(row["Link code"] != "not-yours-link" for row in rows)


def test_the_csv_neutralises_spreadsheet_formulas_in_descriptions(partner, client):
    LinkFactory(partner=partner, description='=HYPERLINK("http://evil.example","x")')
    client.force_login(partner.user)
    rows = _rows(client.get(reverse("tracking:performance_export")))
    assert '\'=HYPERLINK("http://evil.example","x")' in [row["Link"] for row in rows]


def test_the_csv_honours_the_date_range(report_partner, client):
    client.force_login(report_partner.user)
    rows = _rows(client.get(reverse("tracking:performance_export"), {"start": "2020-01-01", "end": "2020-01-31"}))
    assert {row["Clicks"] for row in rows} == {"0"}


def test_anonymous_visitors_are_sent_to_log_in(client):
    for name in ("tracking:performance", "tracking:performance_export"):
        response = client.get(reverse(name))
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("partners:login"))


def test_a_range_over_whole_months_adds_up_exactly_as_its_days(partner):
    from datetime import UTC, date, datetime

    from tracking.link_performance import link_performance
    from tracking.models import DailyLinkStats

    link = LinkFactory(partner=partner)
    for n, day in enumerate(
        (date(2025, 12, 31), date(2026, 1, 1), date(2026, 1, 31), date(2026, 2, 1), date(2026, 3, 2))
    ):
        at = datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=12)
        b.pay(b.signup(b.click(link, f"v{n}", at), at), f"{10 + n}.00", at)
    for start, end in [
        (date(2025, 12, 31), date(2026, 3, 2)),  # days, whole January and February, days
        (date(2026, 1, 1), date(2026, 2, 28)),  # whole months only
        (date(2026, 1, 2), date(2026, 1, 31)),  # no whole month
        (date(2026, 1, 1), date(2026, 1, 1)),
    ]:
        row = next(r for r in link_performance(partner, start, end).rows if r.link == link)
        days = DailyLinkStats.objects.filter(link=link, day__gte=start, day__lte=end)
        expected = (
            sum(d.clicks for d in days),
            sum(d.unique_clicks for d in days),
            sum(d.new_trials for d in days),
            sum(d.new_subscriptions for d in days),
            sum((d.commission for d in days), Decimal("0.00")),
        )
        assert (row.clicks, row.unique_clicks, row.trials, row.subscriptions, row.commission) == expected
        assert row.clicks > 0
