"""Enqueue the account emails (partners/tasks.py), so services and views do not import the
tasks module. After a commit for the ones that follow a write; at once for password reset,
whose view answers 503 when the broker cannot take the task."""

from __future__ import annotations

from django.db import transaction


def password_reset_email(*, email: str) -> None:
    """Raises the broker's error when the task cannot be queued."""
    from partners.tasks import password_reset_email_task

    password_reset_email_task.delay(email)


def email_confirmation(*, user_id: int) -> None:
    from partners.tasks import email_confirmation_task

    # robust: the account exists either way; a lost email is sent again from the Payouts page.
    transaction.on_commit(lambda: email_confirmation_task.delay(user_id), robust=True)


def signup_attempt_notice(*, user_id: int) -> None:
    from partners.tasks import signup_attempt_notice_task

    transaction.on_commit(lambda: signup_attempt_notice_task.delay(user_id), robust=True)
