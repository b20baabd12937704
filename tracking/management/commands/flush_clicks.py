"""Move buffered clicks (the click spool, or the Redis stream) into the database, once or as a daemon."""

from __future__ import annotations

import signal

from django.conf import settings
from django.core.management.base import BaseCommand

from tracking.clicks import (
    DEFAULT_BATCH,
    LINGER_MS,
    LOOP_BATCH,
    buffer_mode,
    consume_click_buffer,
    drain_click_buffer,
    flush_click_buffer,
)

# How long --loop goes on flushing after SIGTERM/SIGINT: below the supervisor's stop timeout
# (systemd TimeoutStopSec, compose stop_grace_period, honcho's 5 s), see deploy/.
DRAIN_SECONDS = 10.0


class Command(BaseCommand):
    help = (
        "Flush the click buffer (CLICK_BUFFER=spool: this host's spool files; redis: the Redis stream) into "
        "the database. With --loop, keep consuming (a dedicated process beside the web servers; with the spool, "
        "one on every web host); on SIGTERM/SIGINT it flushes what is buffered (at most --drain-seconds; a second "
        "signal stops it at once) and exits."
    )

    def add_arguments(self, parser):
        parser.add_argument("--loop", action="store_true", help="Keep consuming until stopped.")
        parser.add_argument(
            "--batch",
            type=int,
            default=None,
            help=f"Entries per batch (default {DEFAULT_BATCH}; with --loop {LOOP_BATCH}).",
        )
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
        parser.add_argument(
            "--drain-seconds",
            type=float,
            default=DRAIN_SECONDS,
            help=f"In --loop mode, after SIGTERM/SIGINT: how long to go on flushing until the buffer is empty "
            f"(with the spool: no file left, the web processes' files included once they have exited; default "
            f"{DRAIN_SECONDS:g}). Keep it below the supervisor's stop timeout. 0: stop after the batch in hand.",
        )

    def handle(
        self, *args, loop: bool, batch: int | None, block_ms: int, linger_ms: int, drain_seconds: float, **options
    ):
        if batch is None:
            batch = LOOP_BATCH if loop else DEFAULT_BATCH
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

        signals = 0

        def stop(signum, frame):
            nonlocal signals
            signals += 1

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        source = settings.CLICK_SPOOL_DIR if mode == "spool" else settings.REDIS_URL.rsplit("@", 1)[-1]
        self.stdout.write(f"Consuming clicks from {source} (stop with Ctrl+C).")
        total = consume_click_buffer(
            batch=batch, block_ms=block_ms, linger_ms=linger_ms, stop=lambda: signals > 0, errors=self.stderr.write
        )
        drained, emptied = 0, True
        if drain_seconds > 0 and signals < 2:
            self.stdout.write(f"Stopping: flushing what is buffered (at most {drain_seconds:g} s).")
            drained, emptied = drain_click_buffer(
                batch=batch, seconds=drain_seconds, abort=lambda: signals > 1, errors=self.stderr.write
            )
        if not emptied:
            self.stderr.write("Stopped with clicks still buffered; the next flusher will move them.")
        self.stdout.write(self.style.SUCCESS(f"Stopped after flushing {total + drained} clicks."))
