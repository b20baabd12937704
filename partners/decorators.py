"""Access to the partner panel."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse


def partner_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Logged in (else to the login page) and a partner (staff without a partner profile get
    403). The view finds the partner on ``request.partner``."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        partner = getattr(request.user, "partner", None)
        if partner is None:
            raise PermissionDenied("This page is for partners.")
        request.partner = partner
        return view(request, *args, **kwargs)

    return wrapper
