from __future__ import annotations

import hashlib
import logging

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import PasswordChangeForm
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from config.clientip import client_ip
from partners import notifications
from partners.decorators import partner_required
from partners.forms import ApiTokenForm, EmailLoginForm, NotificationsForm, PaypalEmailForm, ProfileForm, SignupForm
from partners.models import Partner
from partners.services import (
    api_token_create,
    api_token_revoke,
    partner_set_paypal_email,
    partner_signup,
    terms_accept,
)
from partners.terms import current_terms, render_terms, terms_outdated

logger = logging.getLogger(__name__)


@require_http_methods(["GET", "POST"])
def signup_view(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("partners:dashboard")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        partner = partner_signup(
            email=data["email"], password=data["password"], name=data["name"], website=data["website"]
        )
        login(request, partner.user, backend="django.contrib.auth.backends.ModelBackend")
        if not partner.is_approved:
            return redirect("partners:application")
        messages.success(request, "Welcome aboard! Your affiliate link is ready below.")
        return redirect("partners:dashboard")
    return render(request, "partners/signup.html", {"form": form})


class LoginView(auth_views.LoginView):
    form_class = EmailLoginForm
    template_name = "partners/login.html"
    redirect_authenticated_user = True


class ThrottledPasswordResetView(auth_views.PasswordResetView):
    """Password reset, limited per client address and per email so it cannot be used to flood
    a mailbox or probe for accounts. Always answers the same way, whether the email exists."""

    template_name = "registration/password_reset_form.html"
    success_url = reverse_lazy("partners:password_reset_done")
    email_template_name = "registration/password_reset_email.txt"
    subject_template_name = "registration/password_reset_subject.txt"

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        email = (request.POST.get("email") or "").strip().lower()[:254]
        client = client_ip(request)
        limit = settings.PASSWORD_RESET_LIMIT_PER_HOUR
        # Keys hold digests: safe characters for any cache backend, no raw emails in the cache.
        email_key = hashlib.sha256(email.encode()).hexdigest()
        for key in (f"pwreset:ip:{client}", f"pwreset:email:{email_key}"):
            try:
                cache.add(key, 0, timeout=3600)
                try:
                    count = cache.incr(key)
                except ValueError:
                    count = 1
            except Exception:  # noqa: BLE001 - the cache (Redis) is unreachable
                # Without the counters the limit cannot hold: refuse (a clear 503, not a 500)
                # rather than let the form be used to flood mailboxes during the outage.
                logger.warning("Password reset refused: the rate-limit cache is unreachable.")
                return self._refuse("Password reset is unavailable right now. Please try again in a few minutes.", 503)
            if count > limit:
                return self._refuse("Too many password reset requests. Please try again in an hour.", 429)
        return super().post(request, *args, **kwargs)

    def _refuse(self, message: str, status: int) -> HttpResponse:
        form = self.get_form()
        form.is_valid()
        form.add_error(None, message)
        return self.render_to_response(self.get_context_data(form=form), status=status)


@partner_required
@require_http_methods(["GET", "POST"])
def settings_view(request: HttpRequest) -> HttpResponse:
    partner = request.partner
    action = request.POST.get("action") if request.method == "POST" else None
    profile_form = ProfileForm(request.POST if action == "profile" else None, instance=partner, prefix="profile")
    password_form = PasswordChangeForm(request.user, request.POST if action == "password" else None, prefix="password")
    paypal_form = PaypalEmailForm(
        request.POST if action == "paypal" else None,
        user=request.user,
        initial={"paypal_email": partner.paypal_email},
        prefix="paypal",
    )
    token_form = ApiTokenForm(request.POST if action == "token_create" else None, prefix="token")
    notifications_form = NotificationsForm(
        request.POST if action == "notifications" else None, instance=partner, prefix="notify"
    )
    new_token_secret = None

    if action == "notifications" and notifications_form.is_valid():
        notifications_form.save()
        messages.success(request, "Your email choices were saved.")
        return redirect("partners:settings")
    if action == "profile" and profile_form.is_valid():
        profile_form.save()
        messages.success(request, "Your profile and billing information were saved.")
        return redirect("partners:settings")
    if action == "password" and password_form.is_valid():
        user = password_form.save()
        update_session_auth_hash(request, user)
        messages.success(request, "Your password was changed.")
        return redirect("partners:settings")
    if action == "paypal" and paypal_form.is_valid():
        partner_set_paypal_email(partner=partner, paypal_email=paypal_form.cleaned_data["paypal_email"])
        messages.success(request, "Your PayPal email was saved.")
        return redirect("partners:settings")
    if action == "token_create" and token_form.is_valid():
        created = api_token_create(partner=partner, name=token_form.cleaned_data["name"])
        new_token_secret = created.secret
        token_form = ApiTokenForm(prefix="token")
        messages.success(request, "Token created. Copy it now: it will not be shown again.")
    if action == "token_revoke":
        try:
            token_id = int(request.POST.get("token_id", ""))
        except ValueError:
            token_id = 0
        if api_token_revoke(partner=partner, token_id=token_id):
            messages.success(request, "The token was revoked.")
        else:
            messages.error(request, "No such active token.")
        return redirect("partners:settings")

    status = 400 if action and not new_token_secret else 200
    return render(
        request,
        "partners/settings.html",
        {
            "profile_form": profile_form,
            "password_form": password_form,
            "paypal_form": paypal_form,
            "token_form": token_form,
            "tokens": partner.api_tokens.all(),
            "new_token_secret": new_token_secret,
            "notifications_form": notifications_form,
        },
        status=status,
    )


@login_required
@require_http_methods(["GET"])
def application_view(request: HttpRequest) -> HttpResponse:
    """What a partner whose application is pending or declined sees instead of the panel."""
    partner = getattr(request.user, "partner", None)
    if partner is None:
        raise PermissionDenied("This page is for partners.")
    if partner.is_approved:
        return redirect("partners:dashboard")
    declined = partner.status == Partner.Status.DECLINED
    return render(
        request,
        "partners/application.html",
        {"partner": partner, "declined": declined, "review_days": settings.PARTNER_REVIEW_DAYS},
        status=403 if declined else 200,
    )


def _safe_next(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target.startswith("/") and url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return reverse_lazy("partners:dashboard")


@require_http_methods(["GET", "POST"])
def terms_view(request: HttpRequest) -> HttpResponse:
    """The program terms (public). A logged-in partner who has not accepted the current version
    accepts it here; the panel sends them here until they have."""
    terms = current_terms()
    partner = getattr(request.user, "partner", None) if request.user.is_authenticated else None
    must_accept = partner is not None and terms_outdated(partner) is not None
    if request.method == "POST":
        if partner is None or terms is None:
            return redirect("terms")
        try:
            version = int(request.POST.get("version", ""))
        except ValueError:
            version = 0
        if version != terms.version:
            # The terms changed while the page was open: show the newer text to accept.
            messages.error(request, "The terms were updated while you were reading. Please read the new version.")
            return redirect("terms")
        terms_accept(partner=partner, terms=terms)
        messages.success(request, f"Thank you: you accepted version {terms.version} of the program terms.")
        return redirect(_safe_next(request))
    previous = None
    if must_accept and partner.accepted_terms_version:
        previous = partner.accepted_terms_version
    return render(
        request,
        "partners/terms.html",
        {
            "terms": terms,
            "terms_html": render_terms(terms.text) if terms else "",
            "must_accept": must_accept,
            "previous_version": previous,
            "next": _safe_next(request),
        },
    )


@csrf_exempt  # the signed token is the credential; mail clients' one-click POST carries no CSRF token
@require_http_methods(["GET", "POST"])
def unsubscribe_view(request: HttpRequest, token: str) -> HttpResponse:
    """One-click unsubscribe from one kind of email (no login: the link is signed). GET shows a
    button (mail scanners follow links; they must not unsubscribe anyone); POST, also the
    ``List-Unsubscribe-Post`` one-click, turns it off."""
    kind = notifications.token_kind(token)
    if kind is None:
        return render(request, "partners/unsubscribe.html", {"invalid": True}, status=400)
    done = request.method == "POST" and notifications.unsubscribe(token=token) is not None
    return render(
        request,
        "partners/unsubscribe.html",
        {"kind_label": NotificationsForm.Meta.labels[f"notify_{kind}"], "done": done},
    )
