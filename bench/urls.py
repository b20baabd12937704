"""Bench-only URLconf: the app's URLs plus ``/bench/bare``, the reference view.

The bare view answers what the click redirect answers (a 302 to the default landing page with
an ``aff_click`` cookie and ``Cache-Control: no-store``) and touches no database, cache or Redis:
whatever the click path costs beyond it is the cost of tracking."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from config.urls import urlpatterns as app_urlpatterns


@csrf_exempt  # as the click redirect
def bare_view(request: HttpRequest) -> HttpResponse:
    response = HttpResponseRedirect(settings.DEFAULT_LANDING_URL)
    response["Cache-Control"] = "no-store"
    response.set_cookie(
        "aff_click",
        str(uuid.uuid4()),
        max_age=settings.ATTRIBUTION_WINDOW_DAYS * 86400,
        path="/",
        secure=not settings.DEBUG,
        httponly=True,
        samesite="Lax",
    )
    return response


# The app's own list, not an include(): /r/<code> is resolved exactly as in production (one
# failed check of "bench/bare" more).
urlpatterns = [path("bench/bare", bare_view, name="bench_bare"), *app_urlpatterns]
