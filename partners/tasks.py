"""Account emails, sent by the worker (partners/mail.py). Each is safe to run twice: the worst
a retry does is send one more copy of the same message."""

from __future__ import annotations

from smtplib import SMTPException

from celery import shared_task

from partners import mail

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
