"""Faults: Redis down or crashing, a PostgreSQL connection killed, a Celery worker killed in the
middle of a payout, and a fake PayPal that is slow, down or answers garbage. Nothing counted is
lost, nothing is paid twice, and every page still answers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.db import connection
from django.test import Client, RequestFactory
from django.utils import timezone

from commissions.balance import partner_balance
from commissions.models import CommissionEntry, MerchantEvent, Referral
from payouts.models import Payout, PayoutAudit
from payouts.services import payout_approve, payout_check_now, payout_request
from payouts.tasks import reconcile_payouts_task, send_payout_task
from tests.factories import ClickFactory, LinkFactory, PartnerFactory
from tests.reliability.conftest import (
    BROKER_REDIS_DB,
    BROWSER_UA,
    CLOSED_REDIS_URL,
    ROOT,
    celery_broker,
    database_url,
    free_port,
    paid,
    post_event,
    redis_or_skip,
    shared_redis_url,
    signed_up,
)
from tracking import click_stream, clicks
from tracking.models import Click, DailyLinkStats, UniqueVisitor
from tracking.rebuild import rebuild_rollups
from tracking.rollups import program_today
from tracking.visitors import VISITOR_COOKIE, visitor_cookie_value

pytestmark = pytest.mark.django_db


def _visit(client: Client, code: str, visitor: str):
    client.cookies[VISITOR_COOKIE] = visitor_cookie_value(visitor)
    return client.get(f"/r/{code}", HTTP_USER_AGENT=BROWSER_UA)


def _click_id(response) -> str:
    return parse_qs(urlsplit(response["Location"]).query)["aff_click"][0]


def _visitor(n: int) -> str:
    return f"{n:032x}"


def _rollups_match_raw_rows() -> bool:
    today = program_today()
    return not rebuild_rollups(today, today, dry_run=True).differences


# --- Redis unreachable ------------------------------------------------------------------------------------
@pytest.fixture
def redis_down(settings):
    """Production-like Redis settings (click buffer, cache, broker) all pointing at a port where
    nothing listens."""
    settings.REDIS_URL = CLOSED_REDIS_URL
    settings.CLICK_BUFFER = True
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CLOSED_REDIS_URL,
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }
    clicks.reset_buffer_state()
    with celery_broker(CLOSED_REDIS_URL):
        yield


def test_with_redis_down_the_redirect_answers_302_and_records_every_click_directly(redis_down, tried):
    links = [LinkFactory(), LinkFactory()]
    client = Client()
    pairs = set()
    for n in range(40):
        link, visitor = links[n % 2], _visitor(n % 7)
        response = _visit(client, link.code, visitor)
        assert response.status_code == 302
        assert response["Location"].startswith("https://crazycall.com/pricing?aff_click=")
        pairs.add((link.pk, visitor))
    tried("40 clicks, 14 distinct (visitor, link) pairs")
    assert Click.objects.count() == 40
    assert UniqueVisitor.objects.count() == len(pairs) == Click.objects.filter(is_unique=True).count()
    assert _rollups_match_raw_rows()


@pytest.mark.django_db(transaction=True)  # on-commit hooks run, as in production
def test_with_redis_down_signed_events_are_still_accepted_and_earn_their_commission(redis_down, caplog, tried):
    link = LinkFactory()
    client = Client()
    click_id = _click_id(_visit(client, link.code, _visitor(1)))
    signup = post_event(client, signed_up("cus_redis_down", click_id))
    payment = post_event(client, paid("pay_redis_down", "cus_redis_down", "49.00"))
    tried("1 click, 2 events with the broker unreachable")
    assert signup.status_code == 201, signup.content
    assert payment.status_code == 201, payment.content
    assert payment.json()["commission"] == {"amount": "9.80"}
    assert CommissionEntry.objects.get().amount == Decimal("9.80")
    # Money decisions read the ledger, not the dashboard copy the unreachable worker would refresh.
    assert partner_balance(partner=link.partner) == Decimal("9.80")


def test_with_redis_down_every_panel_page_renders(redis_down, partner_with_balance, tried):
    partner = partner_with_balance("80.00")
    client = Client()
    client.force_login(partner.user)
    paths = [
        "/dashboard/",
        "/resources/",
        "/referrals/",
        "/commissions/",
        "/performance/",
        "/payouts/",
        "/settings/",
        "/referrals/export.csv",
        "/api/v1/partner/summary",
        "/api/v1/partner/trends",
    ]
    for path in paths:
        assert client.get(path).status_code == 200, path
    anonymous = Client()
    for path in ("/accounts/login/", "/accounts/signup/", "/accounts/password_reset/"):
        assert anonymous.get(path).status_code == 200, path
    tried(f"{len(paths) + 3} pages")


def test_with_redis_down_the_throttled_password_reset_says_try_later_instead_of_failing(
    redis_down, partner, mailoutbox, tried
):
    # Its rate limit lives in the cache: without it the form refuses (fails closed) but answers.
    response = Client().post("/accounts/password_reset/", {"email": partner.user.email})
    tried("1 reset request with the cache unreachable")
    assert response.status_code == 503
    assert b"Password reset is unavailable right now" in response.content
    assert mailoutbox == []


@pytest.mark.django_db(transaction=True)  # on-commit hooks run, as in production
def test_with_redis_down_a_withdrawal_request_is_saved_and_answered(redis_down, partner_with_balance, tried):
    partner = partner_with_balance("80.00")
    client = Client()
    client.force_login(partner.user)
    response = client.post("/payouts/request/")
    tried("1 withdrawal with the broker unreachable")
    assert response.status_code == 302
    assert Payout.objects.get(partner=partner).amount == Decimal("80.00")


def test_with_redis_down_healthz_reports_redis_down_and_the_service_degraded(redis_down, tried):
    response = Client().get("/healthz")
    tried("1 health check")
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["database"], body["redis"]) == ("degraded", "ok", "down")
    assert body["beat"]["state"] == body["workers"] == "down"  # both are known through Redis only


# --- Redis crashes with clicks in its stream ------------------------------------------------------------
def test_clicks_buffered_in_a_redis_that_crashed_with_its_consumers_are_stored_exactly_once(
    throwaway_redis, settings, monkeypatch, django_capture_on_commit_callbacks, tried
):
    settings.REDIS_URL = throwaway_redis.url
    settings.CLICK_BUFFER = True
    key = f"test:reliability:clicks:{uuid.uuid4().hex}"
    monkeypatch.setattr(clicks, "STREAM_KEY", key)
    clicks.reset_buffer_state()
    links = [LinkFactory(), LinkFactory()]
    client = Client()
    pairs = set()

    def click(n: int) -> None:
        link, visitor = links[n % 2], _visitor(n % 9)
        assert _visit(client, link.code, visitor).status_code == 302
        pairs.add((link.pk, visitor))

    for n in range(30):
        click(n)
    assert Click.objects.count() == 0  # all 30 are in the stream only

    server = click_stream._redis("consumer")
    clicks._ensure_group(server)
    # Consumer 1 reads 10 entries and dies before writing them.
    server.xreadgroup(clicks.GROUP, "crashed-before-write", {key: ">"}, count=10)
    # Consumer 2 writes 10 more and dies between the commit and XACK.
    with monkeypatch.context() as patch, django_capture_on_commit_callbacks(execute=True):
        patch.setattr(clicks, "_acknowledge", lambda client, ids: None)
        assert clicks.flush_click_buffer(10) == 10
    assert Click.objects.count() == 10

    # Redis itself is killed (SIGKILL) and, while it is down, clicks go straight to the database.
    throwaway_redis.kill()
    for n in range(30, 40):
        click(n)
    assert Click.objects.count() == 20

    throwaway_redis.start()
    clicks.reset_buffer_state()
    monkeypatch.setattr(clicks, "RECLAIM_IDLE_MS", 0)  # the dead consumers' entries are due now
    handled = []
    while not handled or handled[-1]:  # a worker's flush loop, one committed batch at a time
        assert len(handled) < 20
        with django_capture_on_commit_callbacks(execute=True):
            handled.append(clicks.flush_click_buffer(7))
    assert sum(handled) == 30  # every stream entry once: 10 unwritten, 10 unacknowledged, 10 new
    tried("40 clicks (30 buffered, 10 during the outage), 2 crashed consumers, 1 Redis SIGKILL")

    assert Click.objects.count() == 40
    assert Click.objects.filter(is_unique=True).count() == len(pairs) == UniqueVisitor.objects.count()
    assert sum(DailyLinkStats.objects.values_list("clicks", flat=True)) == 40
    assert _rollups_match_raw_rows()
    assert click_stream._redis("consumer").xpending(key, clicks.GROUP)["pending"] == 0
    assert click_stream._redis("consumer").xlen(key) == 0


# --- PostgreSQL connection killed between requests ----------------------------------------------------
def _terminate_backend(pid: int) -> None:
    import psycopg

    db = connection.settings_dict
    with psycopg.connect(
        host=db["HOST"] or "127.0.0.1",
        port=db["PORT"] or 5432,
        user=db["USER"],
        password=db["PASSWORD"] or None,
        dbname=db["NAME"],
        autocommit=True,
    ) as other:
        killed = other.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone()[0]
    assert killed


def _wsgi_get(path: str, cookies: dict[str, str]) -> int:
    """One request through Django's real WSGI handler in this thread, as a gunicorn worker runs
    it (the test client skips the request_started/finished connection housekeeping)."""
    environ = RequestFactory()._base_environ(
        PATH_INFO=path, REQUEST_METHOD="GET", HTTP_COOKIE="; ".join(f"{k}={v}" for k, v in cookies.items())
    )
    status: list[str] = []
    response = WSGIHandler()(environ, lambda s, headers, exc_info=None: status.append(s))
    b"".join(response)
    response.close()
    return int(status[0].split()[0])


@contextmanager
def _connection_settings(**values):
    saved = {key: connection.settings_dict[key] for key in values}
    connection.settings_dict.update(values)
    try:
        yield
    finally:
        connection.settings_dict.update(saved)
        connection.close()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_postgresql_connection_killed_between_requests_is_replaced_by_the_next_request(tried):
    partner = PartnerFactory()
    client = Client()
    client.force_login(partner.user)
    cookies = {name: morsel.value for name, morsel in client.cookies.items()}
    with _connection_settings(CONN_MAX_AGE=60, CONN_HEALTH_CHECKS=True):
        connection.close()
        assert _wsgi_get("/dashboard/", cookies) == 200
        old_pid = connection.connection.info.backend_pid  # kept open for the next request
        _terminate_backend(old_pid)
        assert _wsgi_get("/dashboard/", cookies) == 200
        assert _wsgi_get("/healthz", {}) == 200
        assert connection.connection.info.backend_pid != old_pid
    tried("3 requests, 1 backend terminated")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_without_health_checks_the_killed_connection_fails_one_request_which_is_what_they_prevent(tried):
    partner = PartnerFactory()
    client = Client()
    client.force_login(partner.user)
    cookies = {name: morsel.value for name, morsel in client.cookies.items()}
    with _connection_settings(CONN_MAX_AGE=60, CONN_HEALTH_CHECKS=False):
        connection.close()
        assert _wsgi_get("/dashboard/", cookies) == 200
        _terminate_backend(connection.connection.info.backend_pid)
        assert _wsgi_get("/dashboard/", cookies) == 500
        assert _wsgi_get("/dashboard/", cookies) == 200
    tried("3 requests, 1 backend terminated (control: health checks off)")


def _wsgi_post_event(body: dict) -> tuple[int, dict]:
    """One signed event through the project's WSGI application in this thread (the short
    middleware chain, the server's connection housekeeping)."""
    import io
    import json

    from commissions.signing import signature_header
    from config.handlers import Application

    raw = json.dumps(body).encode()
    environ = RequestFactory()._base_environ(
        PATH_INFO="/api/v1/events",
        REQUEST_METHOD="POST",
        CONTENT_TYPE="application/json",
        CONTENT_LENGTH=str(len(raw)),
        HTTP_X_PARTNER_SIGNATURE=signature_header(secret=settings.EVENTS_SIGNING_SECRET, body=raw),
    )
    environ["wsgi.input"] = io.BytesIO(raw)
    status: list[str] = []
    response = Application()(environ, lambda s, headers, exc_info=None: status.append(s))
    content = b"".join(response)
    response.close()
    try:
        return int(status[0].split()[0]), json.loads(content)
    except ValueError:
        return int(status[0].split()[0]), {"not JSON": content.decode(errors="replace")[:200]}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_events_api_skips_the_health_check_and_retries_an_event_on_a_killed_connection(tried):
    """The events API runs without the per-request SELECT 1 (config/dbretry.py): an event that
    meets a connection PostgreSQL dropped runs again on a new one, once, and is applied once."""
    click = ClickFactory()
    with _connection_settings(CONN_MAX_AGE=60, CONN_HEALTH_CHECKS=True):
        connection.close()
        assert _wsgi_post_event(signed_up("cus_1", click.id))[0] == 201
        for body in (paid("pay_1", "cus_1"), signed_up("cus_2", click.id), paid("pay_2", "cus_9")):
            old_pid = connection.connection.info.backend_pid
            _terminate_backend(old_pid)
            status, answer = _wsgi_post_event(body)
            assert status == 201, answer
            assert connection.connection.info.backend_pid != old_pid
        assert _wsgi_post_event(paid("pay_1", "cus_1"))[0] == 200  # a replay: applied once
    assert Referral.objects.filter(customer_id__in=["cus_1", "cus_2"]).count() == 2
    assert CommissionEntry.objects.filter(payment__payment_id="pay_1").count() == 1
    assert MerchantEvent.objects.count() == 5
    tried("5 events, 3 backends terminated before an event")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_events_api_error_that_is_not_the_connection_is_not_retried(tried, monkeypatch):
    from django.db import DatabaseError

    from commissions import api

    calls: list[int] = []

    def failing(**kwargs):
        calls.append(1)
        raise DatabaseError("a statement error, the connection alive")

    monkeypatch.setattr(api, "event_receive", failing)
    with _connection_settings(CONN_MAX_AGE=60, CONN_HEALTH_CHECKS=True):
        connection.close()
        connection.ensure_connection()
        with pytest.raises(DatabaseError):
            api.on_live_connection(lambda: api.event_receive(parsed=None))
    assert calls == [1]
    tried("1 event failing on a live connection")


