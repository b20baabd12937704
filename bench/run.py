"""`make bench`: the app under its production server configuration on PostgreSQL and Redis,
loaded with wrk, and BENCHMARKS.md written from what was measured in this run.

Steps: a fresh database (``pp_bench``, dropped and created), migrations, ``loadbench`` data,
the app started under each server configuration compared (DEBUG off, the app's settings and
middleware, plus the bare reference view of bench/urls.py), a click-buffer consumer beside
them, warm-up, interleaved rounds of short wrk runs (medians reported), a py-spy profile of the
click path, checks that nothing was lost (clicks, events, rollups), the reports' server time
in-process against the same numbers from raw rows, and the 100,000-partner balance pass on a
second database (``pp_bench_balances``).

    .venv/bin/python bench/run.py [--quick] [--duration 5] [--rounds 5] [--clicks N] ...

Connection settings: BENCH_PG_URL (server, default postgres://postgres@127.0.0.1:5432) and
BENCH_REDIS_URL (default redis://127.0.0.1:6379/7: the bench empties that Redis database).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import random
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import loadgen, profiling, servers  # noqa: E402
from bench.events import EventBatch, write_batch  # noqa: E402
from bench.servers import ServerConfig  # noqa: E402

RESULTS = Path(os.environ.get("BENCH_RESULTS_DIR") or ROOT / "bench" / "results")
# BENCH_DB_NAME: a database of its own for one of several checkouts measuring on one server.
DB_NAME = os.environ.get("BENCH_DB_NAME", "pp_bench")
BALANCE_DB_NAME = "pp_bench_balances"
ADMIN_DB_NAME = "pp_bench_admin"  # loadbench --merchant-scale, for the admin changelists
PY = sys.executable

# The server configurations compared on the bare view and the click path. PRODUCTION is what
# `make serve` runs (config/gunicorn.conf.py defaults); the others are the evidence for it.
GUNICORN_SYNC = ServerConfig("gunicorn-sync-2", "gunicorn, 2 sync workers", "gunicorn", workers=2, worker_class="sync")
GUNICORN_GTHREAD = ServerConfig(
    "gunicorn-gthread-2x4",
    "gunicorn, 2 gthread workers × 4 threads",
    "gunicorn",
    workers=2,
    threads=4,
    worker_class="gthread",
)
# What `make serve` runs (Makefile: granian --workers 2 --blocking-threads 2).
GRANIAN = ServerConfig("granian-2x2", "granian, 2 WSGI workers × 2 threads", "granian", workers=2, threads=2)
PRODUCTION = GRANIAN
COMPARED = (GUNICORN_SYNC, GUNICORN_GTHREAD, GRANIAN)


def _production_with(key: str, what: str, app_env: dict[str, str]) -> ServerConfig:
    """The production server configuration with other app settings (the click-path variants)."""
    return dataclasses.replace(PRODUCTION, key=key, label=f"{PRODUCTION.label}, {what}", app_env=app_env)


DIRECT = _production_with("production-direct", "CLICK_BUFFER off (direct writes)", {"CLICK_BUFFER": "false"})
# The other buffer: each click XADDed to a Redis stream (the production setting before the spool).
REDIS_STREAM = _production_with("production-redis", "CLICK_BUFFER=redis (Redis stream)", {"CLICK_BUFFER": "redis"})
VARIANTS = (REDIS_STREAM, DIRECT)

ANALYSIS_START = "<!-- analysis:start (hand-written, kept by bench/run.py across runs) -->"
ANALYSIS_END = "<!-- analysis:end -->"


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- configuration ------------------------------------------------------------------------


@dataclass
class Options:
    clicks: int
    referrals: int
    payments: int
    partners: int
    duration: float
    warmup: float
    rounds: int
    balance_partners: int
    report_samples: int
    profile_seconds: float
    output: Path
    reuse: bool
    payouts: int = 500
    whale_payments: int = 400
    page_samples: int = 30
    merchant_scale_factor: float = 1.0
    argv: list[str] = field(default_factory=list)


def parse_args() -> Options:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clicks", type=int, default=1_000_000)
    parser.add_argument("--referrals", type=int, default=10_000)
    parser.add_argument("--payments", type=int, default=100_000)
    parser.add_argument("--partners", type=int, default=1_000, help="Other partners besides the measured one.")
    parser.add_argument("--duration", type=float, default=5.0, help="Seconds per measured wrk run.")
    parser.add_argument("--warmup", type=float, default=2.0, help="Seconds of warm-up per scenario and server.")
    parser.add_argument("--rounds", type=int, default=5, help="Interleaved rounds (medians are reported).")
    parser.add_argument("--balance-partners", type=int, default=100_000)
    parser.add_argument("--report-samples", type=int, default=100, help="Timed requests per report.")
    parser.add_argument("--profile-seconds", type=float, default=8.0, help="py-spy sampling (0: no profile).")
    parser.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    parser.add_argument("--reuse", action="store_true", help="Keep the loaded pp_bench database (development).")
    parser.add_argument("--payouts", type=int, default=500, help="Payouts of the measured partner.")
    parser.add_argument("--whale-payments", type=int, default=400, help="Payments of the one long-timeline referral.")
    parser.add_argument("--page-samples", type=int, default=30, help="Timed requests per page (bench/pages.py).")
    parser.add_argument("--merchant-scale-factor", type=float, default=1.0, help="Admin changelists' data scale.")
    parser.add_argument(
        "--quick", action="store_true", help="Small data and short runs, to try the bench (not for BENCHMARKS.md)."
    )
    args = parser.parse_args()
    if args.quick:
        args.clicks, args.referrals, args.payments, args.partners = 50_000, 1_000, 5_000, 50
        args.duration, args.warmup, args.rounds = 2.0, 1.0, 1
        args.balance_partners, args.report_samples, args.profile_seconds = 5_000, 20, 3.0
        args.payouts, args.whale_payments, args.page_samples, args.merchant_scale_factor = 50, 100, 5, 0.01
        if args.output == ROOT / "BENCHMARKS.md":
            args.output = RESULTS / "BENCHMARKS-quick.md"
    return Options(
        clicks=args.clicks,
        referrals=args.referrals,
        payments=args.payments,
        partners=args.partners,
        duration=args.duration,
        warmup=args.warmup,
        rounds=args.rounds,
        balance_partners=args.balance_partners,
        report_samples=args.report_samples,
        profile_seconds=args.profile_seconds,
        output=args.output,
        reuse=args.reuse,
        payouts=args.payouts,
        whale_payments=args.whale_payments,
        page_samples=args.page_samples,
        merchant_scale_factor=args.merchant_scale_factor,
        argv=sys.argv[1:],
    )


def bench_env() -> dict[str, str]:
    pg = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432").rstrip("/")
    secrets_file = RESULTS / "secrets.json"
    # Stable across --reuse runs (signed visitor cookies, sessions), new for every fresh clone.
    if secrets_file.exists():
        keys = json.loads(secrets_file.read_text())
    else:
        keys = {"SECRET_KEY": secrets.token_urlsafe(50), "EVENTS_SIGNING_SECRET": "whsec_" + secrets.token_hex(24)}
        secrets_file.write_text(json.dumps(keys))
    return {
        "BENCH_PG_URL": pg,
        "DATABASE_URL": f"{pg}/{DB_NAME}",
        "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/7"),
        "DEBUG": "false",
        "DEVTOOLS": "true",  # manage.py loadbench
        "SECRET_KEY": keys["SECRET_KEY"],
        "EVENTS_SIGNING_SECRET": keys["EVENTS_SIGNING_SECRET"],
        "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
        # Plain http on loopback: the production settings otherwise redirect to https.
        "SECURE_SSL_REDIRECT": "false",
        # Production settings need a delivering mail backend; the bench sends no email.
        "EMAIL_URL": "smtp://127.0.0.1:25",
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "LOG_LEVEL": "WARNING",
        "CLICK_BUFFER": "spool",
        "CLICK_SPOOL_DIR": str(RESULTS / "click-spool"),
        "PYTHONDONTWRITEBYTECODE": "1",
    }


# --- helpers -------------------------------------------------------------------------------


def manage(*args: str, capture: bool = False) -> tuple[float, str]:
    started = time.monotonic()
    result = subprocess.run(
        [PY, "manage.py", *args],
        cwd=ROOT,
        check=True,
        text=True,
        stdout=subprocess.PIPE if capture else None,
    )
    return time.monotonic() - started, result.stdout or ""


def pg_admin(sql: list[str], dbname: str = "postgres") -> None:
    import psycopg

    with psycopg.connect(f"{os.environ['BENCH_PG_URL']}/{dbname}", autocommit=True) as conn:
        for statement in sql:
            conn.execute(statement)


def redis_client():
    import redis

    return redis.Redis.from_url(os.environ["REDIS_URL"])


def machine_info() -> dict:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = next(
        int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")
    )
    return {
        "nproc": os.cpu_count(),
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "cpu": cpu,
        "kernel": platform.release(),
        "os": platform.platform(terse=True),
        "load_at_start": os.getloadavg(),
    }


def versions() -> dict:
    import psycopg

    out = {"python": platform.python_version()}
    for package in ("django", "psycopg", "gunicorn", "granian", "redis", "celery", "django-ninja", "py-spy"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            out[package] = "not installed"
    out["wrk"] = loadgen.wrk_version()
    with psycopg.connect(f"{os.environ['BENCH_PG_URL']}/postgres") as conn:
        out["postgresql"] = conn.execute("SHOW server_version").fetchone()[0]
        out["pg_autovacuum"] = conn.execute("SHOW autovacuum").fetchone()[0]
    info = redis_client().info("server")
    persistence = redis_client().info("persistence")
    out["redis-server"] = info.get("redis_version", "?")
    out["redis_aof"] = "on" if persistence.get("aof_enabled") else "off"
    return out


class Consumers:
    """The click flushers beside the servers: one for the spool (the production buffer) and one
    for the Redis stream (the REDIS_STREAM variant), as `make flusher` runs them."""

    def __init__(self, env: dict[str, str]) -> None:
        self.processes = [
            _start_consumer({**env, "CLICK_BUFFER": mode}, f"flush_clicks-{mode}.log") for mode in ("spool", "redis")
        ]

    def alive(self) -> bool:
        return all(process.poll() is None for process in self.processes)

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            process.wait(timeout=30)


def start_consumer(env: dict[str, str]) -> Consumers:
    return Consumers(env)


def _start_consumer(env: dict[str, str], log_name: str) -> subprocess.Popen:
    log_file = (RESULTS / log_name).open("wb")
    return subprocess.Popen(
        [PY, "manage.py", "flush_clicks", "--loop", "--block-ms", "200"],
        cwd=ROOT,
        env=env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait_for_drain(timeout: float = 180.0) -> float:
    """Wait until the click spool is flushed, the click stream is empty and nothing is pending;
    return the seconds waited."""
    from tracking.clicks import GROUP, STREAM_KEY
    from tracking.spool import pending_bytes

    client = redis_client()
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        length = client.xlen(STREAM_KEY)
        try:
            pending = client.xpending(STREAM_KEY, GROUP)["pending"]
        except Exception:  # the group is created by the first flush
            pending = 0
        if length == 0 and pending == 0 and pending_bytes() == 0:
            return time.monotonic() - started
        time.sleep(0.2)
    raise RuntimeError(f"The click buffer did not drain in {timeout:.0f} s")


# --- the scenarios -------------------------------------------------------------------------


@dataclass
class Fixtures:
    partner_id: int
    codes: list[str]
    session: str
    token: str
    click_ids: list[str]
    customer_ids: list[str]
    click_data: Path


def prepare_fixtures() -> Fixtures:
    from django.db import connection
    from django.test import Client
    from django.utils import timezone

    from commissions.models import Referral
    from partners.models import Partner
    from partners.services import api_token_create
    from tracking.models import Click, Link
    from tracking.visitors import visitor_cookie_value

    partner = Partner.objects.select_related("user").get(user__email="bench@example.com")
    codes = list(
        Link.objects.filter(partner=partner, is_active=True).order_by("pk").values_list("code", flat=True)[:100]
    )
    client = Client()
    client.force_login(partner.user, backend="django.contrib.auth.backends.ModelBackend")
    session = client.cookies["sessionid"].value
    token = api_token_create(partner=partner, name=f"bench {datetime.now(UTC):%Y-%m-%d %H:%M}").secret
    recent = timezone.now() - timedelta(days=80)
    click_ids = [
        str(pk)
        for pk in Click.objects.filter(link__partner=partner, created_at__gte=recent).values_list("pk", flat=True)[
            :20_000
        ]
    ]
    customer_ids = list(Referral.objects.filter(partner=partner).values_list("customer_id", flat=True)[:10_000])
    rng = random.Random(7)
    visitors = [visitor_cookie_value(f"{rng.getrandbits(128):032x}") for _ in range(400)]
    click_data = RESULTS / "click_data.lua"

    def lua_list(values: list[str]) -> str:
        return "{" + ",".join(json.dumps(v) for v in values) + "}"

    click_data.write_text(f"return {{codes = {lua_list(codes)}, visitors = {lua_list(visitors)}}}\n")
    connection.close()
    if not click_ids or not customer_ids:
        raise RuntimeError("loadbench left no recent clicks or referrals for the measured partner")
    return Fixtures(partner.pk, codes, session, token, click_ids, customer_ids, click_data)


@dataclass
class Scenario:
    key: str
    label: str
    script: str
    env: dict[str, str] = field(default_factory=dict)
    is_click: bool = False
    is_events: bool = False


def scenarios(fx: Fixtures) -> dict[str, Scenario]:
    session = f"Cookie: sessionid={fx.session}"
    bearer = f"Authorization: Bearer {fx.token}"
    return {
        "bare": Scenario("bare", "bare Django 302 + cookie (no database)", "get.lua", {"BENCH_PATH": "/bench/bare"}),
        "click": Scenario(
            "click",
            "click redirect /r/<code> (half new visitors, 100 links)",
            "click.lua",
            {"BENCH_CLICK_DATA": str(fx.click_data)},
            is_click=True,
        ),
        "events": Scenario("events", "events API (sign-ups + payments, 10 % replays)", "events.lua", is_events=True),
        "dashboard": Scenario(
            "dashboard", "dashboard page (session)", "get.lua", {"BENCH_PATH": "/dashboard/", "BENCH_HEADER": session}
        ),
        "summary": Scenario(
            "summary",
            "summary JSON (bearer token)",
            "get.lua",
            {"BENCH_PATH": "/api/v1/partner/summary", "BENCH_HEADER": bearer},
        ),
        "trends": Scenario(
            "trends",
            "trends JSON, 30 days (bearer token)",
            "get.lua",
            {"BENCH_PATH": "/api/v1/partner/trends", "BENCH_HEADER": bearer},
        ),
        "performance": Scenario(
            "performance",
            "performance report, 30 days (session)",
            "get.lua",
            {"BENCH_PATH": "/performance/", "BENCH_HEADER": session},
        ),
    }


@dataclass
class Runner:
    fx: Fixtures
    env: dict[str, str]
    token: str
    counter: int = 0
    event_batches: list[tuple[EventBatch, loadgen.WrkResult]] = field(default_factory=list)
    click_runs: list[loadgen.WrkResult] = field(default_factory=list)
    drain_waits: list[float] = field(default_factory=list)

    def run(self, scenario: Scenario, server: servers.Server, duration: float) -> loadgen.WrkResult:
        self.counter += 1
        env = dict(scenario.env)
        env["BENCH_RUN"] = f"{self.token}{self.counter}"
        env["BENCH_SEED"] = str(self.counter)
        batch = None
        if scenario.is_events:
            batch = write_batch(
                RESULTS / "events.txt",
                count=max(2_000, int(duration * 4_000)),
                prefix=f"b{self.token}-{self.counter}",
                secret=self.env["EVENTS_SIGNING_SECRET"],
                click_ids=self.fx.click_ids,
                customer_ids=self.fx.customer_ids,
                rng=random.Random(self.counter),
            )
            env["BENCH_EVENTS_FILE"] = str(batch.path)
        user_before, sys_before = server.cpu_split()
        result = loadgen.run_wrk(server.url, scenario.script, duration, env)
        user_after, sys_after = server.cpu_split()
        answered = max(1, result.requests)
        result = dataclasses.replace(
            result,
            server_cpu_us=1e6 * (user_after - user_before + sys_after - sys_before) / answered,
            server_sys_us=1e6 * (sys_after - sys_before) / answered,
        )
        if batch is not None:
            self.event_batches.append((batch, result))
        if scenario.is_click:
            self.click_runs.append(result)
            # Let the consumer finish this run's backlog so it does not run into the next one.
            self.drain_waits.append(wait_for_drain())
        return result


# --- checks after the runs -------------------------------------------------------------------


def check_clicks(runner: Runner, clicks_before: int, since: datetime, partner_id: int) -> dict:
    from django.db import connection, transaction

    from tracking.models import Click, Link
    from tracking.rebuild import rebuild_rollups
    from tracking.rollups import program_day

    wait_for_drain()
    stored = Click.objects.count() - clicks_before
    responses = sum(r.s3xx for r in runner.click_runs)
    sent = sum(r.sent for r in runner.click_runs)
    click_table = connection.ops.quote_name(Click._meta.db_table)
    link_table = connection.ops.quote_name(Link._meta.db_table)
    with transaction.atomic(), connection.cursor() as cursor:
        # The statistics do not know the bench's clicks yet, and a nested loop over ~10k clicks
        # per link for each recent pair takes minutes: hash joins, on fresh statistics.
        cursor.execute(f"ANALYZE {click_table}")
        cursor.execute("SET LOCAL enable_nestloop = off")
        # Every (link, visitor) pair clicked during the bench has exactly one unique click.
        cursor.execute(
            f"""
            WITH recent AS MATERIALIZED (
              SELECT DISTINCT link_id, visitor_id FROM {click_table}
              WHERE created_at >= %s AND link_id IN (SELECT id FROM {link_table} WHERE partner_id = %s))
            SELECT COUNT(*) FILTER (WHERE u <> 1), COUNT(*) FROM (
              SELECT r.link_id, r.visitor_id, SUM(c.is_unique::int) AS u
              FROM recent r JOIN {click_table} c ON c.link_id = r.link_id AND c.visitor_id = r.visitor_id
              GROUP BY 1, 2) AS pairs
            """,
            [since, partner_id],
        )
        bad_pairs, pairs = cursor.fetchone()
    started = time.monotonic()
    report = rebuild_rollups(program_day(since), program_day(datetime.now(UTC)), dry_run=True)
    rebuild_s = time.monotonic() - started
    connection.close()
    return {
        "responses": responses,
        "sent": sent,
        "stored": stored,
        "lost": max(0, responses - stored),
        "pairs": pairs,
        "pairs_without_exactly_one_unique": bad_pairs,
        "rollup_rows_checked": report.rows_checked,
        "rollup_differences": len(report.differences),
        "rollup_rebuild_s": round(rebuild_s, 2),
        "drain_wait_max_s": round(max(runner.drain_waits, default=0.0), 2),
    }


def check_events(runner: Runner) -> dict:
    from django.db import connection

    from commissions.models import CommissionEntry, MerchantEvent, Payment

    out = {"sent": 0, "unique_ids_sent": 0, "stored": 0, "in_flight_at_end": 0, "responses": 0}
    out.update({"replays_in_files": 0, "status_4xx_5xx": 0, "payments": 0, "commissions": 0})
    for batch, result in runner.event_batches:
        stored = MerchantEvent.objects.filter(event_id__startswith=batch.prefix + "-").count()
        out["sent"] += result.sent
        out["unique_ids_sent"] += batch.unique_ids_sent(result.sent)
        out["stored"] += stored
        out["responses"] += result.requests
        out["in_flight_at_end"] += result.sent - result.requests
        out["replays_in_files"] += batch.replays
        out["status_4xx_5xx"] += result.s4xx + result.s5xx
        out["payments"] += Payment.objects.filter(payment_id__startswith=f"pay-{batch.prefix}-").count()
        out["commissions"] += CommissionEntry.objects.filter(
            payment__payment_id__startswith=f"pay-{batch.prefix}-", kind=CommissionEntry.Kind.COMMISSION
        ).count()
    # Ids sent but never stored can only be requests still in flight when wrk stopped.
    out["missing"] = out["unique_ids_sent"] - out["stored"]
    out["lost"] = max(0, out["missing"] - out["in_flight_at_end"])
    connection.close()
    return out


def balance_refresh_one(partner_id: int) -> float:
    """Milliseconds of one partner's balance refresh (what each money event queues)."""
    from django.db import connection

    from commissions.services import partner_balances_recalculate

    timings = []
    for _ in range(5):
        started = time.perf_counter()
        partner_balances_recalculate(partner_ids=[partner_id])
        timings.append((time.perf_counter() - started) * 1000)
    connection.close()
    return statistics.median(timings)


