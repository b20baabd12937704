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
    assert response.json() == {"status": "degraded", "database": "ok", "redis": "down"}


def test_oversized_request_bodies_are_refused_early(client, settings):
    settings.MAX_REQUEST_BODY_BYTES = 1000
    response = client.post("/api/v1/events", data="x" * 2000, content_type="application/json")
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