# --- fake PayPal slow, down, answering garbage ----------------------------------------------------------
def _approved_and_sent(partner, staff, capture) -> Payout:
    with capture(execute=True):
        payout = payout_request(partner=partner)
    with capture(execute=True):
        payout_approve(payout_id=payout.pk, actor=staff)
    return Payout.objects.get(pk=payout.pk)


def _assert_paid_once(payout: Payout, fake) -> None:
    payout.refresh_from_db()
    assert payout.status == Payout.Status.PAID
    assert len(fake.batches_for(payout.sender_batch_id)) == 1
    assert len(fake.batches) == 1
    assert PayoutAudit.objects.filter(payout=payout, action=PayoutAudit.Action.PAID).count() == 1
    assert partner_balance(partner=payout.partner) == Decimal("0.00")


@pytest.mark.parametrize(
    "behaviour",
    ["timeout", "garbage", "500"],
    ids=["slow (client timeout)", "garbage (non-JSON 200)", "server error"],
)
def test_a_paypal_that_fails_when_the_batch_is_created_pays_once_after_recovery(
    behaviour, fake_paypal, partner_with_balance, payout_staff, django_capture_on_commit_callbacks, tried
):
    fake_paypal.script(create=[behaviour])
    payout = _approved_and_sent(partner_with_balance("75.00"), payout_staff, django_capture_on_commit_callbacks)
    tried(f"1 payout, create answered {behaviour!r} then normally")
    _assert_paid_once(payout, fake_paypal)
    assert payout.send_attempts == 2


