"""Time the partner reports in-process on an already loaded bench database, without wrk or
servers: ``bench/reports.py``'s ``measure`` (the same views, median/p95 and query counts, and
the raw-rows comparison). For working on the reports; ``make bench`` is the full run.

    DATABASE_URL=... DEBUG=false SECRET_KEY=... DJANGO_SETTINGS_MODULE=bench.settings \\
        .venv/bin/python bench/reports_quick.py --samples 50
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--json", type=Path, default=None, help="Also write the results here.")
    opts = parser.parse_args()

    import django

    django.setup()
    from django.test import Client

    from bench import reports
    from partners.models import Partner
    from partners.services import api_token_create

    partner = Partner.objects.select_related("user").get(user__email="bench@example.com")
    client = Client()
    client.force_login(partner.user, backend="django.contrib.auth.backends.ModelBackend")
    token = api_token_create(partner=partner, name="reports_quick").secret
    result = reports.measure(partner, client.cookies["sessionid"].value, token, samples=opts.samples)
    print(f"{'report':32} {'median ms':>10} {'p95 ms':>8} {'queries':>8} {'status':>6}")
    for row in result["server_times"]:
        print(f"{row['label']:32} {row['median_ms']:10.1f} {row['p95_ms']:8.1f} {row['queries']:8} {row['status']:6}")
    for row in result["raw"]:
        same = "same numbers" if row["numbers_match"] else "DIFFERENT NUMBERS"
        print(f"raw rows, {row['label']:45} {same}")
    if opts.json:
        opts.json.write_text(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