# --- main ----------------------------------------------------------------------------------------


def main() -> int:
    opts = parse_args()
    if shutil.which("wrk") is None:  # the load generator of every HTTP scenario
        sys.exit("make bench needs wrk on the PATH (Debian and Ubuntu: apt install wrk; macOS: brew install wrk).")
    RESULTS.mkdir(parents=True, exist_ok=True)
    env = bench_env()
    os.environ.update(env)
    full_env = {**os.environ}
    started_at = datetime.now(UTC)
    t0 = time.monotonic()
    timings: dict[str, float] = {}
    info = {"machine": machine_info(), "versions": versions()}
    log(f"machine: {info['machine']['nproc']} CPUs, {info['machine']['cpu']}; load {info['machine']['load_at_start']}")

    redis_client().flushdb()  # only the bench's own Redis database (BENCH_REDIS_URL)
    shutil.rmtree(env["CLICK_SPOOL_DIR"], ignore_errors=True)  # the bench's own click spool
    if not opts.reuse:
        log(f"creating {DB_NAME} and {BALANCE_DB_NAME}")
        pg_admin(
            [
                f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)",
                f"DROP DATABASE IF EXISTS {BALANCE_DB_NAME} WITH (FORCE)",
                f"DROP DATABASE IF EXISTS {ADMIN_DB_NAME} WITH (FORCE)",
                f"CREATE DATABASE {DB_NAME}",
            ]
        )
        timings["migrate"], _ = manage("migrate", "--noinput", "-v0")
        # An empty, migrated copy for the balance pass (a template copy is instant).
        pg_admin([f"CREATE DATABASE {BALANCE_DB_NAME} TEMPLATE {DB_NAME}"])
        pg_admin([f"CREATE DATABASE {ADMIN_DB_NAME} TEMPLATE {DB_NAME}"])
        log(
            f"loadbench: {opts.clicks:,} clicks, {opts.referrals:,} referrals, {opts.payments:,} payments, "
            f"{opts.partners:,} other partners"
        )
        timings["loadbench"], out = manage(
            "loadbench",
            f"--clicks={opts.clicks}",
            f"--referrals={opts.referrals}",
            f"--payments={opts.payments}",
            f"--partners={opts.partners}",
            "--seed=1",
            f"--payouts={opts.payouts}",
            capture=True,
        )
        # One referral with hundreds of payments (its timeline page is timed), on one link.
        _, whale = manage(
            "loadbench",
            "--partners=0",
            "--clicks=2000",
            "--referrals=1",
            f"--payments={opts.whale_payments}",
            "--links=1",
            "--seed=2",
            capture=True,
        )
        out = f"{out.strip()}\n{whale.strip()}"
        info["loadbench_output"] = out.strip()
        print(out.strip(), flush=True)
        started = time.monotonic()
        pg_admin(["VACUUM ANALYZE"], DB_NAME)
        timings["vacuum_analyze"] = time.monotonic() - started
    timings["collectstatic"], _ = manage("collectstatic", "--noinput", "-v0")

    import django

    django.setup()
    from django.db import connection

    from tracking.models import Click

    fx = prepare_fixtures()
    plan_scenarios = scenarios(fx)
    clicks_before = Click.objects.count()
    connection.close()
    bench_started = datetime.now(UTC)

    consumer = start_consumer(full_env)
    running: dict[str, servers.Server] = {}
    results: dict[tuple[str, str], list[loadgen.WrkResult]] = {}
    profiles: dict[str, dict] = {}
    runner = Runner(fx=fx, env=env, token=secrets.token_hex(3))
    try:
        for config in (*COMPARED, *VARIANTS):
            log(f"starting {config.label}")
            running[config.key] = servers.start(config, full_env, RESULTS)
        plan: list[tuple[str, str]] = []
        for config in COMPARED:
            plan += [("bare", config.key), ("click", config.key)]
        plan += [("click", variant.key) for variant in VARIANTS]
        plan += [(key, PRODUCTION.key) for key in ("events", "dashboard", "summary", "trends", "performance")]

        log(f"warm-up: {len(plan)} runs of {opts.warmup:g} s")
        for scenario_key, server_key in plan:
            runner.run(plan_scenarios[scenario_key], running[server_key], opts.warmup)
        for round_no in range(opts.rounds):
            # Rotate the order each round, so no scenario always runs first or after the same one.
            shift = (round_no * len(plan)) // max(1, opts.rounds)
            order = plan[shift:] + plan[:shift]
            log(f"round {round_no + 1}/{opts.rounds}: {len(order)} runs of {opts.duration:g} s")
            for scenario_key, server_key in order:
                result = runner.run(plan_scenarios[scenario_key], running[server_key], opts.duration)
                results.setdefault((scenario_key, server_key), []).append(result)
                log(
                    f"  {scenario_key:<12} {server_key:<22} {result.rps:9.1f} req/s  "
                    f"p50 {result.p50_ms:6.2f} ms  p99 {result.p99_ms:7.2f} ms  "
                    f"server CPU {result.server_cpu_us:6.0f} µs/req"
                    + (f"  errors {result.s4xx + result.s5xx}" if result.s4xx + result.s5xx else "")
                )

        if opts.profile_seconds > 0 and profiling.py_spy():
            server = running[PRODUCTION.key]
            for scenario_key in ("bare", "click"):
                log(f"profiling {scenario_key} on {PRODUCTION.label} for {opts.profile_seconds:g} s")
                raw = RESULTS / f"profile-{scenario_key}.txt"
                spy = profiling.record(server.process.pid, opts.profile_seconds, raw)
                time.sleep(0.5)
                runner.run(plan_scenarios[scenario_key], server, opts.profile_seconds)
                spy.wait(timeout=60)
                if raw.exists():
                    profiles[scenario_key] = profiling.summarise(raw).as_dict()
    finally:
        for server in running.values():
            servers.stop(server)
        if consumer.alive():
            try:
                wait_for_drain(timeout=120)
            finally:
                consumer.stop()

    log("checking clicks, unique clicks and rollups")
    clicks_check = check_clicks(runner, clicks_before, bench_started, fx.partner_id)
    events_check = check_events(runner)
    events_check["balance_refresh_ms_measured_partner"] = round(balance_refresh_one(fx.partner_id), 1)

    log("timing the reports in-process")
    from bench import reports as report_bench
    from partners.models import Partner

    reports = report_bench.measure(
        Partner.objects.get(pk=fx.partner_id), fx.session, fx.token, samples=opts.report_samples
    )

    log("timing every partner page, JSON endpoint and CSV export in-process (bench/pages.py)")
    from bench import pages as page_bench

    pages = {"partner": page_bench.measure_partner(samples=opts.page_samples), "exports": page_bench.measure_exports()}
    if not opts.reuse:
        log("loading the merchant-scale data for the admin changelists (loadbench --merchant-scale)")
        admin_env = {**full_env, "DATABASE_URL": f"{env['BENCH_PG_URL']}/{ADMIN_DB_NAME}"}
        started = time.monotonic()
        subprocess.run(
            [PY, "manage.py", "loadbench", "--merchant-scale", f"--merchant-scale-factor={opts.merchant_scale_factor}"],
            cwd=ROOT,
            env=admin_env,
            check=True,
        )
        timings["merchant_scale_load"] = time.monotonic() - started
        log("timing the admin changelists (bench/pages.py --only admin)")
        admin_json = RESULTS / "pages-admin.json"
        subprocess.run(
            [PY, "bench/pages.py", "--only", "admin", f"--samples={opts.page_samples}", f"--json={admin_json}"],
            cwd=ROOT,
            env=admin_env,
            check=True,
        )
        pages["admin"] = json.loads(admin_json.read_text())["admin"]

    log(f"balance recalculation for {opts.balance_partners:,} partners")
    balance = None
    if not opts.reuse:
        started = time.monotonic()
        out = subprocess.run(
            [PY, "bench/balances.py", f"--partners={opts.balance_partners}"],
            cwd=ROOT,
            env={**full_env, "DATABASE_URL": f"{env['BENCH_PG_URL']}/{BALANCE_DB_NAME}"},
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        timings["balances_total"] = time.monotonic() - started
        balance = json.loads(
            next(x for x in out.splitlines() if x.startswith("BENCH_JSON ")).removeprefix("BENCH_JSON ")
        )

    info["machine"]["load_at_end"] = os.getloadavg()
    timings["total"] = time.monotonic() - t0
    data = {
        "started_at": started_at.isoformat(timespec="seconds"),
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in opts.__dict__.items()},
        "info": info,
        "timings_s": {k: round(v, 1) for k, v in timings.items()},
        "servers": {c.key: c.label for c in (*COMPARED, *VARIANTS)},
        "production": PRODUCTION.key,
        "http": [
            {
                "scenario": scenario_key,
                "label": plan_scenarios[scenario_key].label,
                "server": server_key,
                **loadgen.summarise(runs).as_dict(),
            }
            for (scenario_key, server_key), runs in results.items()
        ],
        "clicks_check": clicks_check,
        "events_check": events_check,
        "reports": reports,
        "pages": pages,
        "balance": balance,
        "profiles": profiles,
    }
    (RESULTS / "latest.json").write_text(json.dumps(data, indent=2, default=str))
    from bench.markdown import write_markdown

    write_markdown(data, opts.output, ANALYSIS_START, ANALYSIS_END)
    log(f"wrote {opts.output} in {timings['total'] / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
