"""Server time of the reports, measured in-process (Django's test client through the whole
middleware stack, URL resolving, the view and its template, on the bench database), and the
same numbers computed from the raw rows by one SQL statement each, timed and compared.

Needs Django set up (bench/run.py does it with the bench environment)."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection, reset_queries
from django.db.models import Q, Sum
from django.test import Client
from django.test.utils import CaptureQueriesContext

from commissions.models import CommissionEntry, Referral
from partners.models import Partner
from tracking.link_performance import link_performance
from tracking.models import Click, DailyLinkStats, Link
from tracking.reports import partner_summary, partner_trends
from tracking.rollups import day_start, program_today


@dataclass(frozen=True)
class ServerTime:
    key: str
    label: str
    path: str
    samples: int
    median_ms: float
    p95_ms: float
    queries: int
    status: int

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass(frozen=True)
class View:
    key: str
    label: str
    path: str
    headers: dict[str, str]


def time_views(client: Client, views: list[View], *, samples: int, warmup: int = 10) -> list[ServerTime]:
    """Median and p95 server time of each view, over ``samples`` rounds that request every view
    once, in turn. Interleaved, a slow spell of the machine (a busy neighbour on a shared VM) is
    spread over all the views instead of landing on the few timed during it, so the medians
    compare views rather than moments. The queries of one request are counted after the
    warm-up."""
    statuses: dict[str, int] = {}
    for view in views:
        for _ in range(warmup):
            statuses[view.key] = client.get(view.path, headers=view.headers).status_code
    queries: dict[str, int] = {}
    for view in views:
        reset_queries()  # the request resets the log too: start the capture from an empty one
        with CaptureQueriesContext(connection) as captured:
            client.get(view.path, headers=view.headers)
        # Read now: captured_queries reads the connection's log lazily, and it is reset below.
        queries[view.key] = len(captured.captured_queries)
    timings: dict[str, list[float]] = {view.key: [] for view in views}
    for _ in range(samples):
        for view in views:
            started = time.perf_counter()
            response = client.get(view.path, headers=view.headers)
            timings[view.key].append((time.perf_counter() - started) * 1000)
            statuses[view.key] = response.status_code
            reset_queries()
    results = []
    for view in views:
        times = sorted(timings[view.key])
        results.append(
            ServerTime(
                key=view.key,
                label=view.label,
                path=view.path,
                samples=samples,
                median_ms=statistics.median(times),
                p95_ms=times[min(len(times) - 1, round(0.95 * (len(times) - 1)))],
                queries=queries[view.key],
                status=statuses[view.key],
            )
        )
    return results


# --- the same numbers from the raw rows -------------------------------------------------------


def _tables() -> dict[str, str]:
    quote = connection.ops.quote_name
    return {
        "click": quote(Click._meta.db_table),
        "link": quote(Link._meta.db_table),
        "referral": quote(Referral._meta.db_table),
        "entry": quote(CommissionEntry._meta.db_table),
    }


def _timed(sql: str, params: dict) -> tuple[float, list[tuple]]:
    with connection.cursor() as cursor:
        started = time.perf_counter()
        cursor.execute(sql, params)
        rows = cursor.fetchall()
        return (time.perf_counter() - started) * 1000, rows


def _run_twice(sql: str, params: dict) -> tuple[float, float, list[tuple]]:
    """(first run ms, second run ms, rows): the first may read from disk, the second from the
    page cache; the comparison uses the faster, warm one."""
    first, rows = _timed(sql, params)
    second, _ = _timed(sql, params)
    return first, second, rows


@dataclass(frozen=True)
class RawComparison:
    key: str
    label: str
    rollup_ms: float  # the report's own query over the rollups (warm)
    raw_first_ms: float
    raw_ms: float  # the same numbers from raw rows (warm)
    numbers_match: bool

    @property
    def speedup(self) -> float:
        return self.raw_ms / self.rollup_ms if self.rollup_ms else 0.0

    def as_dict(self) -> dict:
        return {**self.__dict__, "speedup": self.speedup}


def _time_call(fn, repeat: int = 5) -> tuple[float, object]:
    result = None
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings), result


def raw_summary(partner: Partner) -> RawComparison:
    """The summary's rollup-derived numbers (commission, unique clicks of the last 30 days)
    from the ledger and the raw clicks. The referral counts and the balance are read from raw
    rows by the report itself, so they are the same work either way."""
    t = _tables()
    today = program_today()
    params = {
        "p": partner.pk,
        "since": day_start(today - timedelta(days=29)),
        "until": day_start(today + timedelta(days=1)),
    }
    sql = f"""
        SELECT
          (SELECT COALESCE(SUM(e.amount), 0) FROM {t["entry"]} e WHERE e.partner_id = %(p)s),
          (SELECT COUNT(*) FROM {t["click"]} c JOIN {t["link"]} l ON l.id = c.link_id
            WHERE l.partner_id = %(p)s AND c.is_unique AND c.created_at >= %(since)s AND c.created_at < %(until)s)
    """
    first, warm, rows = _run_twice(sql, params)
    summary = partner_summary(partner)
    since = today - timedelta(days=29)
    # The summary's own rollup aggregate for these two numbers (tracking.reports.partner_summary).
    rollup_ms, totals = _time_call(
        lambda: DailyLinkStats.objects.filter(partner=partner).aggregate(
            commission=Sum("commission"), unique=Sum("unique_clicks", filter=Q(day__gte=since, day__lte=today))
        )
    )
    commission, unique = rows[0]
    match = Decimal(commission) == summary.commission == (totals["commission"] or 0) and int(
        unique
    ) == summary.unique_clicks_30d == (totals["unique"] or 0)
    return RawComparison("summary", "summary: commission, unique clicks (30 days)", rollup_ms, first, warm, match)


def raw_trends(partner: Partner, start: date, end: date, key: str, label: str) -> RawComparison:
    t = _tables()
    params = {
        "p": partner.pk,
        "tz": settings.TIME_ZONE,
        "start": start,
        "end": end,
        "since": day_start(start),
        "until": day_start(end + timedelta(days=1)),
    }

    def day(column: str) -> str:
        return f"({column} AT TIME ZONE %(tz)s)::date"

    sql = f"""
        WITH u AS (
          SELECT {day("c.created_at")} AS d, COUNT(*) AS n FROM {t["click"]} c JOIN {t["link"]} l ON l.id = c.link_id
          WHERE l.partner_id = %(p)s AND c.is_unique AND c.created_at >= %(since)s AND c.created_at < %(until)s
          GROUP BY 1),
        tr AS (
          SELECT {day("signed_up_at")} AS d, COUNT(*) AS n FROM {t["referral"]}
          WHERE partner_id = %(p)s AND signed_up_at >= %(since)s AND signed_up_at < %(until)s GROUP BY 1),
        su AS (
          SELECT {day("first_paid_at")} AS d, COUNT(*) AS n FROM {t["referral"]}
          WHERE partner_id = %(p)s AND first_paid_at >= %(since)s AND first_paid_at < %(until)s GROUP BY 1),
        co AS (
          SELECT {day("earned_at")} AS d, SUM(amount) AS n FROM {t["entry"]}
          WHERE partner_id = %(p)s AND earned_at >= %(since)s AND earned_at < %(until)s GROUP BY 1)
        SELECT g.d::date, COALESCE(co.n, 0), COALESCE(tr.n, 0), COALESCE(su.n, 0), COALESCE(u.n, 0)
        FROM generate_series(%(start)s::date, %(end)s::date, interval '1 day') AS g(d)
        LEFT JOIN u ON u.d = g.d::date LEFT JOIN tr ON tr.d = g.d::date
        LEFT JOIN su ON su.d = g.d::date LEFT JOIN co ON co.d = g.d::date
        ORDER BY 1
    """
    first, warm, rows = _run_twice(sql, params)
    rollup_ms, trends = _time_call(lambda: partner_trends(partner, start, end))
    rollup_rows = list(
        zip(
            trends.days,
            trends.commission,
            trends.new_trials,
            trends.new_subscriptions,
            trends.unique_clicks,
            strict=True,
        )
    )
    raw_rows = [(d, Decimal(c).quantize(Decimal("0.01")), int(tr), int(s), int(u)) for d, c, tr, s, u in rows]
    return RawComparison(key, label, rollup_ms, first, warm, raw_rows == rollup_rows)


def raw_performance(partner: Partner, start: date, end: date, key: str, label: str) -> RawComparison:
    t = _tables()
    params = {"p": partner.pk, "since": day_start(start), "until": day_start(end + timedelta(days=1))}
    sql = f"""
        WITH c AS (
          SELECT link_id, COUNT(*) AS n, COUNT(*) FILTER (WHERE is_unique) AS u FROM {t["click"]}
          WHERE link_id IN (SELECT id FROM {t["link"]} WHERE partner_id = %(p)s)
            AND created_at >= %(since)s AND created_at < %(until)s
          GROUP BY link_id),
        tr AS (
          SELECT link_id, COUNT(*) AS n FROM {t["referral"]}
          WHERE partner_id = %(p)s AND signed_up_at >= %(since)s AND signed_up_at < %(until)s GROUP BY link_id),
        su AS (
          SELECT link_id, COUNT(*) AS n FROM {t["referral"]}
          WHERE partner_id = %(p)s AND first_paid_at >= %(since)s AND first_paid_at < %(until)s GROUP BY link_id),
        co AS (
          SELECT r.link_id, SUM(e.amount) AS n FROM {t["entry"]} e JOIN {t["referral"]} r ON r.id = e.referral_id
          WHERE e.partner_id = %(p)s AND e.earned_at >= %(since)s AND e.earned_at < %(until)s GROUP BY r.link_id)
        SELECT l.id, COALESCE(c.n, 0), COALESCE(c.u, 0), COALESCE(tr.n, 0), COALESCE(su.n, 0), COALESCE(co.n, 0)
        FROM {t["link"]} l
        LEFT JOIN c ON c.link_id = l.id LEFT JOIN tr ON tr.link_id = l.id
        LEFT JOIN su ON su.link_id = l.id LEFT JOIN co ON co.link_id = l.id
        WHERE l.partner_id = %(p)s
    """
    first, warm, rows = _run_twice(sql, params)
    rollup_ms, report = _time_call(lambda: link_performance(partner, start, end))
    rollup_rows = {r.link.pk: (r.clicks, r.unique_clicks, r.trials, r.subscriptions, r.commission) for r in report.rows}
    raw_rows = {
        link_id: (int(n), int(u), int(tr), int(su), Decimal(co).quantize(Decimal("0.01")))
        for link_id, n, u, tr, su, co in rows
    }
    return RawComparison(key, label, rollup_ms, first, warm, raw_rows == rollup_rows)


def measure(partner: Partner, session_cookie: str, token: str, *, samples: int) -> dict:
    """Server times of every report and the raw-row comparisons."""
    today = program_today()
    year_start = today - timedelta(days=364)
    client = Client()
    client.cookies["sessionid"] = session_cookie
    session = {}
    bearer = {"Authorization": f"Bearer {token}"}
    views = [
        ("dashboard", "dashboard page", "/dashboard/", session),
        ("summary", "summary JSON", "/api/v1/partner/summary", bearer),
        ("trends", "trends JSON (30 days)", "/api/v1/partner/trends", bearer),
        ("performance", "performance report (30 days)", "/performance/", session),
        (
            "performance_year",
            "performance report (365 days)",
            f"/performance/?start={year_start.isoformat()}&end={today.isoformat()}",
            session,
        ),
        (
            "trends_year",
            "trends JSON (365 days)",
            f"/api/v1/partner/trends?start={year_start.isoformat()}&end={today.isoformat()}",
            bearer,
        ),
    ]
    server_times = time_views(client, [View(*view) for view in views], samples=samples)
    month_start = today - timedelta(days=29)
    raw = [
        raw_summary(partner),
        raw_trends(partner, month_start, today, "trends", "trends, 30 days"),
        raw_trends(partner, year_start, today, "trends_year", "trends, 365 days"),
        raw_performance(partner, month_start, today, "performance", "per-link performance, 30 days"),
        raw_performance(partner, year_start, today, "performance_year", "per-link performance, 365 days"),
    ]
    connection.close()
    return {"server_times": [s.as_dict() for s in server_times], "raw": [r.as_dict() for r in raw]}
