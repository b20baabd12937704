"""Everything that writes partner accounts."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from partners.models import ApiToken, Partner, User, new_referral_code
from tracking.models import Link

API_TOKEN_PREFIX = "pp_"


@transaction.atomic
def partner_signup(*, email: str, password: str, name: str, website: str = "") -> Partner:
    """Create the user, the partner profile with a fresh referral code, and its default link
    (code = referral code, default landing page, 14-day trial)."""
    user = User.objects.create_user(email=email, password=password, first_name=name[:150])
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