@pytest.mark.parametrize("behaviour", ["timeout", "garbage", "500"])
def test_a_paypal_that_fails_when_the_batch_is_read_leaves_the_payout_processing_until_a_later_poll_pays_it(
    behaviour, fake_paypal, partner_with_balance, payout_staff, django_capture_on_commit_callbacks, tried
):
    fake_paypal.script(get=[behaviour])
    payout = _approved_and_sent(partner_with_balance("75.00"), payout_staff, django_capture_on_commit_callbacks)
    assert payout.status == Payout.Status.SENT
    assert payout.paypal_batch_id
    assert partner_balance(partner=payout.partner) == Decimal("0.00")  # held, not lost
    Payout.objects.filter(pk=payout.pk).update(next_action_at=timezone.now())  # the next poll is due
    reconcile_payouts_task.apply()
    tried(f"1 payout, batch read answered {behaviour!r} then normally")
    _assert_paid_once(payout, fake_paypal)


def test_a_paypal_that_is_down_leaves_the_payout_held_for_staff_and_a_retry_pays_it_once(
    fake_paypal, partner_with_balance, payout_staff, settings, django_capture_on_commit_callbacks, tried
):
    settings.PAYPAL_API_BASE = f"http://127.0.0.1:{free_port(20000)}"  # connection refused
    payout = _approved_and_sent(partner_with_balance("75.00"), payout_staff, django_capture_on_commit_callbacks)
    assert payout.status == Payout.Status.ATTENTION
    assert payout.paypal_batch_id == ""
    assert "Gave up after 7 attempts" in payout.attention_reason
    assert not payout.outcome_unknown  # refused connections never carried the request
    assert partner_balance(partner=payout.partner) == Decimal("0.00")  # neither paid nor lost

    settings.PAYPAL_API_BASE = fake_paypal.base_url
    with django_capture_on_commit_callbacks(execute=True):
        payout_check_now(payout_id=payout.pk, actor=payout_staff)
    tried("7 refused connections, then 1 staff retry")
    _assert_paid_once(payout, fake_paypal)


