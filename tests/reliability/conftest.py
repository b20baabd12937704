"""Shared helpers for the reliability suite (issue 10): signed merchant events, partners with
money on their ledger, a staff user without the payout permission, a throwaway Redis server,
and ``tried`` — how many requests or inputs a test sent, written into docs/reliability.md.

Redis: this suite uses databases 8 and 9 of the shared server only (never flushed: every
stream key is unique to its test) and its own throwaway ``redis-server`` processes for the
"Redis dies" cases. PostgreSQL-only tests are marked ``postgres``.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone

from commissions.models import CommissionEntry, MerchantEvent, Payment, Referral, Refund
from commissions.signing import signature_header
from devtools.fake_paypal import FakePayPal
from payouts.models import Payout, PayoutAudit
from tests.factories import CommissionEntryFactory, PartnerFactory, StaffFactory
from tracking import clicks
from tracking.models import Click, DailyLinkStats, UniqueVisitor

ROOT = Path(__file__).resolve().parents[2]
BROWSER_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
)
# Nothing listens here: connection refused at once (the "Redis is down" of these tests).
CLOSED_REDIS_URL = "redis://127.0.0.1:6390/8"
RELIABILITY_REDIS_DB = 8
BROKER_REDIS_DB = 9
PAYPAL_CLIENT_TIMEOUT = 0.5

_event_ids = itertools.count(1)


# --- how much a test tried (docs/reliability.md) --------------------------------------------------
@pytest.fixture
def tried(record_property):
    """``tried("1,000 clicks")`` — what the test sent, shown in the report's count column."""
    parts: list[str] = []

    def _tried(what: str) -> None:
        parts.append(what)
        record_property("tried", "; ".join(parts))

    return _tried


# --- speed -----------------------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Factories give every user a password; the production hasher costs ~0.3 s each.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fresh_click_buffer_state():
    clicks.reset_buffer_state()
    yield
    clicks.reset_buffer_state()


# --- Redis -------------------------------------------------------------------------------------------
def shared_redis_url(db: int) -> str:
    """The shared Redis of this machine (or CI), on one of this suite's own databases."""
    base = urlsplit(os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0")
    return f"redis://{base.netloc}/{db}"


def redis_or_skip(url: str):
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=5)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis is not reachable at {url} ({exc.__class__.__name__})")
    return client


def free_port(start: int = 6391) -> int:
    for port in range(start, start + 200):
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) != 0:
                return port
    raise RuntimeError("no free port")


class ThrowawayRedis:
    """A ``redis-server`` of our own (append-only file, fsync always), so a test can kill it
    with SIGKILL and start it again on the same data, as a crashed Redis restarts."""

    def __init__(self) -> None:
        if shutil.which("redis-server") is None:
            pytest.skip("redis-server is not installed")
        self.dir = Path(tempfile.mkdtemp(prefix="pp-rel-redis-"))
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/{RELIABILITY_REDIS_DB}"

    def start(self) -> None:
        import redis

        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--dir",
                str(self.dir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.2)
        for _ in range(100):
            try:
                if client.ping():
                    # Loading the append-only file answers LOADING errors until done.
                    return
            except redis.RedisError:
                time.sleep(0.05)
        raise RuntimeError("throwaway redis-server did not start")

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def cleanup(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def throwaway_redis():
    server = ThrowawayRedis()
    server.start()
    yield server
    server.cleanup()


# --- merchant events -----------------------------------------------------------------------------------
def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def event(type_: str, data: dict, *, created: datetime | None = None, event_id: str | None = None) -> dict:
    return {
        "id": event_id or f"evt_rel_{next(_event_ids)}",
        "type": type_,
        "created": iso(created or timezone.now()),
        "data": data,
    }


def signed_up(customer_id: str, click_id, *, email: str | None = None, **kw) -> dict:
    data = {"customer_id": customer_id, "click_id": None if click_id is None else str(click_id)}
    if email is not None:
        data["email"] = email
    return event("customer.signed_up", data, **kw)


def paid(payment_id: str, customer_id: str, amount: str = "49.00", **kw) -> dict:
    data = {
        "payment_id": payment_id,
        "customer_id": customer_id,
        "amount": amount,
        "currency": "USD",
        "plan": "A",
        "seats": 1,
    }
    return event("payment.succeeded", data, **kw)


def refunded(payment_id: str, amount: str, **kw) -> dict:
    return event("payment.refunded", {"payment_id": payment_id, "amount": amount}, **kw)


def cancelled(customer_id: str, **kw) -> dict:
    return event("subscription.cancelled", {"customer_id": customer_id}, **kw)


def post_event(client: Client, body: dict | bytes, *, sign: bool = True):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    extra = {}
    if sign:
        extra["HTTP_X_PARTNER_SIGNATURE"] = signature_header(secret=settings.EVENTS_SIGNING_SECRET, body=raw)
    return client.post("/api/v1/events", data=raw, content_type="application/json", **extra)


MONEY_MODELS = (MerchantEvent, Referral, Payment, Refund, CommissionEntry, DailyLinkStats, Payout, PayoutAudit)


def row_counts(models=MONEY_MODELS) -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in models}


