"""``customer.signed_up``: the click that attributes a sign-up, the attribution window and trial,
self-referrals, promo codes, and a sign-up waiting for a click not stored yet."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction

from commissions.handling import (
    AwaitedClick,
    EventRejected,
    Outcome,
    _Handled,
    _insert_unless_exists,
    _waiting_sign_up,
    referral_json,
)
from commissions.models import AwaitingClick, MerchantEvent, Referral
from tracking.clicks import click_for_attribution, parse_click_id
from tracking.ids import issued_at, issued_here
from tracking.models import Click, Link, PromoCode
from tracking.rollups import program_day, rollup_add

logger = logging.getLogger(__name__)

# --- customer.signed_up ------------------------------------------------------------------


def _attributable_click(event: Any) -> Click | AwaitedClick | None:
    """The click named by a sign-up, if the sign-up falls within its attribution window
    (``click.created_at <= created <= click.created_at + ATTRIBUTION_WINDOW_DAYS``); an
    ``AwaitedClick`` when the id is one this server issued, made within the window before the
    sign-up, that is not in the database even after a flush (a backlog, or another flusher
    holding the buffer): the sign-up then waits for it."""
    click_id, created = event.data.click_id, event.created
    if not click_id:
        return None
    # A mangled cookie value is an unattributed sign-up (None), not a bad request.
    click = click_for_attribution(click_id)
    if click is None:
        parsed = parse_click_id(click_id)
        if parsed is not None and issued_here(parsed) and in_window(clicked_at=issued_at(parsed), signed_up_at=created):
            return AwaitedClick(parsed)
        return None
    if not in_window(clicked_at=click.created_at, signed_up_at=created):
        return None
    return click


def in_window(*, clicked_at: datetime, signed_up_at: datetime) -> bool:
    """The attribution window: ``clicked_at <= signed_up_at <= clicked_at + ATTRIBUTION_WINDOW_DAYS``,
    written as a difference so that no date near the year 1 or 9999 overflows."""
    return clicked_at <= signed_up_at and signed_up_at - clicked_at <= timedelta(days=settings.ATTRIBUTION_WINDOW_DAYS)


def trial_end(*, signed_up_at: datetime, trial_days: int) -> datetime | None:
    """When a trial starting at ``signed_up_at`` ends; None when that is after the year 9999."""
    try:
        return signed_up_at + timedelta(days=trial_days)
    except OverflowError:
        return None


def _trial_end_or_refuse(*, signed_up_at: datetime, trial_days: int) -> datetime:
    ends = trial_end(signed_up_at=signed_up_at, trial_days=trial_days)
    if ends is None:
        raise EventRejected(
            f"A {trial_days}-day trial starting at this date would end after the year 9999.",
            code="invalid_datetime",
            field="created",
        )
    return ends


def _existing_referral(customer_id: str) -> _Handled | None:
    existing = Referral.objects.select_related("partner").filter(customer_id=customer_id).first()
    if existing is None:
        return None
    # Referred at most once: the first partner keeps the customer.
    return _Handled(Outcome.DUPLICATE, 200, {"referral": referral_json(existing)}, existing)


def fold_email(email: str) -> str:
    """An email address as the self-referral check compares it: stripped and case-folded."""
    return email.strip().casefold()


def self_referral(email: str, partner_email: str) -> bool:
    """A sign-up with the partner's own email address (docs/reference.md: kept, earns nothing)."""
    return bool(email) and fold_email(email) == fold_email(partner_email)


_AWAITING_SIGN_UP = {"referral": None, "awaiting_click": True}


def _signed_up(event: Any, record: MerchantEvent, click: Click | AwaitedClick | None) -> _Handled:
    data = event.data
    if _waiting_sign_up(customer_id=data.customer_id) is not None:
        # The customer's first sign-up waits for its click: it keeps the customer.
        return _Handled(Outcome.DUPLICATE, 200, dict(_AWAITING_SIGN_UP))
    if isinstance(click, AwaitedClick):
        return _existing_referral(data.customer_id) or _await_click(event, record, click)
    promo = None
    if click is None:
        promo = _promo_code_attribution(data.promo_code)
        if promo is None:
            return _existing_referral(data.customer_id) or _Handled(Outcome.NOT_REFERRED, 201, {"referral": None})
        promo_code, link = promo
        trial_days = promo_code.trial_days
    else:
        # A click inside the window wins over any promo code (docs/reference.md, `customer.signed_up`).
        link = click.link  # with its partner and the partner's user (click_for_attribution)
        trial_days = link.trial_days
    partner_code, partner_email = link.partner.referral_code, link.partner.user.email
    email = data.email or ""
    referral = Referral(
        partner_id=link.partner_id,
        link=link,
        click=click,
        promo_code=promo[0] if promo is not None else None,
        customer_id=data.customer_id,
        email=email,
        is_self_referral=self_referral(email, partner_email),
        status=Referral.Status.TRIAL,
        signed_up_at=event.created,
        trial_days=trial_days,
        trial_ends_at=_trial_end_or_refuse(signed_up_at=event.created, trial_days=trial_days),
    )
    # The unique customer id decides "referred at most once", concurrent sign-ups included.
    if not _insert_unless_exists(referral, unique="customer_id"):
        existing = _existing_referral(data.customer_id)
        if existing is None:  # the conflicting row was rolled back meanwhile: run the event again
            raise IntegrityError(f"referral of customer {data.customer_id} vanished")
        return existing
    rollup_add(link_id=referral.link_id, partner_id=referral.partner_id, day=program_day(event.created), new_trials=1)
    return _Handled(Outcome.APPLIED, 201, {"referral": referral_json(referral, partner_code=partner_code)}, referral)


def _promo_code_attribution(code: str | None) -> tuple[PromoCode, Link] | None:
    """The active promo code spelled ``code`` (any case) of an active, approved partner (a pending
    or declined application's codes refer nobody, as its links count nothing), with the partner's
    default link (the referral's link, so the link rollups count its trial); None otherwise."""
    code = (code or "").strip()
    if not code:
        return None
    promo = (
        PromoCode.objects.select_related("partner__user")
        .filter(code__iexact=code, is_active=True, partner__user__is_active=True, partner__status="approved")
        .first()
    )
    if promo is None:
        return None
    link = Link.objects.filter(partner_id=promo.partner_id, is_default=True).first()
    if link is None:
        return None
    link.partner = promo.partner
    return promo, link


def _await_click(event: Any, record: MerchantEvent, click: AwaitedClick) -> _Handled:
    waiting = AwaitingClick(click_id=click.id, customer_id=event.data.customer_id, event=record)
    if not _insert_unless_exists(waiting, unique="customer_id"):
        return _Handled(Outcome.DUPLICATE, 200, dict(_AWAITING_SIGN_UP))
    # Looked for again after the commit: a flusher that stored the click after this sign-up
    # looked, and checked for waiting sign-ups before this one committed, found none.
    from commissions.services import awaiting_clicks_resolve  # it re-applies through the handlers

    click_id = click.id
    transaction.on_commit(lambda: awaiting_clicks_resolve(click_ids=[click_id]), robust=True)
    return _Handled(Outcome.AWAITING_CLICK, 201, dict(_AWAITING_SIGN_UP))