def test_a_payout_paypal_refuses_for_good_fails_and_its_amount_is_back_in_the_balance(
    fake_paypal, partner_with_balance, payout_staff, django_capture_on_commit_callbacks, tried
):
    fake_paypal.script(create=["422"])
    partner = partner_with_balance("75.00")
    payout = _approved_and_sent(partner, payout_staff, django_capture_on_commit_callbacks)
    assert payout.status == Payout.Status.FAILED
    assert "Sender does not have sufficient funds" in payout.failure_reason
    assert partner_balance(partner=partner) == Decimal("75.00")
    assert fake_paypal.batches == {}
    # The partner can ask again and, PayPal funded, is paid once.
    again = _approved_and_sent(partner, payout_staff, django_capture_on_commit_callbacks)
    tried("2 payouts, the first refused with 422")
    _assert_paid_once(again, fake_paypal)


def test_a_send_task_run_again_after_paypal_took_the_batch_never_pays_twice(
    fake_paypal, partner_with_balance, payout_staff, django_capture_on_commit_callbacks, tried
):
    """A worker dies after PayPal created the batch but before the batch id was saved
    (acks_late re-delivers the task): the second run finds PayPal's batch and pays nothing new."""

    class WorkerKilled(BaseException):
        pass

    from payouts import services
    from payouts.gateway import PayPalGateway

    class DiesAfterSending(PayPalGateway):
        def send(self, **kwargs):
            super().send(**kwargs)
            raise WorkerKilled

    partner = partner_with_balance("75.00")
    with django_capture_on_commit_callbacks(execute=True):
        payout = payout_request(partner=partner)
    # Approve without running the on-commit send task: the "worker" below runs it.
    with django_capture_on_commit_callbacks(execute=False):
        payout_approve(payout_id=payout.pk, actor=payout_staff)
    with pytest.raises(WorkerKilled):
        services.payout_send(payout_id=payout.pk, gateway=DiesAfterSending())
    payout.refresh_from_db()
    assert (payout.status, payout.paypal_batch_id) == (Payout.Status.SENDING, "")
    assert len(fake_paypal.batches) == 1
    # A duplicate delivery while the attempt may still be under way waits for it...
    assert send_payout_task.apply(args=[payout.pk]).get() == "in_flight"
    # ...and the broker's redelivery (visibility timeout) comes after it is stale.
    Payout.objects.filter(pk=payout.pk).update(attempt_started_at=timezone.now() - timedelta(minutes=10))

    for _ in range(3):  # re-delivered, then delivered twice more for good measure
        send_payout_task.apply(args=[payout.pk])
    tried("1 payout, the send task run 4 times")
    _assert_paid_once(payout, fake_paypal)
    # PayPal answered the resend with the batch it already had (a PayPal-Request-Id replay).
    sent = PayoutAudit.objects.filter(payout=payout, action=PayoutAudit.Action.SENT).get()
    assert sent.detail["batch_id"] == next(iter(fake_paypal.batches))


