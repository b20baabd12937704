"""The WSGI application: Django's handler, with the two hottest URLs on a shorter middleware chain.

``/r/<code>`` (the affiliate link: most of the traffic) and ``POST /api/v1/events`` (the
merchant's events, signed, no session) need little of the stack: no session, user, CSRF token,
flash message, static file or login lockout. Their requests go through Django's own
``WSGIHandler`` built with ``LEAN_MIDDLEWARE`` (a subset of ``MIDDLEWARE``, in the same order:
the body-size limit, the host check and the middleware that set response headers), so they get
exactly the answer the full stack would give them at a fraction of the cost. Everything else,
``/r/`` paths that are not a link included, goes through the full stack.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler

# The ``r/<str:code>`` URL pattern (config/urls.py: one non-empty segment) and the events API.
LEAN_PATH_RE = re.compile(r"/r/[^/]+\Z|/api/v1/events\Z")


class LeanHandler(WSGIHandler):
    """``WSGIHandler`` whose middleware chain is ``settings.LEAN_MIDDLEWARE``."""

    def load_middleware(self, is_async: bool = False) -> None:
        # BaseHandler.load_middleware reads settings.MIDDLEWARE: give it the subset while it
        # builds the chain (once, when the process starts).
        full = settings.MIDDLEWARE
        settings.MIDDLEWARE = settings.LEAN_MIDDLEWARE
        try:
            super().load_middleware(is_async)
        finally:
            settings.MIDDLEWARE = full


class Application:
    """The project's WSGI callable: the lean paths to ``LeanHandler``, the rest to Django."""

    def __init__(self) -> None:
        self.full = WSGIHandler()
        self.lean = LeanHandler()
        self._match = LEAN_PATH_RE.match

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if self._match(environ.get("PATH_INFO", "")):
            return self.lean(environ, start_response)
        return self.full(environ, start_response)
