"""Run the fake PayPal Payouts API (devtools.fake_paypal) for the demo.

    python manage.py fake_paypal --port 8765

Point the app at it with PAYPAL_API_BASE=http://127.0.0.1:8765. Batches settle to SUCCESS
``--settle-after`` seconds after they are created. Without a Celery broker (the demo runs tasks
in-process and has no beat), ``--poll-every`` also runs the payout poll task on that interval,
standing in for celery beat, so an approved payout shows Paid within seconds.
"""

from __future__ import annotations

import threading
import time

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections

from devtools.fake_paypal import FakePayPal


class Command(BaseCommand):
    help = "Serve a fake PayPal Payouts API on 127.0.0.1 for the demo and manual testing."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8765)
        parser.add_argument("--settle-after", type=float, default=2.0, help="seconds until a batch is SUCCESS")
        parser.add_argument(
            "--poll-every",
            type=float,
            default=None,
            help="run the payout poll task every N seconds (default: 2 when no Celery broker is configured, else off)",
        )
        parser.add_argument(
            "--deny",
            default="",
            help="receivers (comma-separated emails) whose payouts end UNCLAIMED, to demo a failed payout",
        )

    def handle(self, *args, **options):
        client_id = settings.PAYPAL_CLIENT_ID or None  # no credentials configured: accept any
        fake = FakePayPal(
            client_id=client_id,
            client_secret=settings.PAYPAL_CLIENT_SECRET if client_id else None,
            settle_after=options["settle_after"],
            host=options["host"],
            port=options["port"],
        )
        denied = {e.strip().lower() for e in options["deny"].split(",") if e.strip()}
        if denied:
            fake.deny_receivers(denied)
        base_url = fake.start()
        self.stdout.write(f"Fake PayPal listening on {base_url} (batches settle after {options['settle_after']:g} s)")
        self.stdout.write(f"Use: PAYPAL_API_BASE={base_url}")

        poll_every = options["poll_every"]
        if poll_every is None:
            poll_every = 2.0 if settings.CELERY_TASK_ALWAYS_EAGER else 0.0
        stop = threading.Event()
        if poll_every > 0:
            self.stdout.write(f"Polling processing payouts every {poll_every:g} s (stand-in for celery beat)")
            threading.Thread(target=self._poll_loop, args=(poll_every, stop), daemon=True).start()
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
        finally:
            stop.set()
            fake.stop()

    def _poll_loop(self, every: float, stop: threading.Event) -> None:
        from payouts.tasks import reconcile_payouts_task

        while not stop.wait(every):
            close_old_connections()
            try:
                counts = reconcile_payouts_task()
            except Exception as exc:  # noqa: BLE001 - the demo poller must keep going
                self.stderr.write(f"poll failed: {type(exc).__name__}: {exc}")
                continue
            if counts.get("paid") or counts.get("failed"):
                self.stdout.write(f"poll: {counts}")
