"""Server time of every page: each partner page and JSON endpoint (every filter and sort of the
referrals and commissions pages, their last pages, the referral with the most payments, the
payouts page), the CSV exports (rows/s and the peak memory each adds to a fresh process) and the
admin changelists, measured in-process as bench/reports.py measures the reports (Django's test
client through the whole middleware stack, median / p95 and the queries of one request).

Runs alone on a database already loaded by ``loadbench`` (bench@example.com; the admin
changelists want ``loadbench --merchant-scale`` data), so the pages can be measured without the
whole ``make bench``; bench/run.py calls ``measure_partner``, ``measure_admin`` and
``measure_exports`` for BENCHMARKS.md.

    DATABASE_URL=... DEBUG=false SECRET_KEY=... DJANGO_SETTINGS_MODULE=bench.settings \\
        .venv/bin/python bench/pages.py [--samples 30] [--only partner,exports,admin] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")

BENCH_EMAIL = "bench@example.com"
ADMIN_EMAIL = "bench-admin@example.com"
# The targets (server time, ms): BENCHMARKS.md marks every row against them.
PARTNER_TARGET = {"median_ms": 25.0, "p95_ms": 40.0}
ADMIN_TARGET = {"median_ms": 150.0}


def _pages(partner) -> list[tuple[str, str, str, str]]:
    """(key, label, path, auth) of every partner page and JSON endpoint; auth is "session" or
    "bearer"."""
    from django.db.models import Count

    from commissions.lifecycle import STATE_LABELS
    from commissions.models import CommissionEntry, Referral
    from commissions.selectors import REFERRAL_SORTS, STATUS_LABELS
    from commissions.views import PAGE_SIZE as LIST_PAGE_SIZE
    from payouts.models import Payout
    from payouts.views import PAGE_SIZE as PAYOUT_PAGE_SIZE
    from tracking.dimensions import SOURCE_DIMENSIONS
    from tracking.rollups import program_today

    today = program_today()
    month = (today.replace(day=1)).isoformat()
    quarter = today.fromordinal(today.toordinal() - 89).isoformat()
    year = today.fromordinal(today.toordinal() - 364).isoformat()
    referrals = Referral.objects.filter(partner=partner).count()
    entries = CommissionEntry.objects.filter(partner=partner).count()
    payouts = Payout.objects.filter(partner=partner).count()
    top_link_id = _top_link_id(partner)
    busiest = (
        Referral.objects.filter(partner=partner)
        .annotate(n=Count("payments"))
        .order_by("-n", "pk")
        .values("pk", "n")[:1]
    )
    busiest = busiest[0] if busiest else {"pk": 0, "n": 0}
    last_referrals = max(1, math.ceil(referrals / LIST_PAGE_SIZE))
    last_entries = max(1, math.ceil(entries / LIST_PAGE_SIZE))
    last_payouts = max(1, math.ceil(payouts / PAYOUT_PAGE_SIZE))
    pages = [
        ("dashboard", "dashboard", "/dashboard/", "session"),
        ("dashboard_90", "dashboard, 90 days", "/dashboard/?period=90", "session"),
        ("resources", "resources", "/resources/", "session"),
        ("link_detail", "a link's page (its busiest link)", f"/resources/links/{top_link_id}/", "session"),
        ("performance", "performance, 30 days", "/performance/", "session"),
        ("performance_year", "performance, 365 days", f"/performance/?start={year}&end={today}", "session"),
        ("settings", "settings", "/settings/", "session"),
        ("referrals", f"referrals ({referrals:,})", "/referrals/", "session"),
        (
            "referrals_last",
            f"referrals, last page ({last_referrals})",
            f"/referrals/?page={last_referrals}",
            "session",
        ),
    ]
    for status, label in STATUS_LABELS.items():
        pages.append(
            (f"referrals_status_{status}", f"referrals, status {label}", f"/referrals/?status={status}", "session")
        )
    pages.append(("referrals_link", "referrals, one link (its busiest)", f"/referrals/?link={top_link_id}", "session"))
    pages.append(("referrals_dates", "referrals, signed up this quarter", f"/referrals/?start={quarter}", "session"))
    for sort in REFERRAL_SORTS:
        pages.append((f"referrals_sort_{sort}", f"referrals, sort {sort}", f"/referrals/?sort={sort}", "session"))
    pages.append(
        (
            "referrals_sort_paid_last",
            "referrals, sort -paid, last page",
            f"/referrals/?sort=-paid&page={last_referrals}",
            "session",
        )
    )
    pages.append(
        (
            "referrals_filtered_sorted",
            "referrals, paying + one link + sort commission, last page",
            f"/referrals/?status=paying&link={top_link_id}&sort=commission&page=9999",
            "session",
        )
    )
    pages += [
        (
            "referral_detail",
            f"a referral's timeline ({busiest['n']} payments)",
            f"/referrals/{busiest['pk']}/",
            "session",
        ),
        ("commissions", f"commissions ({entries:,} ledger rows)", "/commissions/", "session"),
        (
            "commissions_last",
            f"commissions, last page ({last_entries})",
            f"/commissions/?page={last_entries}",
            "session",
        ),
        ("commissions_middle", "commissions, middle page", f"/commissions/?page={last_entries // 2}", "session"),
        ("commissions_month", "commissions, this month", f"/commissions/?start={month}", "session"),
        ("commissions_quarter", "commissions, 90 days", f"/commissions/?start={quarter}&end={today}", "session"),
        (
            "commissions_quarter_last",
            "commissions, 90 days, last page",
            f"/commissions/?start={quarter}&end={today}&page=9999",
            "session",
        ),
    ]
    for state, label in STATE_LABELS.items():
        pages.append(
            (f"commissions_state_{state}", f"commissions, {label.lower()}", f"/commissions/?state={state}", "session")
        )
        pages.append(
            (
                f"commissions_state_{state}_last",
                f"commissions, {label.lower()}, last page",
                f"/commissions/?state={state}&page=9999",
                "session",
            )
        )
    for dimension in SOURCE_DIMENSIONS:
        pages.append(
            (
                f"sources_{dimension}",
                f"sources by {dimension}, 30 days",
                f"/performance/sources/?by={dimension}",
                "session",
            )
        )
    pages += [
        (
            "sources_referrer_year",
            "sources by referrer, 365 days",
            f"/performance/sources/?by=referrer&start={year}&end={today}",
            "session",
        ),
        (
            "sources_link",
            "sources by device, one link (its busiest), 365 days",
            f"/performance/sources/?by=device&link={top_link_id}&start={year}&end={today}",
            "session",
        ),
        ("sub_ids", "a link's sub-IDs (sub1), 30 days", f"/performance/links/{top_link_id}/", "session"),
        (
            "sub_ids_year",
            "a link's sub-IDs (sub2), 365 days",
            f"/performance/links/{top_link_id}/?by=sub2&start={year}&end={today}",
            "session",
        ),
        ("promo_codes", "promo codes tab, 30 days", "/performance/promo-codes/", "session"),
        ("payouts", f"payouts ({payouts:,})", "/payouts/", "session"),
        ("payouts_last", f"payouts, last page ({last_payouts})", f"/payouts/?page={last_payouts}", "session"),
        ("api_summary", "summary JSON", "/api/v1/partner/summary", "bearer"),
        ("api_trends", "trends JSON (30 days)", "/api/v1/partner/trends", "bearer"),
        ("api_trends_90", "trends JSON (90 days)", f"/api/v1/partner/trends?start={quarter}&end={today}", "bearer"),
        ("api_trends_year", "trends JSON (365 days)", f"/api/v1/partner/trends?start={year}&end={today}", "bearer"),
        ("api_links", "links JSON", "/api/v1/partner/links", "bearer"),
        ("api_links_30", "links JSON (30 days)", f"/api/v1/partner/links?start={month}&end={today}", "bearer"),
        ("api_links_session", "links JSON (session)", "/api/v1/partner/links", "session"),
    ]
    return pages


def _client_for(user):
    from django.test import Client

    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return client


def measure_partner(*, samples: int) -> list[dict]:
    from django.db import connection

    from bench.reports import View, time_views
    from partners.models import Partner
    from partners.services import api_token_create

    partner = Partner.objects.select_related("user").get(user__email=BENCH_EMAIL)
    client = _client_for(partner.user)
    token = api_token_create(partner=partner, name="bench pages").secret
    headers = {"session": {}, "bearer": {"Authorization": f"Bearer {token}"}}
    views = [View(key, label, path, headers[auth]) for key, label, path, auth in _pages(partner)]
    rows = []
    for server_time in time_views(client, views, samples=samples, warmup=3):
        timed = server_time.as_dict()
        timed["target_met"] = (
            timed["median_ms"] <= PARTNER_TARGET["median_ms"] and timed["p95_ms"] <= PARTNER_TARGET["p95_ms"]
        )
        rows.append(timed)
        _log(timed)
    connection.close()
    return rows


# --- the admin ---------------------------------------------------------------------------------


def _admin_user():
    from partners.models import User

    user = User.objects.filter(email=ADMIN_EMAIL).first()
    if user is None:
        user = User.objects.create_superuser(email=ADMIN_EMAIL, password=None)
    return user


def _admin_pages() -> list[tuple[str, str, str]]:
    from commissions.models import CommissionEntry, MerchantEvent
    from payouts.models import Payout

    email = (
        Payout.objects.order_by("-pk").values_list("partner__user__email", flat=True).first() or "nobody@example.com"
    )
    pages = [
        ("admin_payouts", "payouts changelist", "/admin/payouts/payout/"),
        ("admin_payouts_search", "payouts, search by email", f"/admin/payouts/payout/?q={email}"),
    ]
    for status in Payout.Status:
        pages.append(
            (
                f"admin_payouts_{status.value}",
                f"payouts, status {status.label}",
                f"/admin/payouts/payout/?status__exact={status.value}",
            )
        )
    pages += [
        ("admin_partners", "partners changelist", "/admin/partners/partner/"),
        ("admin_partners_search", "partners, search by email", f"/admin/partners/partner/?q={email}"),
        ("admin_ledger", "commission ledger changelist", "/admin/commissions/commissionentry/"),
        (
            "admin_ledger_reversals",
            "commission ledger, reversals",
            f"/admin/commissions/commissionentry/?kind__exact={CommissionEntry.Kind.REVERSAL.value}",
        ),
        ("admin_ledger_search", "commission ledger, search by email", f"/admin/commissions/commissionentry/?q={email}"),
        ("admin_events", "event log changelist", "/admin/commissions/merchantevent/"),
        (
            "admin_events_refunds",
            "event log, refunds",
            f"/admin/commissions/merchantevent/?type__exact={MerchantEvent.Type.PAYMENT_REFUNDED.value}",
        ),
        (
            "admin_events_duplicates",
            "event log, outcome duplicate",
            f"/admin/commissions/merchantevent/?outcome__exact={MerchantEvent.Outcome.DUPLICATE.value}",
        ),
    ]
    return pages


def measure_admin(*, samples: int) -> list[dict]:
    from django.db import connection

    from bench.reports import View, time_views

    client = _client_for(_admin_user())
    views = [View(key, label, path, {}) for key, label, path in _admin_pages()]
    rows = []
    for server_time in time_views(client, views, samples=samples, warmup=2):
        timed = server_time.as_dict()
        timed["target_met"] = timed["median_ms"] <= ADMIN_TARGET["median_ms"]
        rows.append(timed)
        _log(timed)
    connection.close()
    return rows


# --- CSV exports ---------------------------------------------------------------------------------

EXPORTS = (
    ("commissions_csv", "commissions CSV (every ledger row)", "/commissions/export.csv"),
    ("referrals_csv", "referrals CSV", "/referrals/export.csv"),
    ("payouts_csv", "payouts CSV", "/payouts/export.csv"),
    ("performance_csv", "performance CSV (30 days)", "/performance/export.csv"),
    ("commissions_paid_csv", "commissions CSV, state paid", "/commissions/export.csv?state=paid"),
    ("promo_codes_csv", "promo codes CSV (30 days)", "/performance/promo-codes/export.csv"),
    ("sub_ids_csv", "a link's sub-IDs CSV (its busiest link, 30 days)", "/performance/links/{top_link}/export.csv"),
)


def _top_link_id(partner) -> int:
    """The partner's link with the most referrals (the busiest)."""
    from django.db.models import Count

    from tracking.models import Link

    top = Link.objects.filter(partner=partner).annotate(n=Count("referrals")).order_by("-n", "pk").values_list("pk")[:1]
    return top[0][0] if top else 0


