"""Project-wide middleware."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import csp.middleware
from csp.constants import HEADER, HEADER_REPORT_ONLY
from csp.utils import build_policy
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.utils import timezone
from django.utils.cache import patch_cache_control


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


class AdminNulMiddleware:
    """Refuse admin requests whose query string holds a NUL character, with 400.

    Django's admin changelist hands list-filter and search values to the database as they come,
    and PostgreSQL text cannot hold NUL: ``/admin/payouts/payout/?status=%00`` was a DataError,
    a 500. No admin URL has a use for NUL; the partner pages validate their parameters in
    forms and answer such values with their own errors."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info.startswith("/admin/") and any(
            "\x00" in key or any("\x00" in value for value in values) for key, values in request.GET.lists()
        ):
            return HttpResponseBadRequest("Query parameters cannot contain NUL characters.", content_type="text/plain")
        return self.get_response(request)


class PrivateCacheMiddleware:
    """``Cache-Control: private, no-store`` on every answer to a logged-in session or to a
    request carrying credentials (the partner JSON API's bearer token): the panel's pages, CSVs
    and API answers hold a partner's data and must stay out of shared caches and the browser's
    disk cache. Staff sessions also get a shorter lifetime here (STAFF_SESSION_SECONDS), whatever
    logged them in."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        # Only when the view read the session (every page behind a login does): reading it here
        # for the others would add "Vary: Cookie" to answers that depend on no one (the click).
        session = getattr(request, "session", None)
        user = getattr(request, "user", None) if session is not None and session.accessed else None
        authenticated = user is not None and user.is_authenticated
        if authenticated or "HTTP_AUTHORIZATION" in request.META or request.path_info.startswith("/api/v1/partner/"):
            patch_cache_control(response, private=True, no_store=True)
        if authenticated and user.is_staff:
            # Absolute: a staff session ends STAFF_SESSION_SECONDS after its first request, active
            # or not (an expiry in seconds would be renewed by every change to the session).
            limit = settings.STAFF_SESSION_SECONDS
            if request.session.get_expiry_age() > limit:
                request.session.set_expiry(timezone.now() + timedelta(seconds=limit))
        return response


# --- Content-Security-Policy ---------------------------------------------------------------

# Per-view parts django-csp reads from a response (its decorators set them).
_CSP_RESPONSE_PARTS = (
    "_csp_config",
    "_csp_update",
    "_csp_replace",
    "_csp_config_ro",
    "_csp_update_ro",
    "_csp_replace_ro",
)
_CSP_SETTINGS = {False: "CONTENT_SECURITY_POLICY", True: "CONTENT_SECURITY_POLICY_REPORT_ONLY"}
_csp_policies: dict[bool, str] = {}


@receiver(setting_changed)
def _forget_csp_policies(*, setting: str, **kwargs) -> None:
    if setting.startswith("CONTENT_SECURITY_POLICY"):
        _csp_policies.clear()


def _csp_policy(*, report_only: bool) -> str:
    policy = _csp_policies.get(report_only)
    if policy is None:
        policy = _csp_policies[report_only] = build_policy(report_only=report_only)
    return policy


class CSPMiddleware(csp.middleware.CSPMiddleware):
    """django-csp's middleware with the policy strings built once instead of on every response.

    django-csp 4 rebuilds both headers from the settings for every response (a deep copy, a
    dataclass ``asdict`` and the string assembly, each time). Without a nonce or a per-view decorator the policy depends on the settings
    alone, so it is built once (again after ``override_settings``) and reused; a response that
    carries per-view parts, or a request that used its nonce, goes through django-csp's own code.
    The headers written are the same either way (tests/partners/test_security_headers.py)."""

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if isinstance(getattr(request, "_csp_nonce", None), str) or any(
            getattr(response, part, None) is not None for part in _CSP_RESPONSE_PARTS
        ):
            return super().process_response(request, response)
        if response.status_code in (500, 404) and settings.DEBUG:
            return response
        for header, report_only, exempt in (
            (HEADER, False, "_csp_exempt"),
            (HEADER_REPORT_ONLY, True, "_csp_exempt_ro"),
        ):
            policy = _csp_policy(report_only=report_only)
            if not policy or header in response or getattr(response, exempt, False):
                continue
            config = getattr(settings, _CSP_SETTINGS[report_only], None) or {}
            prefixes = config.get("EXCLUDE_URL_PREFIXES", None) or ()
            if not request.path_info.startswith(tuple(prefixes)):
                response[header] = policy
        # As django-csp does: a nonce asked for after the header was written is an error.
        request.csp_nonce = csp.middleware.CheckableLazyObject(self._csp_nonce_post_response)
        return response
