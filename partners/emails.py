"""One spelling of an email address for everything that identifies an account.

The login lookup (partner and admin login), django-axes's lockout key, sign-up uniqueness, the
settings page's password check and password reset all go through ``normalize_email``: NFKC
then ``casefold()``, the comparison Django's own password reset uses (``_unicode_ci_compare``).
Stored emails are kept in this form (``User.save``), so a lookup is an exact match on the
unique column. Before, the lookup was the database's case-insensitive match while the lockout
keyed on the email as typed: each case variant (and, on PostgreSQL, spellings such as ``ı``
that its UPPER() folds and Python's ``lower()`` does not) had its own five attempts.
"""

from __future__ import annotations

import unicodedata

from django.http import HttpRequest


def normalize_email(value: str) -> str:
    """``value`` stripped, NFKC-normalised and case-folded (``Straße`` → ``strasse``)."""
    return unicodedata.normalize("NFKC", value or "").strip().casefold()


def axes_username(request: HttpRequest, credentials: dict | None) -> str:
    """AXES_USERNAME_CALLABLE: the lockout key is the normalised email, whatever the login form
    (the partner form, the admin's, the settings page's password check) it came from."""
    if credentials and credentials.get("username") is not None:
        return normalize_email(str(credentials["username"]))
    return normalize_email(str(request.POST.get("username", "")))