def _export_in_this_process(path: str) -> dict:
    """One export streamed to nowhere: rows, seconds, and the peak resident memory of this
    process before and after (KiB; Linux reports ru_maxrss in KiB)."""
    from django.db import connection

    from partners.models import Partner

    partner = Partner.objects.select_related("user").get(user__email=BENCH_EMAIL)
    client = _client_for(partner.user)
    # Everything the first request imports and caches, before the baseline is read.
    client.get("/payouts/")
    if "{top_link}" in path:
        path = path.format(top_link=_top_link_id(partner))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    response = client.get(path)
    lines = bytes_out = 0
    for chunk in response.streaming_content:
        lines += chunk.count(b"\n")
        bytes_out += len(chunk)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    connection.close()
    rows = max(0, lines - 1)  # the header line
    return {
        "status": response.status_code,
        "streaming": response.streaming,
        "rows": rows,
        "bytes": bytes_out,
        "seconds": round(seconds, 3),
        "rows_per_s": round(rows / seconds) if seconds else 0,
        "peak_rss_before_mib": round(before / 1024, 1),
        "peak_rss_after_mib": round(after / 1024, 1),
        "peak_rss_growth_mib": round((after - before) / 1024, 1),
    }


def measure_exports() -> list[dict]:
    """Each export in a fresh process, so its peak memory is its own."""
    rows = []
    for key, label, path in EXPORTS:
        out = subprocess.run(
            [sys.executable, __file__, "--export", path],
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        result = json.loads(out.strip().splitlines()[-1])
        rows.append({"key": key, "label": label, "path": path, **result})
        print(
            f"  {label:45} {result['rows']:>8,} rows {result['seconds']:7.2f} s {result['rows_per_s']:>9,} rows/s "
            f"peak RSS {result['peak_rss_before_mib']} -> {result['peak_rss_after_mib']} MiB",
            flush=True,
        )
    return rows


def _log(row: dict) -> None:
    flag = "" if row.get("target_met", True) else "  OVER TARGET"
    print(
        f"  {row['label'][:58]:58} {row['median_ms']:7.1f} {row['p95_ms']:7.1f} ms {row['queries']:3} q "
        f"{row['status']}{flag}",
        flush=True,
    )


def markdown(result: dict) -> list[str]:
    """BENCHMARKS.md's page section from ``main``'s or bench/run.py's results."""
    lines = []
    add = lines.append
    if result.get("partner"):
        add(
            "Partner pages and JSON endpoints on the loadbench account (target: median ≤ 25 ms, p95 ≤ 40 ms "
            "server time):"
        )
        add("")
        add("| page | path | median ms | p95 ms | queries | status | target |")
        add("|---|---|---|---|---|---|---|")
        for row in result["partner"]:
            add(
                f"| {row['label']} | `{row['path']}` | {row['median_ms']:.1f} | {row['p95_ms']:.1f} | {row['queries']} "
                f"| {row['status']} | {'met' if row['target_met'] else '**missed**'} |"
            )
        add("")
    if result.get("exports"):
        add(
            "CSV exports, each streamed in a fresh process (rows/s over the whole download; peak resident memory "
            "of the process before the request and after the last row):"
        )
        add("")
        add("| export | rows | seconds | rows/s | peak RSS before → after (MiB) |")
        add("|---|---|---|---|---|")
        for row in result["exports"]:
            add(
                f"| {row['label']} | {row['rows']:,} | {row['seconds']:.2f} | {row['rows_per_s']:,} "
                f"| {row['peak_rss_before_mib']} → {row['peak_rss_after_mib']} |"
            )
        add("")
    if result.get("admin"):
        add("Admin changelists at merchant scale (`loadbench --merchant-scale`; target: median ≤ 150 ms):")
        add("")
        add("| changelist | median ms | p95 ms | queries | status | target |")
        add("|---|---|---|---|---|---|")
        for row in result["admin"]:
            add(
                f"| {row['label']} | {row['median_ms']:.1f} | {row['p95_ms']:.1f} | {row['queries']} "
                f"| {row['status']} | {'met' if row['target_met'] else '**missed**'} |"
            )
        add("")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--only", default="partner,exports,admin", help="Comma-separated: partner, exports, admin.")
    parser.add_argument("--json", type=Path, default=None, help="Also write the results here.")
    parser.add_argument("--markdown", action="store_true", help="Print the BENCHMARKS.md page section.")
    parser.add_argument("--export", default=None, help=argparse.SUPPRESS)  # one export, in this process
    opts = parser.parse_args()

    import django

    django.setup()
    if opts.export:
        print(json.dumps(_export_in_this_process(opts.export)))
        return
    parts = set(opts.only.split(","))
    result: dict = {}
    if "partner" in parts:
        print("partner pages (median, p95, queries, status):", flush=True)
        result["partner"] = measure_partner(samples=opts.samples)
    if "exports" in parts:
        print("CSV exports:", flush=True)
        result["exports"] = measure_exports()
    if "admin" in parts:
        print("admin changelists:", flush=True)
        result["admin"] = measure_admin(samples=opts.samples)
    if opts.json:
        opts.json.write_text(json.dumps(result, indent=2, default=str))
    if opts.markdown:
        print("\n".join(markdown(result)))


if __name__ == "__main__":
    main()
