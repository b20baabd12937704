"""Project-wide middleware."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse


class BodySizeLimitMiddleware:
    """Refuse a request whose declared body is over MAX_REQUEST_BODY_BYTES with 413, before
    any view or form reads it (Django's own limit only trips when the body is parsed)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > settings.MAX_REQUEST_BODY_BYTES:
            return JsonResponse(
                {
                    "error": {
                        "code": "payload_too_large",
                        "message": f"Request bodies are limited to {settings.MAX_REQUEST_BODY_BYTES} bytes.",
                        "field": None,
                    }
                },
                status=413,
            )
        return self.get_response(request)
