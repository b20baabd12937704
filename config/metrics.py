"""/metrics: Prometheus metrics, for staff or for a scraper holding ``METRICS_TOKEN``.

Read from the database (and this host's click buffer) at each scrape rather than counted in
the web processes: several processes on several hosts serve the panel, and the database already
holds the exact figures. The queries read the small tables (daily rollups, the event log grouped
by two short columns, payouts); a scrape every 15-60 s costs a few milliseconds of PostgreSQL.

- ``partner_panel_clicks_total`` / ``partner_panel_unique_clicks_total``: every counted click
  (the rollups, which raw-click pruning leaves as they are);
- ``partner_panel_events_total{type, outcome}``: merchant events in the event log by type and by
  what the answer was (applied, duplicate, not_referred, ...);
- ``partner_panel_payouts{state}`` and ``partner_panel_payouts_amount{state}``: payouts by state;
- ``partner_panel_click_backlog_seconds`` / ``partner_panel_click_backlog_pending``: how far the
  flusher is behind (tracking/backlog.py), on the host that answers the scrape.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator

from django.conf import settings
from django.db.models import Count, Sum
from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector


class PanelCollector(Collector):
    def collect(self) -> Iterator:
        from commissions.models import MerchantEvent
        from payouts.models import Payout
        from tracking.models import LinkMonthlyStats

        totals = LinkMonthlyStats.objects.aggregate(clicks=Sum("clicks"), unique=Sum("unique_clicks"))
        yield CounterMetricFamily("partner_panel_clicks", "Counted clicks.", value=totals["clicks"] or 0)
        yield CounterMetricFamily(
            "partner_panel_unique_clicks", "Unique clicks (first of a visitor on a link).", value=totals["unique"] or 0
        )

        events = CounterMetricFamily(
            "partner_panel_events", "Merchant events in the event log.", labels=["type", "outcome"]
        )
        for row in MerchantEvent.objects.values("type", "outcome").annotate(n=Count("pk")).order_by():
            events.add_metric([row["type"], row["outcome"]], row["n"])
        yield events

        counts = GaugeMetricFamily("partner_panel_payouts", "Payouts by state.", labels=["state"])
        amounts = GaugeMetricFamily(
            "partner_panel_payouts_amount", "Sum of payout amounts by state, program currency.", labels=["state"]
        )
        found = {
            row["status"]: row
            for row in Payout.objects.values("status").annotate(n=Count("pk"), total=Sum("amount")).order_by()
        }
        for state in Payout.Status.values:
            row = found.get(state, {"n": 0, "total": 0})
            counts.add_metric([state], row["n"])
            amounts.add_metric([state], float(row["total"] or 0))  # Prometheus values are floats
        yield counts
        yield amounts

        from tracking.backlog import click_backlog

        try:
            backlog = click_backlog()
        except Exception:  # noqa: BLE001 - the spool or stream cannot be read: leave the gauges out
            return
        yield GaugeMetricFamily(
            "partner_panel_click_backlog_seconds",
            "Age of the oldest click not yet flushed into the database (0: none waiting).",
            value=backlog.oldest_age_seconds or 0.0,
        )
        yield GaugeMetricFamily(
            "partner_panel_click_backlog_pending",
            "Clicks waiting to be flushed: bytes of this host's spool, or entries of the Redis stream.",
            value=backlog.pending,
        )


def _allowed(request: HttpRequest) -> bool:
    token = settings.METRICS_TOKEN
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if token and header.startswith("Bearer "):
        return hmac.compare_digest(header[len("Bearer ") :].encode(), token.encode())
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated and user.is_staff)


@never_cache
def metrics_view(request: HttpRequest) -> HttpResponse:
    if not _allowed(request):
        # As for any page that is not there: nothing tells a stranger the endpoint exists.
        return HttpResponse("Not found", status=404, content_type="text/plain")
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PanelCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
