"""The account emails: password reset, the email confirmation link, and the notice to an
account's owner that someone tried to sign up with their address. Sent by Celery tasks
(partners/tasks.py), so no request waits on SMTP and the answer's timing does not tell whether
an email went out. Links are built on SITE_URL, never on the request's Host or scheme."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from partners.forms import AccountPasswordResetForm
from partners.models import User
from partners.throttle import ThrottleUnavailable, throttle_hit
from partners.verification import email_confirmation_token

# The owner of an address is told of sign-up attempts at most this often per hour.
SIGNUP_NOTICES_PER_HOUR = 3


def send_password_reset(*, email: str) -> int:
    """Django's reset email to the active account with this email (none when there is none)."""
    site = urlsplit(settings.SITE_URL)
    form = AccountPasswordResetForm({"email": email})
    if not form.is_valid():
        return 0
    form.save(
        domain_override=site.netloc,
        use_https=site.scheme == "https",
        email_template_name="registration/password_reset_email.txt",
        subject_template_name="registration/password_reset_subject.txt",
    )
    return 1


def send_email_confirmation(*, user_id: int) -> int:
    user = User.objects.filter(pk=user_id, is_active=True, email_verified_at__isnull=True).first()
    if user is None:
        return 0
    path = reverse(
        "partners:email_confirm",
        kwargs={
            "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
            "token": email_confirmation_token.make_token(user),
        },
    )
    body = render_to_string(
        "partners/email/confirm_email.txt",
        {"link": settings.SITE_URL + path, "merchant_name": settings.MERCHANT_NAME, "email": user.email},
    )
    subject = f"Confirm your email for the {settings.MERCHANT_NAME} partner program"
    return send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [user.email])


def send_signup_attempt_notice(*, user_id: int) -> int:
    """Tell an account's owner that someone tried to sign up with their email (what the sign-up
    form said instead of "this email has an account")."""
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        return 0
    try:
        if throttle_hit(scope="signup-notice", key=str(user.pk), limit=SIGNUP_NOTICES_PER_HOUR):
            return 0
    except ThrottleUnavailable:
        return 0  # no counter, no mail: the notice must not become a way to flood a mailbox
    body = render_to_string(
        "partners/email/signup_attempt.txt",
        {
            "login_url": settings.SITE_URL + reverse("partners:login"),
            "reset_url": settings.SITE_URL + reverse("partners:password_reset"),
            "merchant_name": settings.MERCHANT_NAME,
            "email": user.email,
        },
    )
    subject = f"Someone tried to sign up with your email at the {settings.MERCHANT_NAME} partner program"
    return send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [user.email])
