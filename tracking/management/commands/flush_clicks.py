"""Move buffered clicks from the Redis stream into the database, once or as a daemon."""

from __future__ import annotations

import signal
import time

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import DatabaseError, close_old_connections

from tracking.clicks import DEFAULT_BATCH, buffer_enabled, flush_click_buffer


class Command(BaseCommand):
    help = (
        "Flush the click buffer (Redis stream) into the database. With --loop, keep consuming "
        "(a dedicated process beside the web servers); stops cleanly on SIGTERM/SIGINT."
    )

    def add_arguments(self, parser):
        parser.add_argument("--loop", action="store_true", help="Keep consuming until stopped.")
        parser.add_argument("--batch", type=int, default=DEFAULT_BATCH, help="Entries per batch (default 1000).")
        parser.add_argument(
            "--block-ms", type=int, default=1000, help="In --loop mode, how long one read waits for new clicks."
        )

    def handle(self, *args, loop: bool, batch: int, block_ms: int, **options):
        if not buffer_enabled():
            self.stdout.write("The click buffer is off (CLICK_BUFFER/REDIS_URL); clicks are written directly.")
            return
        from redis.exceptions import RedisError

        if not loop:
            total = 0
            while True:
                handled = flush_click_buffer(batch)
                total += handled
                if handled < batch:
                    break
            self.stdout.write(self.style.SUCCESS(f"Flushed {total} buffered clicks."))
            return

        stopping = False

        def stop(signum, frame):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        self.stdout.write(f"Consuming clicks from {settings.REDIS_URL.rsplit('@', 1)[-1]} (stop with Ctrl+C).")
        total = 0
        while not stopping:
            close_old_connections()
            try:
                total += flush_click_buffer(batch, block_ms=block_ms)
            except (RedisError, DatabaseError) as exc:
                # Unacknowledged entries stay pending and are reclaimed; just retry later.
                self.stderr.write(f"Flush failed ({exc.__class__.__name__}: {exc}); retrying in 1 s.")
                close_old_connections()
                time.sleep(1)
        self.stdout.write(self.style.SUCCESS(f"Stopped after flushing {total} clicks."))