# --- a real Celery worker killed in the middle of a payout ----------------------------------------------
def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def _wait(condition, *, seconds: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}; worker log:\n{log.read_text()[-4000:]}")


@contextmanager
def _worker(fake, broker_url: str):
    env = {
        **os.environ,
        "DEBUG": "true",
        "DATABASE_URL": database_url(),
        "REDIS_URL": broker_url,
        "PAYPAL_API_BASE": fake.base_url,
        "PAYPAL_CLIENT_ID": fake.client_id,
        "PAYPAL_CLIENT_SECRET": fake.client_secret,
        "PAYPAL_MODE": "sandbox",
        "PAYPAL_TIMEOUT_SECONDS": "60",  # the worker sits in the HTTP call until it is killed
        "EMAIL_URL": "consolemail://",
        "CLICK_BUFFER": "false",
    }
    log = Path(tempfile.mkstemp(prefix="pp-rel-worker-", suffix=".log")[1])
    with log.open("w") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "--pool=prefork",
                "--concurrency=1",
                "--loglevel=INFO",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process, log
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.unlink(missing_ok=True)


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_while_paypal_takes_the_batch_is_redelivered_and_pays_exactly_once(
    fake_paypal, partner_with_balance, payout_staff, tried
):
    broker_url = shared_redis_url(BROKER_REDIS_DB)
    redis_or_skip(broker_url).flushdb()  # db 9 belongs to this suite: no stale tasks
    fake_paypal.hang_seconds = 90
    fake_paypal.script(create=["timeout"])  # PayPal records the batch, the answer never comes
    partner = partner_with_balance("75.00")
    payout = payout_request(partner=partner)
    with _worker(fake_paypal, broker_url) as (process, log), celery_broker(broker_url):
        payout_approve(payout_id=payout.pk, actor=payout_staff)  # publishes send_payout_task
        _wait(lambda: len(fake_paypal.batches) == 1, seconds=120, what="PayPal to receive the batch", log=log)
        children = _children(process.pid)
        assert len(children) == 1, children
        os.kill(children[0], signal.SIGKILL)  # the pool process dies in the middle of the task
        _wait(
            lambda: Payout.objects.get(pk=payout.pk).status == Payout.Status.PAID,
            seconds=120,
            what="the re-delivered task to pay the payout",
            log=log,
        )
    tried("1 payout, 1 pool process SIGKILLed inside the PayPal call")
    payout.refresh_from_db()
    assert payout.send_attempts == 2
    _assert_paid_once(payout, fake_paypal)
    assert fake_paypal.count("POST", "/v1/payments/payouts") == 2


# --- Redis down: the sign-up that follows a buffered click -------------------------------------------------
def test_a_sign_up_after_a_click_recorded_during_the_outage_is_attributed(redis_down, tried):
    link = LinkFactory()
    client = Client()
    click_id = _click_id(_visit(client, link.code, _visitor(3)))
    response = post_event(client, signed_up("cus_outage", click_id, created=timezone.now()))
    tried("1 click, 1 sign-up")
    assert response.status_code == 201
    assert Referral.objects.get(customer_id="cus_outage").link == link
    assert MerchantEvent.objects.count() == 1
