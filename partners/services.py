"""Everything that writes partner accounts."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from django.contrib.auth.hashers import make_password
from django.db import IntegrityError, transaction
from django.utils import timezone

from partners import dispatch
from partners.emails import normalize_email
from partners.models import ApiToken, Partner, User, new_referral_code
from tracking.models import Link

API_TOKEN_PREFIX = "pp_"


@transaction.atomic
def partner_signup(
    *, email: str, password: str, name: str, website: str = "", email_confirmed: bool = False
) -> Partner:
    """Create the user, the partner profile with a fresh referral code, and its default link
    (code = referral code, default landing page, 14-day trial). ``email_confirmed`` is for
    accounts made by the operator (the demo); sign-up confirms through the emailed link."""
    user = User.objects.create_user(
        email=email,
        password=password,
        first_name=name[:150],
        email_verified_at=timezone.now() if email_confirmed else None,
    )
    for _ in range(5):
        code = new_referral_code()
        try:
            with transaction.atomic():
                partner = Partner.objects.create(
                    user=user, name=name, website=website, referral_code=code, accepted_terms_at=timezone.now()
                )
                Link.objects.create(partner=partner, code=code, trial_days=14, is_default=True, destination="")
            return partner
        except IntegrityError:
            # A code collision (50 bits: astronomically rare) or a link code already taken.
            continue
    raise RuntimeError("Could not allocate a unique referral code.")


def partner_signup_submit(*, email: str, password: str, name: str, website: str = "") -> Partner | None:
    """The sign-up form's work, which answers the same whether or not the email has an account:
    a new partner gets the confirmation link, the owner of a taken address a notice that someone
    tried. Returns the new partner, or None when the email already had an account."""
    email = normalize_email(email)
    existing = User.objects.filter(email=email).first()
    if existing is None:
        try:
            partner = partner_signup(email=email, password=password, name=name, website=website)
        except IntegrityError:
            # A concurrent sign-up with the same email won the unique index: the same as taken.
            existing = User.objects.filter(email=email).first()
        else:
            dispatch.email_confirmation(user_id=partner.user_id)
            return partner
    # The password hash a new account costs (PBKDF2, ~0.25 s), so that the answer's timing does
    # not tell a taken address from a free one.
    make_password(password)
    if existing is not None:
        dispatch.signup_attempt_notice(user_id=existing.pk)
    return None


def partner_confirm_email(*, user: User) -> bool:
    """Mark the user's email confirmed; False when it already was (a link used twice)."""
    now = timezone.now()
    updated = User.objects.filter(pk=user.pk, email_verified_at__isnull=True).update(email_verified_at=now)
    if updated:
        user.email_verified_at = now
    return updated == 1


def hash_api_token(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class NewApiToken:
    token: ApiToken
    secret: str  # shown once; never stored


def api_token_create(*, partner: Partner, name: str) -> NewApiToken:
    secret = API_TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        partner=partner, name=name, token_hash=hash_api_token(secret), prefix=secret[: len(API_TOKEN_PREFIX) + 6]
    )
    return NewApiToken(token=token, secret=secret)


def api_token_revoke(*, partner: Partner, token_id: int) -> bool:
    """Revoke one of the partner's own tokens; False when there is no such active token."""
    updated = ApiToken.objects.filter(partner=partner, pk=token_id, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    return updated == 1


def api_token_authenticate(secret: str) -> Partner | None:
    """The partner owning an active token with this secret, or None."""
    if not secret or not secret.startswith(API_TOKEN_PREFIX) or len(secret) > 200:
        return None
    token = (
        ApiToken.objects.select_related("partner__user")
        .filter(token_hash=hash_api_token(secret), revoked_at__isnull=True)
        .first()
    )
    if token is None or not token.partner.user.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.partner


def partner_update_profile(*, partner: Partner, **fields: str) -> Partner:
    allowed = {"website", "billing_name", "billing_address", "billing_country", "tax_id", "name"}
    for key, value in fields.items():
        if key not in allowed:
            raise ValueError(f"Unknown partner field {key}")
        setattr(partner, key, value)
    partner.save(update_fields=[*fields.keys()])
    return partner


def partner_set_paypal_email(*, partner: Partner, paypal_email: str) -> Partner:
    partner.paypal_email = paypal_email.strip().lower()
    partner.save(update_fields=["paypal_email"])
    return partner
