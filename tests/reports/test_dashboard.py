"""The dashboard page: chart wiring (no inline code), period selection, access."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from django.urls import reverse

from tracking.reports import period_presets

pytestmark = pytest.mark.django_db


def _config(html: str) -> dict:
    match = re.search(r'<script id="dashboard-config" type="application/json">(.*?)</script>', html, re.S)
    assert match, "the chart configuration is passed as JSON data"
    return json.loads(match.group(1))


def test_the_charts_fetch_the_trends_endpoint_with_the_periods_of_the_program_calendar(partner_client):
    html = partner_client.get(reverse("partners:dashboard")).content.decode()
    config = _config(html)
    assert config["trendsUrl"] == "/api/v1/partner/trends"
    assert config["currency"] == "USD"
    expected = {name: [s.isoformat(), e.isoformat()] for name, (s, e) in period_presets().items()}
    assert config["presets"] == expected
    for series in ("commission", "new_trials", "new_subscriptions", "unique_clicks"):
        assert f'id="chart-{series}"' in html
    assert html.count('class="chart-empty hidden"') == 4  # an empty state for every chart
    for label in ("Last 7 days", "Last 30 days", "Last 90 days", "This month", "Last month", "Custom range"):
        assert label in html


def test_the_page_runs_no_inline_script_and_loads_chart_js_from_static(partner_client):
    html = partner_client.get(reverse("partners:dashboard")).content.decode()
    scripts = re.findall(r"<script([^>]*)>", html)
    assert all("src=" in attrs or 'type="application/json"' in attrs for attrs in scripts)
    assert "/static/vendor/chart.umd.js" in html
    assert "/static/js/dashboard.js" in html
    assert "cdn" not in html.lower()


def test_a_custom_range_is_kept_in_the_form(partner_client):
    response = partner_client.get(
        reverse("partners:dashboard"), {"period": "custom", "start": "2026-01-05", "end": "2026-02-04"}
    )
    html = response.content.decode()
    assert '<option value="custom" selected>' in html
    assert 'value="2026-01-05"' in html and 'value="2026-02-04"' in html


def test_a_bad_custom_range_explains_itself_and_keeps_the_dates_asked_for(partner_client):
    response = partner_client.get(
        reverse("partners:dashboard"), {"period": "custom", "start": "2026-03-05", "end": "2026-02-04"}
    )
    html = response.content.decode()
    assert "The From date is after the To date." in html
    # Not silently "Last 30 days": the custom range stays chosen with its dates, the charts
    # are told not to draw (initialError).
    assert '<option value="custom" selected>' in html
    assert 'value="2026-03-05"' in html and 'value="2026-02-04"' in html
    assert response.context["chart_config"]["initialError"]


def test_an_invalid_date_in_the_url_is_an_error_not_the_last_30_days(partner_client):
    response = partner_client.get(reverse("partners:dashboard"), {"start": "2026-13-01", "end": "2026-12-01"})
    html = response.content.decode()
    assert "From: enter a date as YYYY-MM-DD." in html
    assert '<option value="custom" selected>' in html
    assert response.context["chart_config"]["initialError"]
    unknown = partner_client.get(reverse("partners:dashboard"), {"period": "fortnight"})
    assert "Choose a period from the list." in unknown.content.decode()


def test_anonymous_visitors_are_sent_to_log_in(client):
    response = client.get(reverse("partners:dashboard"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("partners:login"))


def test_vendored_chart_js_defines_the_global_chart_and_keeps_its_license():
    from django.contrib.staticfiles import finders

    bundle = Path(finders.find("vendor/chart.umd.js")).read_text(encoding="utf-8")
    assert "Chart.js v4." in bundle[:200]
    assert ".Chart=" in bundle[:2000]  # the UMD build that sets window.Chart
    assert "MIT" in Path(finders.find("vendor/chart.js.LICENSE.md")).read_text(encoding="utf-8")
