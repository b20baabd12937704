"""Email address confirmation: the link sent at sign-up, required before the first withdrawal.

The token is Django's password-reset token machinery with its own salt; its hash covers the
email and the confirmation time, so a link stops working once used or once the email changes,
and it expires after PASSWORD_RESET_TIMEOUT (3 days) like a reset link.
"""

from __future__ import annotations

from django.contrib.auth.tokens import PasswordResetTokenGenerator

from partners.models import User

UNCONFIRMED_REASON = "Confirm your email address before your first withdrawal: follow the link we sent to {email}."


class EmailConfirmationTokenGenerator(PasswordResetTokenGenerator):
    key_salt = "partners.verification.EmailConfirmationTokenGenerator"

    def _make_hash_value(self, user: User, timestamp: int) -> str:
        confirmed = "" if user.email_verified_at is None else user.email_verified_at.replace(microsecond=0, tzinfo=None)
        return f"{user.pk}{user.email}{confirmed}{timestamp}"


email_confirmation_token = EmailConfirmationTokenGenerator()


def email_confirmed(user: User) -> bool:
    return user.email_verified_at is not None
