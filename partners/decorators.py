"""Access to the partner panel."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode

from partners.terms import terms_outdated


def partner_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Logged in (else to the login page) and a partner (staff without a partner profile get
    403). The view finds the partner on ``request.partner``.

    A partner whose application is pending or declined sees only the application page; one
    who has not accepted the current program terms is asked to first (their withdrawal is
    refused by the payout service as well)."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        partner = getattr(request.user, "partner", None)
        if partner is None:
            raise PermissionDenied("This page is for partners.")
        if not partner.is_approved:
            return redirect("partners:application")
        if terms_outdated(partner) is not None:
            return redirect(f"{reverse('terms')}?{urlencode({'next': request.get_full_path()})}")
        request.partner = partner
        return view(request, *args, **kwargs)

    return wrapper
