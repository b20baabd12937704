"""/healthz: the click flusher's backlog, beat's heartbeat and the worker ping."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from config import health
from config.beat import HEARTBEAT_KEY, HeartbeatScheduler, last_heartbeat, record_heartbeat
from tests.factories import LinkFactory
from tracking import click_writes, clicks, spool
from tracking.backlog import click_backlog


@pytest.fixture(autouse=True)
def _fresh(settings, tmp_path):
    settings.CLICK_SPOOL_DIR = tmp_path / "spool"
    clicks.reset_buffer_state()
    health.reset_worker_ping_cache()
    yield
    clicks.reset_buffer_state()
    health.reset_worker_ping_cache()


def _spool_click(link, *, age_seconds: float) -> None:
    spool.append(
        click_writes.ClickData(
            id=uuid.uuid4(),
            link_id=link.pk,
            partner_id=link.partner_id,
            visitor_id="v" * 20,
            created_at=timezone.now() - timedelta(seconds=age_seconds),
        )
    )


def _workers(monkeypatch, replies):
    from config.celery_app import app

    monkeypatch.setattr(app.control, "ping", lambda **kwargs: replies)


@pytest.mark.django_db
def test_without_redis_or_buffer_every_part_is_ok_or_not_configured(client, settings):
    settings.REDIS_URL = ""
    body = client.get("/healthz").json()
    assert body == {
        "status": "ok",
        "database": "ok",
        "redis": "not_configured",
        "click_backlog": {"state": "not_configured", "oldest_age_seconds": None},
        "beat": {"state": "not_configured", "last_heartbeat_age_seconds": None},
        "workers": "not_configured",
    }


@pytest.mark.django_db
@pytest.mark.parametrize(("age", "state"), [(5, "ok"), (120, "degraded"), (900, "down")])
def test_the_spool_backlog_is_the_age_of_the_oldest_unflushed_click(client, settings, age, state):
    settings.REDIS_URL = ""
    settings.CLICK_BUFFER = "spool"
    link = LinkFactory()
    _spool_click(link, age_seconds=age)
    _spool_click(link, age_seconds=1)
    body = client.get("/healthz").json()
    assert body["click_backlog"]["state"] == state
    assert body["click_backlog"]["oldest_age_seconds"] == pytest.approx(age, abs=2)
    assert body["status"] == ("ok" if state == "ok" else "degraded")


@pytest.mark.django_db
def test_a_flushed_spool_has_no_backlog(settings, django_capture_on_commit_callbacks):
    settings.CLICK_BUFFER = "spool"
    link = LinkFactory()
    _spool_click(link, age_seconds=900)
    spool.close_current()
    assert click_backlog().pending > 0
    with django_capture_on_commit_callbacks(execute=True):
        spool.flush_spool(1000)
    backlog = click_backlog()
    assert (backlog.oldest_age_seconds, backlog.pending) == (None, 0)


@pytest.mark.django_db
@pytest.mark.parametrize(("age", "state"), [(20, "ok"), (100, "degraded"), (400, "down"), (None, "down")])
def test_beat_state_follows_its_last_heartbeat(client, settings, monkeypatch, age, state):
    settings.REDIS_URL = "redis://configured"
    monkeypatch.setattr(health, "_redis_state", lambda: "ok")
    _workers(monkeypatch, [{"worker@host": {"ok": "pong"}}])
    if age is not None:
        record_heartbeat(time.time() - age)
    body = client.get("/healthz").json()
    assert body["beat"]["state"] == state
    assert body["workers"] == "ok"
    assert body["status"] == ("ok" if state == "ok" else "degraded")


@pytest.mark.django_db
def test_no_worker_answering_the_ping_is_down(client, settings, monkeypatch):
    settings.REDIS_URL = "redis://configured"
    monkeypatch.setattr(health, "_redis_state", lambda: "ok")
    record_heartbeat()
    _workers(monkeypatch, [])
    body = client.get("/healthz").json()
    assert (body["workers"], body["status"]) == ("down", "degraded")


def test_the_worker_ping_is_remembered_between_health_checks(settings, monkeypatch):
    settings.REDIS_URL = "redis://configured"
    calls = []
    from config.celery_app import app

    monkeypatch.setattr(app.control, "ping", lambda **kwargs: calls.append(kwargs) or [{"w": {"ok": "pong"}}])
    assert [health.workers_state() for _ in range(3)] == ["ok", "ok", "ok"]
    assert len(calls) == 1


def test_beat_records_a_heartbeat_as_it_ticks(monkeypatch, tmp_path):
    from celery.beat import PersistentScheduler

    from config.celery_app import app

    monkeypatch.setattr(PersistentScheduler, "tick", lambda self, *a, **k: 1.0)
    scheduler = HeartbeatScheduler.__new__(HeartbeatScheduler)  # no schedule file: tick only
    from django.core.cache import cache

    cache.delete(HEARTBEAT_KEY)
    assert last_heartbeat() is None
    assert scheduler.tick() == 1.0
    assert time.time() - last_heartbeat() < 5
    assert app.conf.beat_scheduler == "config.beat:HeartbeatScheduler"


@pytest.mark.django_db
def test_a_database_outage_is_a_503(client, settings, monkeypatch):
    settings.REDIS_URL = ""
    monkeypatch.setattr(health, "_database_ok", lambda: False)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["status"] == "down"
