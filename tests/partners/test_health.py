import pytest


@pytest.mark.django_db
def test_healthz_names_database_and_redis_state(client, settings):
    settings.REDIS_URL = ""
    body = client.get("/healthz").json()
    assert body["database"] == "ok"
    assert body["redis"] == "not_configured"


@pytest.mark.django_db
def test_healthz_reports_unreachable_redis_as_degraded(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["database"], body["redis"]) == ("degraded", "ok", "down")
    assert body["beat"]["state"] == body["workers"] == "down"


def test_oversized_request_bodies_are_refused_early(client, settings):
    settings.MAX_REQUEST_BODY_BYTES = 1000
    response = client.post("/api/v1/events", data="x" * 2000, content_type="application/json")
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_client_ip_is_remote_addr_without_trusted_proxies(rf, settings):
    from config.clientip import client_ip

    settings.TRUSTED_PROXY_COUNT = 0
    request = rf.get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="1.2.3.4")
    assert client_ip(request) == "10.0.0.1"


def test_client_ip_skips_spoofed_entries_behind_one_trusted_proxy(rf, settings):
    from config.clientip import client_ip

    settings.TRUSTED_PROXY_COUNT = 1
    request = rf.get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.9")
    assert client_ip(request) == "203.0.113.9"
