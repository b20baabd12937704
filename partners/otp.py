"""Two-factor (TOTP) enrolment and verification pages for staff, with django-otp.

The payout admin sends staff here before any approve or reject (payouts/approval.py); after a
successful code the session is marked verified (``django_otp.login``) and they go back."""

from __future__ import annotations

from base64 import b32encode

import segno
from django import forms
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_http_methods
from django_otp import devices_for_user
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice


class TokenForm(forms.Form):
    token = forms.CharField(
        label="6-digit code from your authenticator app",
        max_length=8,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}),
    )

    def clean_token(self) -> str:
        token = self.cleaned_data["token"].replace(" ", "")
        if not token.isdigit():
            raise forms.ValidationError("The code is the 6 digits your authenticator app shows.")
        return token


def _next(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target.startswith("/") and url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return reverse("admin:payouts_payout_changelist")


def _page(request: HttpRequest, template: str, **context) -> TemplateResponse:
    from django.contrib import admin

    return TemplateResponse(request, template, {**admin.site.each_context(request), "next": _next(request), **context})


@staff_member_required
@require_http_methods(["GET", "POST"])
def otp_setup_view(request: HttpRequest) -> HttpResponse:
    """Enrol a TOTP device: scan the QR code (or type the key), then confirm with a code."""
    if any(True for _ in devices_for_user(request.user, confirmed=True)):
        return redirect(f"{reverse('otp_verify')}?next={_next(request)}")
    # One unconfirmed device per staff member, reused until confirmed (a reload keeps the key).
    device = TOTPDevice.objects.filter(user=request.user, confirmed=False).order_by("pk").first()
    if device is None:
        device = TOTPDevice.objects.create(user=request.user, name="Authenticator app", confirmed=False)
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if device.verify_token(form.cleaned_data["token"]):
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            otp_login(request, device)
            return redirect(_next(request))
        form.add_error("token", "That code is not right (or has expired). Try the current one.")
    qr = segno.make(device.config_url, error="m").svg_inline(scale=4, dark="#111", light="#fff")
    # The key typed by hand when the QR code cannot be scanned: base32, as in config_url.
    manual_key = b32encode(device.bin_key).decode().rstrip("=")
    response = _page(
        request,
        "admin/otp_setup.html",
        title="Set up two-factor authentication",
        form=form,
        qr=mark_safe(qr),
        manual_key=manual_key,
    )
    if request.method == "POST":
        response.status_code = 400
    return response


@staff_member_required
@require_http_methods(["GET", "POST"])
def otp_verify_view(request: HttpRequest) -> HttpResponse:
    """Verify this session with a code from an enrolled device."""
    devices = list(devices_for_user(request.user, confirmed=True))
    if not devices:
        return redirect(f"{reverse('otp_setup')}?next={_next(request)}")
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        for device in devices:
            if device.verify_token(form.cleaned_data["token"]):
                otp_login(request, device)
                return redirect(_next(request))
        form.add_error("token", "That code is not right (or has expired). Try the current one.")
    response = _page(request, "admin/otp_verify.html", title="Two-factor verification", form=form)
    if request.method == "POST":
        response.status_code = 400
    return response
