"""Logs: a request id on every line and in the response, an access log, JSON lines."""

from __future__ import annotations

import io
import json
import logging
import logging.config
from wsgiref.util import setup_testing_defaults

import pytest

from config.logs import RequestLog, current_request_id, logging_config


def _environ(path: str = "/somewhere", **extra) -> dict:
    environ = {"PATH_INFO": path, "REQUEST_METHOD": "GET", **extra}
    setup_testing_defaults(environ)
    return environ


def _app_logging(seen: list):
    def app(environ, start_response):
        logging.getLogger("partners.views").warning("inside the view")
        seen.append(current_request_id())
        start_response("302 Found", [("Location", "/x")])
        return [b""]

    return app


@pytest.fixture
def captured():
    """Root logging as settings.LOGGING builds it (JSON), into a buffer."""
    stream = io.StringIO()
    config = logging_config(log_format="json", level="INFO")
    config["handlers"]["console"]["stream"] = stream
    previous = logging.root.handlers[:]
    logging.config.dictConfig(config)
    yield stream
    logging.root.handlers[:] = previous


def _lines(stream) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_every_line_of_a_request_carries_its_id_and_the_response_names_it(captured):
    seen, headers = [], []
    RequestLog(_app_logging(seen))(_environ(), lambda status, h, exc_info=None: headers.extend(h))
    request_id = dict(headers)["X-Request-ID"]
    lines = _lines(captured)
    assert [line["request_id"] for line in lines] == [request_id, request_id]
    assert seen == [request_id]
    assert current_request_id() == "-"  # nothing leaks into the next request on this thread


def test_the_access_log_names_method_path_status_and_duration_but_no_address_or_query(captured):
    environ = _environ("/r/abc", QUERY_STRING="token=secret", REMOTE_ADDR="203.0.113.9")
    RequestLog(_app_logging([]))(environ, lambda *args: None)
    access = [line for line in _lines(captured) if line["logger"] == "partner_panel.access"]
    assert len(access) == 1
    line = access[0]
    assert (line["method"], line["path"], line["status"], line["level"]) == ("GET", "/r/abc", 302, "INFO")
    assert line["duration_ms"] >= 0
    assert "203.0.113.9" not in json.dumps(line) and "secret" not in json.dumps(line)


def test_a_proxys_well_formed_request_id_is_kept_and_a_bad_one_replaced(captured):
    headers = []
    app = RequestLog(_app_logging([]), access_log=False)
    app(_environ(HTTP_X_REQUEST_ID="nginx-7f3a9c"), lambda status, h, exc_info=None: headers.append(dict(h)))
    app(_environ(HTTP_X_REQUEST_ID="bad id\nInjected"), lambda status, h, exc_info=None: headers.append(dict(h)))
    assert headers[0]["X-Request-ID"] == "nginx-7f3a9c"
    assert headers[1]["X-Request-ID"] != "bad id\nInjected" and len(headers[1]["X-Request-ID"]) == 16
    assert [line["request_id"] for line in _lines(captured)] == ["nginx-7f3a9c", headers[1]["X-Request-ID"]]


def test_without_access_log_only_the_apps_lines_are_written(captured):
    RequestLog(_app_logging([]), access_log=False)(_environ(), lambda *args: None)
    assert [line["logger"] for line in _lines(captured)] == ["partners.views"]


def test_an_unknown_log_format_stops_startup_naming_the_variable():
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured, match="LOG_FORMAT"):
        logging_config(log_format="xml", level="INFO")


def test_plain_lines_carry_the_request_id_too():
    config = logging_config(log_format="plain", level="INFO")
    assert "[%(request_id)s]" in config["formatters"]["default"]["format"]
    assert config["handlers"]["console"]["filters"] == ["request_id"]


@pytest.mark.django_db
def test_the_served_application_answers_with_a_request_id(client):
    from config.wsgi import application

    headers = []
    application(_environ("/healthz"), lambda status, h, exc_info=None: headers.extend(h))
    assert "X-Request-ID" in dict(headers)
