"""Celery tasks for partner accounts: account emails (partners/mail.py), emails about an
application, and the partners' chosen notifications. Each is safe to run twice: the worst a
retry does is send one more copy of the same message."""

from __future__ import annotations

from smtplib import SMTPException

from celery import shared_task
from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string

from partners import mail
from partners.models import Partner

_RETRY = {"autoretry_for": (OSError, SMTPException), "retry_backoff": 30, "max_retries": 5}


@shared_task(name="partners.tasks.password_reset_email_task", **_RETRY)
def password_reset_email_task(email: str) -> int:
    return mail.send_password_reset(email=email)


@shared_task(name="partners.tasks.email_confirmation_task", **_RETRY)
def email_confirmation_task(user_id: int) -> int:
    return mail.send_email_confirmation(user_id=user_id)


@shared_task(name="partners.tasks.signup_attempt_notice_task", **_RETRY)
def signup_attempt_notice_task(user_id: int) -> int:
    return mail.send_signup_attempt_notice(user_id=user_id)


_EMAILS = {
    "application_received": ("partners/email/application_received.txt", "We received your partner application"),
    "approved": ("partners/email/approved.txt", "Your {merchant} partner application was approved"),
    "declined": ("partners/email/declined.txt", "Your {merchant} partner application"),
}


@shared_task(name="partners.tasks.notify_partner_task", autoretry_for=(OSError,), retry_backoff=60, max_retries=5)
def notify_partner_task(partner_id: int, kind: str) -> int:
    """Email a partner about their application. The email says what the partner's status is
    now, so a task run late (or twice) never tells an approved partner they were declined."""
    partner = Partner.objects.select_related("user").filter(pk=partner_id).first()
    if partner is None or kind not in _EMAILS:
        return 0
    if kind in (Partner.Status.APPROVED, Partner.Status.DECLINED) and partner.status != kind:
        return 0
    template, subject = _EMAILS[kind]
    body = render_to_string(
        template,
        {
            "partner": partner,
            "site_url": settings.SITE_URL,
            "merchant_name": settings.MERCHANT_NAME,
            "review_days": settings.PARTNER_REVIEW_DAYS,
        },
    )
    return send_mail(
        subject.format(merchant=settings.MERCHANT_NAME), body, settings.DEFAULT_FROM_EMAIL, [partner.user.email]
    )


@shared_task(name="partners.tasks.notify_new_activity_task", acks_late=True)
def notify_new_activity_task() -> dict[str, int]:
    """Periodic: new referrals and new commissions, to the partners who asked for them."""
    from partners import notifications

    return {
        "new_referral": notifications.notify_new_referrals(),
        "new_commission": notifications.notify_new_commissions(),
    }


@shared_task(name="partners.tasks.monthly_statement_task", acks_late=True)
def monthly_statement_task(month: str | None = None) -> int:
    """Beat, on the 1st: last month's statement (``month`` as YYYY-MM to send another)."""
    from datetime import date, timedelta

    from django.utils import timezone

    from partners import notifications

    if month:
        year, number = (int(part) for part in month.split("-"))
        first = date(year, number, 1)
    else:
        first = (timezone.localdate().replace(day=1) - timedelta(days=1)).replace(day=1)
    return notifications.send_monthly_statements(month=first)
