"""`flush_clicks --loop` stopped by SIGTERM (systemd, compose, honcho): it flushes what the
spool holds before it exits, within a bounded time, and leaves no file behind."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from tests.factories import LinkFactory
from tests.tracking.conftest import rollup_totals
from tracking import spool
from tracking.click_writes import ClickData
from tracking.ids import new_click_id
from tracking.models import Click

pytestmark = pytest.mark.django_db(transaction=True)  # the flusher process reads committed rows

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def spool_dir(settings, tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("the flusher process needs the test database on a server (PostgreSQL)")
    settings.CLICK_BUFFER = "spool"
    settings.CLICK_SPOOL_DIR = tmp_path / "spool"
    yield settings.CLICK_SPOOL_DIR
    spool.close_current()


class Flusher:
    """``manage.py flush_clicks --loop`` in a process of its own, on the test database."""

    def __init__(self, spool_dir: Path, *args: str):
        db = connection.settings_dict
        url = f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "CLICK_BUFFER": "spool",
            "CLICK_SPOOL_DIR": str(spool_dir),
            "PYTHONUNBUFFERED": "1",
        }
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "flush_clicks", "--loop", *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.output.append(line)
            self.lines.put(line)

    def wait_for(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if text in self.lines.get(timeout=0.2):
                    return
            except queue.Empty:
                if self.process.poll() is not None:
                    break
        raise AssertionError(f"no {text!r} from the flusher: {''.join(self.output)}")

    def stop(self, timeout: float) -> tuple[int, float]:
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=timeout)
        return code, time.monotonic() - started

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def _spool_clicks(link, n: int) -> None:
    for i in range(n):
        spool.append(
            ClickData(
                id=new_click_id(),
                link_id=link.pk,
                partner_id=link.partner_id,
                visitor_id=f"visitor-{i % 4}",
                created_at=timezone.now(),
                user_agent="Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) Mobile/15E148",
                sub1="qr",
            )
        )


def _spool_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.suffix in (spool.OPEN, spool.CLOSED))


def test_sigterm_flushes_the_spool_before_the_flusher_exits(spool_dir):
    link = LinkFactory()
    # A linger of ten minutes: the loop itself would not look at the spool again before it stops.
    flusher = Flusher(spool_dir, "--linger-ms", "600000", "--drain-seconds", "30")
    try:
        flusher.wait_for("Consuming clicks")
        time.sleep(1.0)  # its first look (an empty spool) is over: it lingers
        _spool_clicks(link, 30)
        assert _spool_files(spool_dir)[0].endswith(".open")
        flusher.process.send_signal(signal.SIGTERM)
        # This writer is still alive at the SIGTERM (a web process stopping beside the flusher):
        # its lines are read, its file is deleted once it has gone.
        flusher.wait_for("Stopping: flushing what is buffered")
        time.sleep(0.5)
        spool.close_current()
        code = flusher.process.wait(timeout=60)
    finally:
        flusher.kill()
    assert code == 0, "".join(flusher.output)
    assert "Stopped after flushing 30 clicks." in "".join(flusher.output)
    assert Click.objects.filter(link=link).count() == 30
    assert rollup_totals(link) == (30, 4)
    assert _spool_files(spool_dir) == []


def test_the_drain_is_bounded_when_a_writer_never_goes_away(spool_dir):
    link = LinkFactory()
    flusher = Flusher(spool_dir, "--linger-ms", "600000", "--drain-seconds", "1")
    try:
        flusher.wait_for("Consuming clicks")
        time.sleep(1.0)
        _spool_clicks(link, 5)
        code, took = flusher.stop(timeout=60)
    finally:
        flusher.kill()
    assert code == 0, "".join(flusher.output)
    assert took < 15, "".join(flusher.output)  # the drain's second, the process's exit
    output = "".join(flusher.output)
    assert "Stopped with clicks still buffered" in output
    # What was written before the stop is in the database; the open file stays for the next one.
    assert Click.objects.filter(link=link).count() == 5
    assert [name.endswith(".open") for name in _spool_files(spool_dir)] == [True]
