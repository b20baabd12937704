"""Logging for operators: a request id on every line, an access log, plain or JSON lines.

``RequestLog`` wraps the WSGI application (config/wsgi.py), so both middleware chains of
``config.handlers`` are covered and the id is known before any middleware logs. The id is the
request's ``X-Request-ID`` when a proxy in front sent a well-formed one (nginx's
``$request_id``), otherwise a new random one; it goes back in the response's ``X-Request-ID``
header and onto every log line written while the request runs (``RequestIdFilter``). A Celery
task's lines carry the task id instead (config/celery_app.py).

The access log (logger ``partner_panel.access``, one line per response when it starts) names
method, path, status and duration. It leaves out the client's address and the query string:
the panel stores visitors' addresses only as keyed hashes, and a query string may carry a token.

``LOG_FORMAT=json`` (python-json-logger) writes each line as one JSON object with the same
fields, for a log shipper; the default is plain text.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Iterable
from contextvars import ContextVar

_request_id: ContextVar[str] = ContextVar("request_id", default="-")
_WELL_FORMED = re.compile(r"[A-Za-z0-9._:-]{1,64}")
access_logger = logging.getLogger("partner_panel.access")


def current_request_id() -> str:
    return _request_id.get()


def set_request_id(value: str):
    """Set the id for the current context; returns the token for ``reset_request_id``."""
    return _request_id.set(value)


def reset_request_id(token) -> None:
    _request_id.reset(token)


class RequestIdFilter(logging.Filter):
    """Puts ``request_id`` on every record (``-`` outside a request or task)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _request_id.get()
        return True


class RequestLog:
    """WSGI middleware: the request id, the ``X-Request-ID`` response header, the access log."""

    def __init__(self, app: Callable, *, access_log: bool = True) -> None:
        self.app = app
        self.access_log = access_log

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        given = environ.get("HTTP_X_REQUEST_ID", "")
        request_id = given if given and _WELL_FORMED.fullmatch(given) else os.urandom(8).hex()
        token = _request_id.set(request_id)
        started = time.perf_counter()

        def start(status: str, headers: list, exc_info=None):
            headers.append(("X-Request-ID", request_id))
            if self.access_log:
                method, path = environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", "")
                duration_ms = round((time.perf_counter() - started) * 1000, 2)
                code = int(status[:3])
                access_logger.info(
                    "%s %s %s %.2fms",
                    method,
                    path,
                    code,
                    duration_ms,
                    extra={"method": method, "path": path, "status": code, "duration_ms": duration_ms},
                )
            return start_response(status, headers, exc_info)

        try:
            return self.app(environ, start)
        finally:
            _request_id.reset(token)


def logging_config(*, log_format: str, level: str) -> dict:
    """The ``LOGGING`` setting: plain text or JSON lines on stderr, each with its request id."""
    if log_format not in ("plain", "json"):
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(f"LOG_FORMAT must be plain or json, not {log_format!r}.")
    fields = "%(asctime)s %(levelname)s %(name)s %(request_id)s %(message)s"
    formatter = (
        {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": fields,
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        }
        if log_format == "json"
        else {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": "config.logs.RequestIdFilter"}},
        "formatters": {"default": formatter},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "default", "filters": ["request_id"]}},
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            # paypalrestsdk logs request headers (the OAuth bearer token) at DEBUG in sandbox.
            "paypalrestsdk": {"level": "WARNING", "propagate": True},
            "axes": {"level": "WARNING"},
        },
    }
