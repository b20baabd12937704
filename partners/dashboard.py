"""The partner dashboard (KPIs, withdrawal button, default link, trend charts)."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from partners.decorators import partner_required
from payouts.rules import withdrawal_status
from tracking.models import Link


@partner_required
def dashboard_view(request: HttpRequest) -> HttpResponse:
    partner = request.partner
    default_link = Link.objects.filter(partner=partner, is_default=True).first()
    link_url = f"{settings.SITE_URL}/r/{default_link.code}" if default_link else ""
    return render(
        request,
        "partners/dashboard.html",
        {"withdrawal": withdrawal_status(partner=partner), "default_link_url": link_url},
    )
