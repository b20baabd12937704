"""The WSGI application: Django's handler, with the affiliate link on a shorter middleware chain.

``/r/<code>`` is most of the traffic and needs little of the stack: no session, user, CSRF
token, flash message, static file or login lockout. Its requests go through Django's own
``WSGIHandler`` built with ``CLICK_PATH_MIDDLEWARE`` (a subset of ``MIDDLEWARE``, in the same
order: the body-size limit and the middleware that set response headers), so a redirect gets
exactly the headers the full stack would give it at a fraction of the cost. Everything else,
``/r/`` paths that are not a link included, goes through the full stack.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler

# The shape of the ``r/<str:code>`` URL pattern (config/urls.py): one non-empty segment.
CLICK_PATH_RE = re.compile(r"/r/[^/]+\Z")


class ClickPathHandler(WSGIHandler):
    """``WSGIHandler`` whose middleware chain is ``settings.CLICK_PATH_MIDDLEWARE``."""

    def load_middleware(self, is_async: bool = False) -> None:
        # BaseHandler.load_middleware reads settings.MIDDLEWARE: give it the subset while it
        # builds the chain (once, when the process starts).
        full = settings.MIDDLEWARE
        settings.MIDDLEWARE = settings.CLICK_PATH_MIDDLEWARE
        try:
            super().load_middleware(is_async)
        finally:
            settings.MIDDLEWARE = full


class Application:
    """The project's WSGI callable: ``/r/<code>`` to ``ClickPathHandler``, the rest to Django."""

    def __init__(self) -> None:
        self.full = WSGIHandler()
        self.click = ClickPathHandler()
        self._match = CLICK_PATH_RE.match

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if self._match(environ.get("PATH_INFO", "")):
            return self.click(environ, start_response)
        return self.full(environ, start_response)