def click_counts() -> dict[str, int]:
    return row_counts((Click, UniqueVisitor, DailyLinkStats))


# --- partners, staff, PayPal -----------------------------------------------------------------------------
def add_commission(partner, amount: str | Decimal, **kwargs) -> CommissionEntry:
    return CommissionEntryFactory(payment__referral__click__link__partner=partner, amount=Decimal(amount), **kwargs)


@pytest.fixture
def partner_with_balance(db):
    def make(amount: str | Decimal, **partner_kwargs):
        partner = PartnerFactory(**partner_kwargs)
        if Decimal(amount):
            add_commission(partner, amount)
        return partner

    return make


def _with_permissions(user, codenames: list[tuple[str, str]]):
    for app_label, codename in codenames:
        user.user_permissions.add(Permission.objects.get(codename=codename, content_type__app_label=app_label))
    return type(user).objects.get(pk=user.pk)  # a fresh object: empty permission cache


@pytest.fixture
def payout_staff(db):
    """Staff with ``payouts.approve_payout`` (and view on payouts)."""
    from tests.conftest import with_totp_device

    # Issue 22: payout decisions need two-factor verification (the test client's force_login
    # passes it for a user with a confirmed device).
    user = _with_permissions(StaffFactory(), [("payouts", "approve_payout"), ("payouts", "view_payout")])
    with_totp_device(user)
    return user


@pytest.fixture
def support_staff(db):
    """Staff who may view every model in the admin but not approve or reject payouts."""
    user = StaffFactory()
    user.user_permissions.add(*Permission.objects.filter(codename__startswith="view_"))
    return type(user).objects.get(pk=user.pk)


@pytest.fixture
def fake_paypal(settings):
    fake = FakePayPal(hang_seconds=PAYPAL_CLIENT_TIMEOUT * 4)
    base_url = fake.start()
    settings.PAYPAL_API_BASE = base_url
    settings.PAYPAL_CLIENT_ID = fake.client_id
    settings.PAYPAL_CLIENT_SECRET = fake.client_secret
    settings.PAYPAL_MODE = "sandbox"
    settings.PAYPAL_TIMEOUT_SECONDS = PAYPAL_CLIENT_TIMEOUT
    yield fake
    fake.stop()


@contextmanager
def celery_broker(url: str) -> Iterator[None]:
    """Publish this process's tasks to ``url`` instead of running them in-process."""
    from config.celery_app import app as celery_app

    conf = celery_app.conf
    saved = (conf.broker_url, conf.task_always_eager)
    conf.broker_url, conf.task_always_eager = url, False
    celery_app._pool = None  # pools are cached per app: rebuild them for the new URL
    celery_app.amqp._producer_pool = None
    try:
        yield
    finally:
        conf.broker_url, conf.task_always_eager = saved
        celery_app._pool = None
        celery_app.amqp._producer_pool = None


def database_url() -> str:
    """The URL of the test database this process uses (for worker subprocesses)."""
    from urllib.parse import quote

    from django.db import connection

    db = connection.settings_dict
    credentials = quote(db["USER"] or "", safe="")
    if db.get("PASSWORD"):
        credentials += ":" + quote(db["PASSWORD"], safe="")
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
