"""The click flusher's cost per 1,000 clicks: ``tracking.click_writes.write_clicks`` (what the spool
and stream flushers call for every batch) on batches of 1,000 realistic clicks (sub-IDs,
referrers, user agents of every device type, countries; a third of them repeat visitors), in
this process, on the database of DATABASE_URL. Prints the median CPU time of this process
(``time.process_time``: the flusher's own cost, what a busy machine does not blur) and the
median wall time (includes PostgreSQL) per batch.

    DATABASE_URL=postgres://…/pp_x .venv/bin/python bench/flusher_cpu.py [--root TREE] [--batches 15]

``--root`` runs another checkout's code (``git archive REV | tar -x -C DIR``) with the same
input: run the two trees alternately and compare the medians (A/B, interleaved).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
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
    args = parser.parse_args()
    root = Path(args.root).resolve()
    os.chdir(root)
    sys.path.insert(0, str(root))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.db import transaction

    settings.DEBUG = False  # as in production: no query log (DEBUG=true may be needed to start)

    from partners.models import Partner
    from tracking.click_writes import ClickData, write_clicks
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
        c0, w0 = time.process_time(), time.perf_counter()
        with transaction.atomic():
            write_clicks(clicks)
        c1, w1 = time.process_time(), time.perf_counter()
        if batch:
            cpu.append((c1 - c0) * 1000)
            wall.append((w1 - w0) * 1000)
    scale = 1000 / args.size
    print(
        f"{root.name}: per 1,000 clicks, median of {args.batches} batches of {args.size}: "
        f"CPU {statistics.median(cpu) * scale:.1f} ms, wall {statistics.median(wall) * scale:.1f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
