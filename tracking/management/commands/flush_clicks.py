"""Move buffered clicks (the click spool, or the Redis stream) into the database, once or as a daemon."""

from __future__ import annotations

import signal

from django.conf import settings
from django.core.management.base import BaseCommand

from tracking.clicks import DEFAULT_BATCH, LINGER_MS, buffer_mode, consume_click_buffer, flush_click_buffer


class Command(BaseCommand):
    help = (
        "Flush the click buffer (CLICK_BUFFER=spool: this host's spool files; redis: the Redis stream) into "
        "the database. With --loop, keep consuming (a dedicated process beside the web servers; with the spool, "
        "one on every web host); stops cleanly on SIGTERM/SIGINT."
    )

    def add_arguments(self, parser):
        parser.add_argument("--loop", action="store_true", help="Keep consuming until stopped.")
        parser.add_argument("--batch", type=int, default=DEFAULT_BATCH, help="Entries per batch (default 1000).")
        parser.add_argument(
            "--block-ms", type=int, default=1000, help="In --loop mode, how long one read waits for new clicks."
        )
        parser.add_argument(
            "--linger-ms",
            type=int,
            default=LINGER_MS,
            help=f"In --loop mode, the pause after a batch smaller than --batch, so the next batch is larger "
            f"(default {LINGER_MS}). Each batch costs a few statements whatever its size; a sign-up never waits "
            "for it (the events API flushes a click it cannot find).",
        )

    def handle(self, *args, loop: bool, batch: int, block_ms: int, linger_ms: int, **options):
        mode = buffer_mode()
        if mode is None:
            self.stdout.write("The click buffer is off (CLICK_BUFFER/REDIS_URL); clicks are written directly.")
            return

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
        source = settings.CLICK_SPOOL_DIR if mode == "spool" else settings.REDIS_URL.rsplit("@", 1)[-1]
        self.stdout.write(f"Consuming clicks from {source} (stop with Ctrl+C).")
        total = consume_click_buffer(
            batch=batch, block_ms=block_ms, linger_ms=linger_ms, stop=lambda: stopping, errors=self.stderr.write
        )
        self.stdout.write(self.style.SUCCESS(f"Stopped after flushing {total} clicks."))
