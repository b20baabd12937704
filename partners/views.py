from __future__ import annotations

import logging

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils.encoding import force_str
from django.utils.http import url_has_allowed_host_and_scheme, urlsafe_base64_decode
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from config.clientip import client_ip
from partners import dispatch, notifications
from partners.decorators import partner_required
from partners.emails import normalize_email
from partners.forms import (
    AccountPasswordResetForm,
    ApiTokenForm,
    EmailLoginForm,
    LockoutPasswordChangeForm,
    NotificationsForm,
    PaypalEmailForm,
    ProfileForm,
    SignupForm,
)
from partners.models import Partner, User
from partners.services import (
    api_token_create,
    api_token_revoke,
    partner_confirm_email,
    partner_set_paypal_email,
    partner_signup_submit,
    terms_accept,
)
from partners.terms import current_terms, render_terms, terms_outdated
from partners.throttle import ThrottleUnavailable, throttle_hit
from partners.verification import email_confirmation_token

logger = logging.getLogger(__name__)

# Confirmation links a partner may ask for again per hour.
CONFIRMATION_RESENDS_PER_HOUR = 3
UNAVAILABLE = "This form is unavailable right now. Please try again in a few minutes."


def _refuse_form(request: HttpRequest, template: str, form, message: str, status: int) -> HttpResponse:
    form.is_valid()
    form.add_error(None, message)
    return render(request, template, {"form": form}, status=status)


@require_http_methods(["GET", "POST"])
def signup_view(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("partners:dashboard")
    form = SignupForm(request.POST or None)
    if request.method == "POST":
        # Per client address, before anything else: each answer costs a password hash and may
        # send an email.
        try:
            over = throttle_hit(scope="signup-ip", key=client_ip(request), limit=settings.SIGNUP_LIMIT_PER_HOUR)
        except ThrottleUnavailable:
            return _refuse_form(request, "partners/signup.html", form, UNAVAILABLE, 503)
        if over:
            message = "Too many sign-ups from your network. Please try again in an hour."
            return _refuse_form(request, "partners/signup.html", form, message, 429)
        if form.is_valid():
            data = form.cleaned_data
            partner_signup_submit(
                email=data["email"], password=data["password"], name=data["name"], website=data["website"]
            )
            # The same answer whether the email was free or taken: no session, the same page.
            return redirect("partners:signup_done")
    return render(request, "partners/signup.html", {"form": form})


@require_GET
def signup_done_view(request: HttpRequest) -> HttpResponse:
    return render(request, "partners/signup_done.html")


@require_GET
def email_confirm_view(request: HttpRequest, uidb64: str, token: str) -> HttpResponse:
    """The link from the sign-up email: confirms the address and opens the panel. Used once
    (the token covers the confirmation time); an old or used link says so."""
    try:
        user = User.objects.filter(pk=int(force_str(urlsafe_base64_decode(uidb64))), is_active=True).first()
    except (TypeError, ValueError, OverflowError, UnicodeDecodeError):
        user = None
    if user is None or not email_confirmation_token.check_token(user, token) or not partner_confirm_email(user=user):
        messages.error(
            request,
            "This confirmation link has expired or was already used. Log in: you can ask for a new one on the "
            "Payouts page.",
        )
        return redirect("partners:dashboard" if request.user.is_authenticated else "partners:login")
    if request.user.pk != user.pk:
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    messages.success(request, "Your email address is confirmed. Welcome aboard! Your affiliate link is ready below.")
    return redirect("partners:dashboard")


@partner_required
@require_POST
def email_confirm_resend_view(request: HttpRequest) -> HttpResponse:
    user = request.user
    target = request.POST.get("next", "")
    if not (
        target.startswith("/") and url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure())
    ):
        target = "/payouts/"
    if user.email_verified_at is not None:
        messages.success(request, "Your email address is already confirmed.")
        return HttpResponseRedirect(target)
    try:
        over = throttle_hit(scope="confirm-resend", key=str(user.pk), limit=CONFIRMATION_RESENDS_PER_HOUR)
    except ThrottleUnavailable:
        over = True
    if over:
        messages.error(request, "We sent several links in the last hour. Please check your inbox and spam folder.")
    else:
        dispatch.email_confirmation(user_id=user.pk)
        messages.success(request, f"We sent a new confirmation link to {user.email}.")
    return HttpResponseRedirect(target)


