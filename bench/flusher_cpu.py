"""The click flusher's cost per 1,000 clicks: ``tracking.click_writes.write_clicks`` (what the spool
and stream flushers call for every batch) on batches of 1,000 realistic clicks (sub-IDs,
referrers, user agents of every device type, countries; a third of them repeat visitors), in
this process, on the database of DATABASE_URL. Prints the median CPU time of this process
(``time.process_time``: the flusher's own cost, what a busy machine does not blur) and the
median wall time (includes PostgreSQL) per batch. With ``--spool`` the batch goes through the
spool as in production (the clicks appended to a spool file, untimed: the web process does
that) and the timed part is ``tracking.spool.flush_spool``: reading and parsing the lines,
dropping clicks of deleted links, ``write_buffered_clicks``. When PostgreSQL runs on this
machine and its processes can be read, it also prints the CPU its backend spent (``/proc``;
summed over the batches, the clock ticks are 10 ms).

    DATABASE_URL=postgres://…/pp_x .venv/bin/python bench/flusher_cpu.py [--spool] [--root TREE] [--batches 15]

``--root`` runs another checkout's code (``git archive REV | tar -x -C DIR``) with the same
input: run the two trees alternately and compare the medians (A/B, interleaved).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

USER_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:126.0) Gecko/20100101 Firefox/126.0",
    "",
]
REFERERS = [
    "https://www.youtube.com/watch?v=abc",
    "https://news.ycombinator.com/item?id=1",
    "https://www.google.com/",
    "https://t.co/xyz",
    "https://blog.example.org/post/42",
    "",
    "",
]
SUB1 = ["youtube", "newsletter", "podcast", "qr", "", ""]
SUB2 = ["video-12", "video-13", "issue-7", "", "", ""]
COUNTRIES = ["US", "DE", "FR", "GB", "", "NL"]
LINKS = 20


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default=str(Path(__file__).resolve().parent.parent))
    parser.add_argument("--batches", type=int, default=15)
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--spool", action="store_true", help="flush the batches from a spool file (flush_spool)")
    args = parser.parse_args()
    root = Path(args.root).resolve()
    os.chdir(root)
    sys.path.insert(0, str(root))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection, transaction

    settings.DEBUG = False  # as in production: no query log (DEBUG=true may be needed to start)

    from partners.models import Partner

    try:
        from tracking.click_writes import ClickData, write_clicks
    except ImportError:  # a tree from before tracking/clicks.py was split
        from tracking.clicks import ClickData, write_clicks
    from tracking.models import Link

    partner = Partner.objects.filter(user__email="flusher-bench@example.com").first()
    if partner is None:
        from tests.factories import LinkFactory, PartnerFactory

        partner = PartnerFactory(user__email="flusher-bench@example.com")
        for _ in range(LINKS):
            LinkFactory(partner=partner)
    links = list(Link.objects.filter(partner=partner).values_list("pk", flat=True))
    rng = random.Random(23)
    now = datetime.now(UTC)
    # The same input in every run (only the click ids are new, so nothing is a replay); a
    # third of the visitors come back within the run (not unique).
    rows = [
        (
            rng.choice(links),
            f"v{rng.randrange(args.size * args.batches * 2 // 3)}",
            now - timedelta(seconds=rng.randrange(3 * 86400)),
            "h" * 64,
            rng.choice(USER_AGENTS),
            rng.choice(REFERERS),
            rng.choice(SUB1),
            rng.choice(SUB2),
            rng.choice(COUNTRIES),
        )
        for _ in range(args.size * (args.batches + 1))
    ]
    run_tag = uuid.uuid4().hex[:8]
    if args.spool:
        from tracking import spool

        settings.CLICK_SPOOL_DIR = tempfile.mkdtemp(prefix="flusher-cpu-")
    backend = _backend_stat(connection)
    backend_cpu = 0.0
    cpu, wall = [], []
    for batch in range(args.batches + 1):  # the first one warms up (parser caches, connection)
        clicks = [
            ClickData(
                id=uuid.uuid4(),
                link_id=link_id,
                partner_id=partner.pk,
                visitor_id=f"{run_tag}-{visitor}",
                created_at=created_at,
                ip_hash=ip_hash,
                user_agent=ua,
                referer=referer,
                sub1=sub1,
                sub2=sub2,
                country=country,
            )
            for link_id, visitor, created_at, ip_hash, ua, referer, sub1, sub2, country in rows[
                batch * args.size : (batch + 1) * args.size
            ]
        ]
        if args.spool:
            for click in clicks:
                spool.append(click)
            spool.close_current()
        p0 = _cpu_seconds(backend)
        c0, w0 = time.process_time(), time.perf_counter()
        if args.spool:
            assert spool.flush_spool(args.size) == args.size
        else:
            with transaction.atomic():
                write_clicks(clicks)
        c1, w1 = time.process_time(), time.perf_counter()
        if batch:
            cpu.append((c1 - c0) * 1000)
            wall.append((w1 - w0) * 1000)
            if backend is not None:
                backend_cpu += _cpu_seconds(backend) - p0
    if args.spool:
        shutil.rmtree(settings.CLICK_SPOOL_DIR, ignore_errors=True)
    scale = 1000 / args.size
    postgres = ""
    if backend is not None:
        postgres = f", PostgreSQL backend CPU {backend_cpu * 1000 / args.batches * scale:.1f} ms (mean)"
    print(
        f"{root.name}{' (spool)' if args.spool else ''}: per 1,000 clicks, median of {args.batches} batches of "
        f"{args.size}: CPU {statistics.median(cpu) * scale:.1f} ms, wall {statistics.median(wall) * scale:.1f} ms"
        + postgres
    )
    return 0


def _backend_stat(connection) -> Path | None:
    """/proc/<pid>/stat of this connection's PostgreSQL backend, if it runs here and is readable."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    stat = Path(f"/proc/{pid}/stat")
    try:
        if "postgres" not in Path(f"/proc/{pid}/cmdline").read_text():  # not here: another host's pid
            return None
        stat.read_text()
    except OSError:
        return None
    return stat


def _cpu_seconds(stat: Path | None) -> float:
    if stat is None:
        return 0.0
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


if __name__ == "__main__":
    sys.exit(main())
