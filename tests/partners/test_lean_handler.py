"""The WSGI application (config.handlers): /r/<code> and the events API on the short middleware
chain answer exactly as through the full stack, and every other path still gets the full stack."""

from __future__ import annotations

import io
import json

import pytest
from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import RequestFactory

from commissions.signing import signature_header
from config.handlers import LEAN_PATH_RE, Application
from tests.factories import LinkFactory
from tests.tracking.conftest import BROWSER_UA

pytestmark = pytest.mark.django_db


def _call(app, method: str, path: str, **extra) -> tuple[str, list[tuple[str, str]], bytes]:
    environ = getattr(RequestFactory(), method.lower())(path, HTTP_USER_AGENT=BROWSER_UA, **extra).environ
    environ.setdefault("wsgi.input", io.BytesIO(b""))
    answer: dict = {}

    def start_response(status, headers, exc_info=None):
        answer["status"], answer["headers"] = status, headers

    # As Django's test client does: the request signals must not close the test's connection.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        response = app(environ, start_response)
        body = b"".join(response)
        response.close()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    return answer["status"], answer["headers"], body


def _shape(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Header names with their values, the per-click parts (ids, dates) masked."""
    shaped = []
    for name, value in headers:
        if name == "Set-Cookie":
            cookie_name, _, rest = value.partition("=")
            attributes = [a for a in rest.split("; ")[1:] if not a.startswith("expires=")]
            value = f"{cookie_name}=…; {'; '.join(attributes)}"
        elif name == "Location":
            value = value.split("aff_click=")[0]
        shaped.append((name, value))
    return sorted(shaped)


def test_a_click_gets_the_same_answer_as_through_the_full_stack(settings):
    settings.DEBUG = False  # Secure cookies and the production security headers
    settings.SECURE_SSL_REDIRECT = False
    settings.SECURE_HSTS_SECONDS = 3600
    link = LinkFactory()
    full = _call(WSGIHandler(), "GET", f"/r/{link.code}?utm_source=x", secure=True)
    slim = _call(Application(), "GET", f"/r/{link.code}?utm_source=x", secure=True)
    assert slim[0] == full[0] == "302 Found"
    assert _shape(slim[1]) == _shape(full[1])
    names = {name for name, _ in slim[1]}
    assert {"Strict-Transport-Security", "X-Frame-Options", "X-Content-Type-Options", "Referrer-Policy"} <= names
    assert any(name.startswith("Content-Security-Policy") for name in names)


def test_refusals_on_the_click_path_match_the_full_stack():
    link = LinkFactory()
    for method, extra in (("POST", {}), ("GET", {"CONTENT_LENGTH": str(10**9)})):
        full = _call(WSGIHandler(), method, f"/r/{link.code}", **extra)
        slim = _call(Application(), method, f"/r/{link.code}", **extra)
        assert (slim[0], _shape(slim[1]), slim[2]) == (full[0], _shape(full[1]), full[2])
    assert slim[0].startswith("413")


@pytest.mark.parametrize(
    ("path", "is_lean"),
    [
        ("/r/abc", True),
        ("/api/v1/events", True),
        ("/r/abc/", False),
        ("/r/", False),
        ("/r/a/b", False),
        ("/rr/abc", False),
        ("/x/r/abc", False),
        ("/api/v1/events/", False),
        ("/api/v1/summary", False),
    ],
)
def test_only_the_link_pattern_and_the_events_api_take_the_short_chain(path, is_lean):
    assert bool(LEAN_PATH_RE.match(path)) is is_lean


def _signed_event(payment_id: str) -> tuple[bytes, str]:
    body = json.dumps(
        {
            "id": f"evt-{payment_id}",
            "type": "payment.succeeded",
            "created": "2026-01-01T00:00:00Z",
            "data": {
                "payment_id": payment_id,
                "customer_id": "cus_nobody",
                "amount": "49.00",
                "currency": "USD",
                "plan": "A",
                "seats": 1,
            },
        }
    ).encode()
    return body, signature_header(secret=settings.EVENTS_SIGNING_SECRET, body=body)


def test_an_event_gets_the_same_answer_as_through_the_full_stack():
    answers = []
    for app, payment_id in ((WSGIHandler(), "pay_full"), (Application(), "pay_lean")):
        body, signature = _signed_event(payment_id)
        answers.append(
            _call(
                app,
                "POST",
                "/api/v1/events",
                data=body,
                content_type="application/json",
                HTTP_X_PARTNER_SIGNATURE=signature,
            )
        )
    (full_status, full_headers, full_body), (lean_status, lean_headers, lean_body) = answers
    assert lean_status == full_status == "201 Created"
    assert _shape(lean_headers) == _shape(full_headers)
    assert json.loads(lean_body) == json.loads(full_body) == {"payment": None, "commission": None}
    # A request the API refuses is refused the same way.
    for app in (WSGIHandler(), Application()):
        status, _, body = _call(app, "POST", "/api/v1/events", data=b"{}", content_type="application/json")
        assert status.startswith("401") and json.loads(body)["error"]["code"]


def test_other_pages_keep_the_full_stack():
    status, headers, _ = _call(Application(), "GET", "/accounts/login/")
    assert status == "200 OK"
    assert any(name == "Set-Cookie" and value.strip().startswith("csrftoken=") for name, value in headers)


def test_the_short_chain_is_the_full_one_without_what_a_redirect_never_uses(settings):
    short = settings.LEAN_MIDDLEWARE
    assert short == [name for name in settings.MIDDLEWARE if name in short]  # same order
    assert "django.middleware.security.SecurityMiddleware" in short
    assert "config.middleware.CSPMiddleware" in short
    assert not {name for name in short if "session" in name or "auth" in name or "csrf" in name}
