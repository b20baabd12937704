"""CPU time per request of the bare view and the click redirect, in-process (Django's
WSGIHandler called directly: the whole middleware stack and the view, no HTTP server), on the
bench database and Redis. CPU time, unlike wall time, stays readable on a busy machine, which
makes this the quick check of a click-path change; bench/ab.py and `make bench` give the HTTP
figures.

    .venv/bin/python bench/inproc.py [--requests 3000] [--profile click_new]

With --profile, CALLEES (a regex of function names) picks whose callees are printed.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import run  # noqa: E402

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", choices=["bare", "click_new", "click_returning"], default=None)
    args = parser.parse_args()
    os.environ.update(run.bench_env())

    import django

    django.setup()
    from django.test.client import RequestFactory

    from partners.models import Partner
    from tracking.clicks import flush_click_buffer_all
    from tracking.models import Link
    from tracking.visitors import visitor_cookie_value

    partner = Partner.objects.get(user__email="bench@example.com")
    codes = list(Link.objects.filter(partner=partner, is_active=True).values_list("code", flat=True)[:100])
    from config.wsgi import application as handler

    factory = RequestFactory()
    cookies = [visitor_cookie_value(f"{i:032x}") for i in range(400)]
    counter = [0]

    def environ(kind: str) -> dict:
        counter[0] += 1
        n = counter[0]
        if kind == "bare":
            return factory.get("/bench/bare", HTTP_HOST="127.0.0.1", HTTP_USER_AGENT=CHROME).environ
        path = f"/r/{codes[n % len(codes)]}?utm_source=bench"
        if kind == "click_new":
            return factory.get(path, HTTP_HOST="127.0.0.1", HTTP_USER_AGENT=f"{CHROME} bench/{n}").environ
        cookie = f"aff_vid={cookies[n % len(cookies)]}"
        return factory.get(path, HTTP_HOST="127.0.0.1", HTTP_USER_AGENT=CHROME, HTTP_COOKIE=cookie).environ

    def call(kind: str) -> None:
        env = environ(kind)
        env["wsgi.input"] = io.BytesIO(b"")
        response = handler(env, lambda status, headers, exc_info=None: None)
        for _ in response:
            pass
        response.close()

    kinds = ("bare", "click_new", "click_returning")
    for kind in kinds:
        for _ in range(200):
            call(kind)
    results: dict[str, list[float]] = {kind: [] for kind in kinds}
    split: dict[str, list[tuple[float, float]]] = {kind: [] for kind in kinds}
    for _ in range(args.rounds):
        for kind in kinds:
            before = os.times()
            for _ in range(args.requests):
                call(kind)
            after = os.times()
            user = (after.user - before.user) / args.requests * 1e6
            system = (after.system - before.system) / args.requests * 1e6
            results[kind].append(user + system)
            split[kind].append((user, system))
            flush_click_buffer_all(max_batches=1000)
    bare = statistics.median(results["bare"])
    for kind in kinds:
        cpu = statistics.median(results[kind])
        user = statistics.median(u for u, _ in split[kind])
        system = statistics.median(s for _, s in split[kind])
        print(f"{kind:<16} {cpu:7.1f} µs CPU/request  ({cpu / bare:.2f} × bare; user {user:.0f}, system {system:.0f})")
    if args.profile:
        profiler = cProfile.Profile(time.process_time)
        profiler.enable()
        for _ in range(args.requests):
            call(args.profile)
        profiler.disable()
        stats = pstats.Stats(profiler)
        stats.sort_stats("tottime").print_stats(30)
        stats.sort_stats("cumulative").print_callees(
            os.environ.get("CALLEES", "click_redirect_view|_xadd|record_click")
        )
    flush_click_buffer_all(max_batches=1000)
    return 0


if __name__ == "__main__":
    sys.exit(main())