class LoginView(auth_views.LoginView):
    form_class = EmailLoginForm
    template_name = "partners/login.html"
    redirect_authenticated_user = True


class ThrottledPasswordResetView(auth_views.PasswordResetView):
    """Password reset, limited per client address and per email so it cannot be used to flood
    a mailbox or probe for accounts. Always answers the same way, whether the email exists: the
    lookup and the email happen in a Celery task (partners/tasks.py), so the answer's timing
    does not depend on the account or on SMTP."""

    form_class = AccountPasswordResetForm
    template_name = "registration/password_reset_form.html"
    success_url = reverse_lazy("partners:password_reset_done")

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        email = normalize_email((request.POST.get("email") or "")[:254])
        limit = settings.PASSWORD_RESET_LIMIT_PER_HOUR
        for scope, key in (("pwreset-ip", client_ip(request)), ("pwreset-email", email)):
            try:
                over = throttle_hit(scope=scope, key=key, limit=limit)
            except ThrottleUnavailable:
                # Without the counters the limit cannot hold: refuse (a clear 503, not a 500)
                # rather than let the form be used to flood mailboxes during the outage.
                return self._refuse("Password reset is unavailable right now. Please try again in a few minutes.", 503)
            if over:
                return self._refuse("Too many password reset requests. Please try again in an hour.", 429)
        return super().post(request, *args, **kwargs)

    def form_valid(self, form) -> HttpResponse:
        try:
            dispatch.password_reset_email(email=normalize_email(form.cleaned_data["email"]))
        except Exception:  # noqa: BLE001 - the broker is unreachable
            logger.warning("Password reset refused: the task could not be queued.")
            return self._refuse("Password reset is unavailable right now. Please try again in a few minutes.", 503)
        return HttpResponseRedirect(self.get_success_url())

    def _refuse(self, message: str, status: int) -> HttpResponse:
        form = self.get_form()
        form.is_valid()
        form.add_error(None, message)
        return self.render_to_response(self.get_context_data(form=form), status=status)


def _open_payout(partner):
    """The partner's withdrawal still in progress (it keeps the PayPal email it was requested with)."""
    from payouts.models import Payout

    return Payout.objects.filter(partner=partner, status__in=Payout.OPEN_STATUSES).first()


_SHOW_ONCE_SESSION_KEY = "partners:show_once"


@partner_required
@require_http_methods(["GET", "POST"])
def settings_view(request: HttpRequest) -> HttpResponse:
    partner = request.partner
    action = request.POST.get("action") if request.method == "POST" else None
    profile_form = ProfileForm(request.POST if action == "profile" else None, instance=partner, prefix="profile")
    password_form = LockoutPasswordChangeForm(
        request.user, request.POST if action == "password" else None, request=request, prefix="password"
    )
    # Django's form puts autofocus on "Old password": every visit of Settings would jump there
    # (and pull a phone's keyboard up) although most visits are about something else.
    password_form.fields["old_password"].widget.attrs.pop("autofocus", None)
    paypal_form = PaypalEmailForm(
        request.POST if action == "paypal" else None,
        request=request,
        user=request.user,
        initial={"paypal_email": partner.paypal_email},
        prefix="paypal",
    )
    token_form = ApiTokenForm(request.POST if action == "token_create" else None, prefix="token")
    notifications_form = NotificationsForm(
        request.POST if action == "notifications" else None, instance=partner, prefix="notify"
    )

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
        open_payout = _open_payout(partner)
        if open_payout and open_payout.paypal_email.lower() != partner.paypal_email.lower():
            messages.warning(
                request,
                f"Your open withdrawal of {open_payout.amount} {open_payout.currency} still goes to "
                f"{open_payout.paypal_email}, the address it was requested with. The new address is used "
                "from your next withdrawal on.",
            )
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
            "open_payout": _open_payout(partner),
            "notifications_form": notifications_form,
        },
        status=status,
    )
    if new_token_secret:
        response["Cache-Control"] = "no-store"  # the one page that shows the secret stays out of caches
    return response


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
