from __future__ import annotations

import hashlib
import logging

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import PasswordChangeForm
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.views.decorators.http import require_http_methods

from config.clientip import client_ip
from partners.decorators import partner_required
from partners.forms import ApiTokenForm, EmailLoginForm, PaypalEmailForm, ProfileForm, SignupForm
from partners.services import api_token_create, api_token_revoke, partner_set_paypal_email, partner_signup

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


_SHOW_ONCE_SESSION_KEY = "partners:show_once"


@partner_required
@require_http_methods(["GET", "POST"])
def settings_view(request: HttpRequest) -> HttpResponse:
    partner = request.partner
    action = request.POST.get("action") if request.method == "POST" else None
    profile_form = ProfileForm(request.POST if action == "profile" else None, instance=partner, prefix="profile")
    password_form = PasswordChangeForm(request.user, request.POST if action == "password" else None, prefix="password")
    # Django's form puts autofocus on "Old password": every visit of Settings would jump there
    # (and pull a phone's keyboard up) although most visits are about something else.
    password_form.fields["old_password"].widget.attrs.pop("autofocus", None)
    paypal_form = PaypalEmailForm(
        request.POST if action == "paypal" else None,
        user=request.user,
        initial={"paypal_email": partner.paypal_email},
        prefix="paypal",
    )
    token_form = ApiTokenForm(request.POST if action == "token_create" else None, prefix="token")

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
        # Post/redirect/get: a reload of the page that shows the token must not create another.
        # The secret waits in the session for exactly one page view, then only its hash remains.
        request.session[_SHOW_ONCE_SESSION_KEY] = created.secret
        messages.success(request, "Token created. Copy it now: it will not be shown again.")
        return redirect(reverse("partners:settings") + "#tokens")
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

    new_token_secret = request.session.pop(_SHOW_ONCE_SESSION_KEY, None) if request.method == "GET" else None
    status = 400 if action else 200
    response = render(
        request,
        "partners/settings.html",
        {
            "profile_form": profile_form,
            "password_form": password_form,
            "paypal_form": paypal_form,
            "token_form": token_form,
            "tokens": partner.api_tokens.all(),
            "new_token_secret": new_token_secret,
        },
        status=status,
    )
    if new_token_secret:
        response["Cache-Control"] = "no-store"  # the one page that shows the secret stays out of caches
    return response


@require_http_methods(["GET", "HEAD"])
def terms_view(request: HttpRequest) -> HttpResponse:
    """The partner program terms, public (the sign-up form links here), with the program rules
    as configured: the rate, the minimum, the cookie's life and the hold."""
    rate = f"{(settings.COMMISSION_RATE * 100).normalize():f}"
    return render(
        request,
        "partners/terms.html",
        {
            "commission_rate_percent": rate,
            "payout_minimum": settings.PAYOUT_MINIMUM,
            "attribution_days": settings.ATTRIBUTION_WINDOW_DAYS,
            "hold_days": settings.COMMISSION_HOLD_DAYS,
        },
    )
