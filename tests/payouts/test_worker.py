"""A real Celery worker (subprocess) on Redis and a live PostgreSQL database pays an approved
payout through the fake PayPal, exactly once, even when the send task is delivered twice."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import pytest
import redis
from django.conf import settings
from django.db import connection

from config.celery_app import app as celery_app
from payouts.models import Payout, PayoutAudit
from payouts.services import payout_approve, payout_request
from payouts.tasks import send_payout_task

REDIS_URL = "redis://127.0.0.1:6379/3"
WAIT_SECONDS = 120  # an upper bound for a cold worker on a busy 2-core machine, not a timing claim


def _database_url() -> str:
    db = connection.settings_dict
    credentials = quote(db["USER"] or "", safe="")
    if db.get("PASSWORD"):
        credentials += ":" + quote(db["PASSWORD"], safe="")
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@contextmanager
def _publishing_to(broker_url: str):
    """Send this process's tasks to the real broker instead of running them in-process."""
    conf = celery_app.conf
    saved = (conf.broker_url, conf.task_always_eager)
    conf.broker_url, conf.task_always_eager = broker_url, False
    celery_app._pool = None  # connection pools are cached per app; rebuild them for the new URL
    celery_app.amqp._producer_pool = None
    try:
        yield
    finally:
        conf.broker_url, conf.task_always_eager = saved
        celery_app._pool = None
        celery_app.amqp._producer_pool = None


@contextmanager
def _worker(fake):
    env = {
        **os.environ,
        "DEBUG": "true",
        "DATABASE_URL": _database_url(),
        "REDIS_URL": REDIS_URL,
        "PAYPAL_API_BASE": fake.base_url,
        "PAYPAL_CLIENT_ID": fake.client_id,
        "PAYPAL_CLIENT_SECRET": fake.client_secret,
        "PAYPAL_MODE": "sandbox",
        "PAYPAL_TIMEOUT_SECONDS": "5",
        "EMAIL_URL": "consolemail://",
        "CLICK_BUFFER": "false",
    }
    log = tempfile.NamedTemporaryFile("w+", prefix="payouts-worker-", suffix=".log", delete=False)  # noqa: SIM115
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool=solo",
            "--loglevel=INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            f"--hostname=payouts-test-{os.getpid()}@%h",
        ],
        cwd=Path(settings.BASE_DIR),
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield process, Path(log.name)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


def _wait_for(predicate, process, log: Path) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if predicate():
            return
        if process.poll() is not None:
            break
        time.sleep(0.5)
    pytest.fail(f"the worker did not finish the payout; its log ({log}):\n{log.read_text()[-4000:]}")


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_pays_an_approved_payout_exactly_once(fake_paypal, partner_with_balance, payout_staff):
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis db 3 at 127.0.0.1:6379 is unreachable ({exc}); this test needs a real broker")
    client.flushdb()  # db 3 is this test's own: no stale task messages

    payout = payout_request(partner=partner_with_balance("57.30"))
    with _worker(fake_paypal) as (process, log), _publishing_to(REDIS_URL):
        payout_approve(payout_id=payout.pk, actor=payout_staff)  # on commit: send task -> Redis
        # A second delivery of the same task, as after a worker crash with acks_late.
        send_payout_task.delay(payout.pk)
        _wait_for(lambda: Payout.objects.filter(pk=payout.pk, status=Payout.Status.PAID).exists(), process, log)
        # Let the duplicate delivery (and any follow-up poll) run before counting.
        _wait_for(lambda: client.llen("celery") == 0, process, log)
        time.sleep(1)

    payout.refresh_from_db()
    assert payout.status == Payout.Status.PAID
    assert payout.paypal_batch_id in fake_paypal.batches
    assert len(fake_paypal.batches) == 1
    assert fake_paypal.batches_for(payout.sender_batch_id)[0].items[0]["payout_item"]["amount"]["value"] == "57.30"
    assert PayoutAudit.objects.filter(payout=payout, action=PayoutAudit.Action.PAID).count() == 1
    assert PayoutAudit.objects.filter(payout=payout, action=PayoutAudit.Action.SENT).count() == 1
    log.unlink()
