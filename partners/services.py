"""Everything that writes partner accounts."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from config.errors import PortalError
from partners import dispatch
from partners.emails import normalize_email
from partners.models import ApiToken, Partner, ProgramTerms, TermsAcceptance, User, new_referral_code
from partners.terms import current_terms, forget_current_terms
from tracking import linkcache
from tracking.models import Link

API_TOKEN_PREFIX = "pp_"


@transaction.atomic
def partner_signup(
    *, email: str, password: str, name: str, website: str = "", email_confirmed: bool = False
) -> Partner:
    """Create the user, the partner profile with a fresh referral code, and its default link
    (code = referral code, default landing page, 14-day trial). ``email_confirmed`` is for
    accounts made by the operator (the demo); sign-up confirms through the emailed link. Under
    ``PARTNER_APPROVAL=manual`` the partner starts as an application under review."""
    user = User.objects.create_user(
        email=email,
        password=password,
        first_name=name[:150],
        email_verified_at=timezone.now() if email_confirmed else None,
    )
    status = Partner.Status.PENDING if settings.PARTNER_APPROVAL == "manual" else Partner.Status.APPROVED
    terms = current_terms()
    now = timezone.now()
    for _ in range(5):
        code = new_referral_code()
        try:
            with transaction.atomic():
                partner = Partner.objects.create(
                    user=user,
                    name=name,
                    website=website,
                    referral_code=code,
                    accepted_terms_at=now,
                    accepted_terms_version=terms.version if terms else None,
                    status=status,
                )
                Link.objects.create(partner=partner, code=code, trial_days=14, is_default=True, destination="")
            # The sign-up form's "I accept the terms" is the acceptance of the version shown.
            if terms is not None:
                TermsAcceptance.objects.create(partner=partner, terms=terms, accepted_at=now)
            if status == Partner.Status.PENDING:
                _notify_partner(partner.pk, "application_received")
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
    if token is None or not token.partner.user.is_active or token.partner.status == Partner.Status.DECLINED:
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


# --- applications (PARTNER_APPROVAL=manual) --------------------------------------------------


class ApplicationError(PortalError):
    """A decision staff cannot take on this partner (shown in the admin)."""


def _notify_partner(partner_id: int, kind: str) -> None:
    from partners import tasks

    # robust: with the broker down the decision stands; a lost email must not undo it.
    transaction.on_commit(lambda: tasks.notify_partner_task.delay(partner_id, kind), robust=True)


def _forget_links(partner_id: int) -> None:
    # The redirect caches links with their partner's status: drop them in this process at once
    # (other processes follow within linkcache.LINK_CACHE_SECONDS).
    for link_id, code in Link.objects.filter(partner_id=partner_id).values_list("id", "code"):
        transaction.on_commit(lambda link_id=link_id, code=code: linkcache.forget(link_id=link_id, code=code))


def _decide(*, partner_ids: Iterable[int], actor: User, to: str, allowed_from: tuple[str, ...]) -> list[Partner]:
    decided = []
    # Locked in id order: two staff deciding overlapping selections never deadlock, and a
    # partner decided by the other one is skipped here (its status moved on).
    for partner in Partner.objects.select_for_update().filter(pk__in=list(partner_ids)).order_by("pk"):
        if partner.status not in allowed_from:
            continue
        partner.status = to
        partner.status_changed_at = timezone.now()
        partner.status_changed_by = actor
        partner.save(update_fields=["status", "status_changed_at", "status_changed_by"])
        _forget_links(partner.pk)
        _notify_partner(partner.pk, to)
        decided.append(partner)
    return decided


@transaction.atomic
def partners_approve(*, partner_ids: Iterable[int], actor: User) -> list[Partner]:
    """Approve pending (or previously declined) partners: their links start counting and they
    are emailed. Partners already approved are left as they are. Returns those approved now."""
    return _decide(
        partner_ids=partner_ids,
        actor=actor,
        to=Partner.Status.APPROVED,
        allowed_from=(Partner.Status.PENDING, Partner.Status.DECLINED),
    )


@transaction.atomic
def partners_decline(*, partner_ids: Iterable[int], actor: User) -> list[Partner]:
    """Decline pending partners: they are emailed and can no longer use the panel; their links
    behave like unknown codes. Approved partners are not declined by this (it is for
    applications); returns those declined now."""
    return _decide(
        partner_ids=partner_ids, actor=actor, to=Partner.Status.DECLINED, allowed_from=(Partner.Status.PENDING,)
    )


# --- program terms ---------------------------------------------------------------------------


@transaction.atomic
def terms_publish(*, text: str, summary_of_changes: str = "", actor: User | None = None) -> ProgramTerms:
    """Publish a new version of the terms (the next number). Partners accept it at their next
    visit and cannot withdraw until they have."""
    if not text.strip():
        raise PortalError("The terms cannot be empty.", code="invalid", field="text")
    # The lock on the newest version serialises two publishers; the unique version is the
    # last line of defence.
    latest = ProgramTerms.objects.select_for_update().order_by("-version").first()
    terms = ProgramTerms.objects.create(
        version=(latest.version + 1) if latest else 1,
        text=text,
        summary_of_changes=summary_of_changes,
        created_by=actor,
    )
    transaction.on_commit(forget_current_terms)
    return terms


@transaction.atomic
def terms_accept(*, partner: Partner, terms: ProgramTerms) -> TermsAcceptance:
    """Record the partner's acceptance of ``terms`` (idempotent: accepting again keeps the first
    acceptance)."""
    acceptance, _ = TermsAcceptance.objects.get_or_create(
        partner=partner, terms=terms, defaults={"accepted_at": timezone.now()}
    )
    # Never moves back: accepting an older version (a stale form) leaves a newer one in place.
    Partner.objects.filter(pk=partner.pk).filter(
        Q(accepted_terms_version__isnull=True) | Q(accepted_terms_version__lt=terms.version)
    ).update(accepted_terms_version=terms.version, accepted_terms_at=acceptance.accepted_at)
    partner.refresh_from_db(fields=["accepted_terms_version", "accepted_terms_at"])
    return acceptance
