"""Everything that writes tracking links. (Clicks are written by ``tracking.clicks``.)"""

from __future__ import annotations

import re
import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from config.errors import PortalError
from partners.models import Partner
from tracking.models import Click, Creative, DailyLinkStats, Link, PromoCode
from tracking.validators import validate_destination

CODE_RE = re.compile(r"^[A-Za-z0-9_-]{3,40}$")
_GENERATED_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
_GENERATED_LENGTH = 10


class LinkError(PortalError):
    """A link change the program rules refuse; the message is shown to the partner."""


def generate_link_code() -> str:
    # 10 characters of a 31-letter alphabet (no 0/o/1/l/i look-alikes): ~49 bits.
    return "".join(secrets.choice(_GENERATED_ALPHABET) for _ in range(_GENERATED_LENGTH))


def clean_destination(destination: str) -> str:
    """The destination to store: empty (the default landing page) or a validated URL."""
    destination = (destination or "").strip()
    if not destination:
        return ""
    try:
        return validate_destination(destination)
    except ValidationError as exc:
        raise LinkError(exc.messages[0], code="destination", field="destination") from None


def clean_code(code: str) -> str:
    code = (code or "").strip()
    if not CODE_RE.match(code):
        raise LinkError("A code is 3 to 40 letters, digits, hyphens or underscores.", code="code_format", field="code")
    # Codes differing only in case would be indistinguishable when read aloud or typed.
    if Link.objects.filter(code__iexact=code).exists():
        raise LinkError("This code is already taken. Choose another one.", code="code_taken", field="code")
    return code


@transaction.atomic
def link_create(
    *,
    partner: Partner,
    destination: str = "",
    trial_days: int = 14,
    description: str = "",
    creative: Creative | None = None,
    code: str = "",
    pass_sub_ids: bool = False,
) -> Link:
    """A custom link of ``partner``. Empty ``destination`` = the default landing page; empty
    ``code`` = a generated one."""
    destination = clean_destination(destination)
    if trial_days not in settings.TRIAL_LENGTHS:
        lengths = " or ".join(str(n) for n in settings.TRIAL_LENGTHS)
        raise LinkError(f"The trial length must be {lengths} days.", code="trial_days", field="trial_days")
    description = (description or "").strip()
    if len(description) > Link._meta.get_field("description").max_length:
        raise LinkError("The description is too long (200 characters at most).", field="description")
    if creative is not None and not creative.is_active:
        raise LinkError("This creative is no longer available.", code="creative", field="creative")

    fields = {
        "partner": partner,
        "destination": destination,
        "trial_days": trial_days,
        "description": description,
        "creative": creative,
        "is_default": False,
        "pass_sub_ids": pass_sub_ids,
    }
    if code:
        code = clean_code(code)
        try:
            with transaction.atomic():
                return Link.objects.create(code=code, **fields)
        except IntegrityError:
            # Taken between the check and the insert.
            raise LinkError(
                "This code is already taken. Choose another one.", code="code_taken", field="code"
            ) from None
    for _ in range(5):
        try:
            with transaction.atomic():
                return Link.objects.create(code=generate_link_code(), **fields)
        except IntegrityError:
            continue
    raise LinkError("Could not create the link right now. Please try again.", code="code_collision")


def _own_link(*, partner: Partner, link_id: int) -> Link:
    link = Link.objects.filter(partner=partner, pk=link_id).first()
    if link is None:
        raise Link.DoesNotExist
    return link


def link_set_active(*, partner: Partner, link_id: int, active: bool) -> Link:
    """Enable or disable one of the partner's own links (``Link.DoesNotExist`` for anyone
    else's). A disabled link sends visitors to the default landing page and counts nothing."""
    link = _own_link(partner=partner, link_id=link_id)
    if link.is_default and not active:
        raise LinkError("Your default link cannot be disabled.", code="default_link")
    if link.is_active != active:
        link.is_active = active
        # save() (not a queryset update) so the redirect's link cache hears about it.
        link.save(update_fields=["is_active"])
    return link


def link_disable(*, partner: Partner, link_id: int) -> Link:
    return link_set_active(partner=partner, link_id=link_id, active=False)


def link_enable(*, partner: Partner, link_id: int) -> Link:
    return link_set_active(partner=partner, link_id=link_id, active=True)


@transaction.atomic
def link_delete(*, partner: Partner, link_id: int) -> None:
    """Delete one of the partner's own custom links that never had a click."""
    link = _own_link(partner=partner, link_id=link_id)
    if link.is_default:
        raise LinkError("Your default link cannot be deleted.", code="default_link")
    # Lock the link so a click being written now (FK to it) either lands first or fails.
    Link.objects.select_for_update().filter(pk=link.pk).first()
    # The rollups too: raw clicks past the retention age are pruned (tracking/retention.py), and
    # deleting the link would take its counted clicks out of every report.
    if (
        Click.objects.filter(link_id=link.pk).exists()
        or DailyLinkStats.objects.filter(link_id=link.pk, clicks__gt=0).exists()
    ):
        raise LinkError("A link with clicks cannot be deleted; disable it instead.", code="link_has_clicks")
    link.delete()


# --- promo codes -----------------------------------------------------------------------------

# A partner asks for codes; staff decide. More open requests than this are refused so that the
# admin's queue cannot be flooded by one account.
PROMO_CODE_OPEN_REQUESTS_MAX = 3


class PromoCodeError(PortalError):
    """A promo code request the rules refuse; the message is shown to the partner."""


@transaction.atomic
def promo_code_request(*, partner: Partner, code: str, trial_days: int, description: str = "") -> PromoCode:
    """A promo code the partner asks for: stored inactive, with ``requested_at``, until staff
    activate it in the admin. The code is unique whatever its case (the database decides a race)."""
    code = (code or "").strip()
    if not CODE_RE.match(code):
        raise PromoCodeError("A code is 3 to 40 letters, digits, hyphens or underscores.", field="code")
    if trial_days not in settings.TRIAL_LENGTHS:
        lengths = " or ".join(str(n) for n in settings.TRIAL_LENGTHS)
        raise PromoCodeError(f"The trial length must be {lengths} days.", field="trial_days")
    description = (description or "").strip()
    if len(description) > PromoCode._meta.get_field("description").max_length:
        raise PromoCodeError("The description is too long (200 characters at most).", field="description")
    # Lock the partner row: two requests of one partner count the open ones one after the other.
    Partner.objects.select_for_update().filter(pk=partner.pk).first()
    open_requests = PromoCode.objects.filter(partner=partner, is_active=False, requested_at__isnull=False).count()
    if open_requests >= PROMO_CODE_OPEN_REQUESTS_MAX:
        raise PromoCodeError(
            f"You have {open_requests} code requests waiting for review; wait for them before asking for more."
        )
    if PromoCode.objects.filter(code__iexact=code).exists():
        raise PromoCodeError("This code is already taken. Choose another one.", field="code")
    try:
        with transaction.atomic():
            return PromoCode.objects.create(
                partner=partner,
                code=code,
                trial_days=trial_days,
                description=description,
                is_active=False,
                requested_at=timezone.now(),
            )
    except IntegrityError:  # taken between the check and the insert
        raise PromoCodeError("This code is already taken. Choose another one.", field="code") from None
