"""Cost per merchant event of ``POST /api/v1/events``, in-process: signed events posted through
``django.test.Client`` (the whole middleware stack, the ninja view, the real database and
Redis/Celery as the app configures them), timed one by one, with the SQL statements of each
counted. No HTTP server, so it is the quick check of an events-path change on a busy machine;
``make bench`` gives the HTTP figures.

The mix is the one of ``make bench``'s events scenario: half sign-ups with a recent click id,
half payments of existing referrals, about 10 % exact replays of a recent event. Needs the data
of ``manage.py loadbench`` (the ``bench@example.com`` partner), which it creates when missing.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/pp_events REDIS_URL=redis://127.0.0.1:6379/11 \\
        .venv/bin/python bench/events_inproc.py [--events 2000] [--profile]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.events import REPLAY_SHARE, REPLAY_WINDOW, event_body  # noqa: E402 (after the sys.path line)


def _env() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("DEBUG", "false")
    os.environ.setdefault("DEVTOOLS", "true")  # loadbench
    os.environ.setdefault("SECRET_KEY", "bench-events-inproc-secret-key-not-for-production-0123456789")
    os.environ.setdefault("EVENTS_SIGNING_SECRET", "whsec_bench_events_inproc_not_for_production")
    os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
    os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    # Production settings need a delivering mail backend; nothing is sent here.
    os.environ.setdefault("EMAIL_URL", "smtp://127.0.0.1:25")


def _events(count: int, *, prefix: str, click_ids: list[str], customer_ids: list[str], rng: random.Random):
    """(kind, body bytes) in sending order; replays repeat an earlier body byte for byte."""
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    out: list[tuple[str, bytes]] = []
    for i in range(count):
        if i >= 10 and rng.random() < REPLAY_SHARE:
            out.append(("replay", out[rng.randrange(max(0, i - REPLAY_WINDOW), i)][1]))
            continue
        kind, body = event_body(
            i, prefix=prefix, created=created, click_ids=click_ids, customer_ids=customer_ids, rng=rng
        )
        out.append((kind, json.dumps(body, separators=(",", ":")).encode()))
    return out


def _backend_cpu(connection) -> float | None:
    """CPU seconds used so far by this connection's PostgreSQL server process (same machine)."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--profile", action="store_true", help="pyinstrument over the measured events")
    parser.add_argument("--show-sql", choices=["signup", "payment", "replay"], default=None)
    args = parser.parse_args()
    _env()

    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from commissions.models import Referral
    from commissions.signing import signature_header
    from partners.models import Partner
    from tracking.models import Click

    print(f"database {connection.vendor} {settings.DATABASES['default']['NAME']}, redis {settings.REDIS_URL or '-'}")
    partner = Partner.objects.filter(user__email="bench@example.com").first()
    if partner is None:
        call_command("migrate", verbosity=0)
        call_command(
            "loadbench", clicks=50_000, referrals=1000, payments=5000, partners=50, no_progress=True, verbosity=0
        )
        partner = Partner.objects.get(user__email="bench@example.com")
    recent = timezone.now() - timedelta(days=settings.ATTRIBUTION_WINDOW_DAYS - 5)
    click_ids = [str(c) for c in Click.objects.filter(created_at__gte=recent).values_list("pk", flat=True)[:5000]]
    # loadbench's referrals only, so that every run pays for the same customers.
    customer_ids = list(
        Referral.objects.filter(partner=partner, customer_id__startswith="bench-")
        .order_by("pk")
        .values_list("customer_id", flat=True)[:1000]
    )
    rng = random.Random(args.seed)
    prefix = f"inproc-{int(time.time() * 1000):x}"
    events = _events(args.warmup + args.events, prefix=prefix, click_ids=click_ids, customer_ids=customer_ids, rng=rng)
    client = Client()
    secret = settings.EVENTS_SIGNING_SECRET

    def post(raw: bytes):
        header = signature_header(secret=secret, body=raw)
        return client.post("/api/v1/events", data=raw, content_type="application/json", HTTP_X_PARTNER_SIGNATURE=header)

    for _kind, raw in events[: args.warmup]:
        post(raw)

    wall: dict[str, list[float]] = defaultdict(list)
    cpu: dict[str, list[float]] = defaultdict(list)
    queries: dict[str, list[int]] = defaultdict(list)
    statuses: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    shown = False
    profiler = None
    if args.profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0005)
        profiler.start()
    backend_before = _backend_cpu(connection)
    for kind, raw in events[args.warmup :]:
        connection.queries_log.clear()  # a bounded deque: a full one would skew the counts
        with CaptureQueriesContext(connection) as captured:
            c0, w0 = time.process_time(), time.perf_counter()
            response = post(raw)
            w1, c1 = time.perf_counter(), time.process_time()
        wall[kind].append((w1 - w0) * 1000)
        cpu[kind].append((c1 - c0) * 1000)
        queries[kind].append(len(captured.captured_queries))
        statuses[kind][response.status_code] += 1
        if args.show_sql == kind and not shown and response.status_code in (200, 201):
            shown = True
            for q in captured.captured_queries:
                print("   ", q["sql"][:2000])
    backend_after = _backend_cpu(connection)
    if profiler is not None:
        profiler.stop()
        print(profiler.output_text(unicode=True, color=False, show_all=False))

    print(f"{args.events} events after {args.warmup} warm-up ones (seed {args.seed})")
    print(f"{'kind':8} {'n':>5} {'wall med':>9} {'wall p95':>9} {'cpu med':>8} {'cpu p95':>8} {'queries':>8}  statuses")
    everything = []
    for kind in ("signup", "payment", "replay"):
        if not wall[kind]:
            continue
        everything += cpu[kind]
        q = queries[kind]
        qtext = f"{statistics.median(q):g}" if min(q) == max(q) else f"{min(q)}-{max(q)}"
        print(
            f"{kind:8} {len(wall[kind]):5d} {statistics.median(wall[kind]):9.2f} {_pct(wall[kind], 0.95):9.2f} "
            f"{statistics.median(cpu[kind]):8.2f} {_pct(cpu[kind], 0.95):8.2f} {qtext:>8}  {dict(statuses[kind])}"
        )
    print(f"all      {len(everything):5d} cpu mean {statistics.fmean(everything):.2f} ms/event (ms)")
    if backend_before is not None and backend_after is not None:
        per_event = (backend_after - backend_before) / args.events * 1000
        print(f"PostgreSQL backend CPU: {per_event:.2f} ms/event (the connection's server process)")
    if connection.vendor == "postgresql":
        # Whether PostgreSQL plans the prepared statements once (generic) or at every run (custom).
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT split_part(statement, ' ', 2), generic_plans, custom_plans FROM pg_prepared_statements "
                "WHERE statement LIKE '/* pp_%%' ORDER BY 1"
            )
            for name, generic, custom in cursor.fetchall():
                print(f"prepared {name}: {generic} generic plans, {custom} custom plans")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
