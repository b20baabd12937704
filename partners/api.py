"""Partner JSON API (docs/reference.md "Partner JSON API"), mounted at /api/v1/partner/.

Authentication: the panel's session cookie (a logged-in partner) or
``Authorization: Bearer <partner API token>``. Every answer carries only the caller's data.
Errors use the contract's shape ``{"error": {"code", "message", "field"}}``.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from django.http import HttpRequest, JsonResponse
from ninja import Field, Query, Router, Schema, Status
from ninja.security import HttpBearer, SessionAuth

from commissions.money import money_str
from partners.models import Partner
from partners.services import api_token_authenticate
from tracking.link_performance import link_performance
from tracking.reports import (
    MAX_RANGE_DAYS,
    DateRangeError,
    link_destination,
    link_url,
    parse_date_range,
    partner_summary,
    partner_trends,
)

MONEY_PATTERN = r"^-?\d+\.\d{2}$"
Money = Annotated[
    str,
    Field(
        pattern=MONEY_PATTERN,
        description="Money in the program currency: a decimal string with exactly two places.",
        examples=["49.80"],
    ),
]


# --- Authentication ---------------------------------------------------------------------------


class PartnerTokenAuth(HttpBearer):
    """``Authorization: Bearer pp_…``: a partner API token created on the settings page."""

    def authenticate(self, request: HttpRequest, token: str) -> Partner | None:
        return api_token_authenticate(token.strip())


class PartnerSessionAuth(SessionAuth):
    """The panel's session cookie of a logged-in partner. Django's CSRF check applies to
    state-changing methods only, so the dashboard's GETs need no token."""

    def authenticate(self, request: HttpRequest, key: str | None) -> Partner | None:
        # A request that names a credential is judged by it alone: a wrong or revoked token
        # gets 401 even from a browser that also holds a session.
        if "Authorization" in request.headers:
            return None
        user = request.user
        if not user.is_authenticated or not user.is_active:
            return None
        partner = getattr(user, "partner", None)
        # A declined partner cannot use the panel, its API included.
        return None if partner is None or partner.status == partner.Status.DECLINED else partner


def unauthorized_error(request: HttpRequest, exc: Exception):
    """The API's 401 in the contract's error shape (installed on the NinjaAPI in config/api.py)."""
    body = {
        "error": {
            "code": "unauthorized",
            "message": "Log in to the partner panel or send Authorization: Bearer <partner API token>.",
            "field": None,
        }
    }
    response = JsonResponse(body, status=401)
    response["WWW-Authenticate"] = 'Bearer realm="partner-api"'
    return response


router = Router(tags=["partner"], auth=[PartnerTokenAuth(), PartnerSessionAuth()])


# --- Schemas ---------------------------------------------------------------------------------------


class ErrorDetail(Schema):
    code: str = Field(description="Machine-readable reason, e.g. `invalid_date`, `invalid_date_range`.")
    message: str = Field(description="What is wrong, in words a person can act on.")
    field: str | None = Field(description="The query parameter at fault, or null.")


class ErrorOut(Schema):
    error: ErrorDetail


class SummaryOut(Schema):
    currency: str = Field(description="ISO 4217 code of every amount (the program currency).", examples=["USD"])
    commission: Money = Field(description="Sum of all commission entries, refund reversals included.")
    unique_clicks_30d: int = Field(
        description="Unique clicks (a visitor's first click ever on a link) over the last 30 days, today included."
    )
    active_trials: int = Field(description="Referrals in trial whose trial has not ended.")
    active_subscriptions: int = Field(description="Referrals with status paying.")
    balance: Money = Field(
        description=(
            "Commission entries older than the hold (reversals at once) minus payouts pending, approved, "
            "processing or paid. May be negative."
        )
    )
    can_withdraw: bool = Field(
        description="Balance ≥ the payout minimum, no payout in progress, and a PayPal email set."
    )
    pending_commission: Money = Field(
        description="Sum of the positive commission entries still inside the hold (not yet in the balance)."
    )


class TrendsOut(Schema):
    days: list[date] = Field(description="Every day of the range, oldest first (program time zone).")
    commission: list[Money] = Field(description="Commission earned each day (reversals included).")
    new_trials: list[int] = Field(description="Referrals that signed up each day.")
    new_subscriptions: list[int] = Field(description="Referrals whose first successful payment fell on each day.")
    unique_clicks: list[int] = Field(description="Unique clicks each day.")


class LinkOut(Schema):
    code: str = Field(description="The link's code, `[A-Za-z0-9_-]{3,40}`.")
    url: str = Field(description="The affiliate URL to share: `<site>/r/<code>`.")
    destination: str = Field(description="Where the link sends visitors (the default landing page when not set).")
    trial_days: int = Field(description="Trial length the link offers: 14 or 30.")
    description: str = Field(description="The partner's campaign description (may be empty).")
    is_default: bool = Field(description="Whether this is the partner's default link.")
    is_active: bool = Field(description="Disabled links keep their history but no longer count clicks.")
    clicks: int = Field(description="Clicks in the range.")
    unique_clicks: int = Field(description="Unique clicks in the range.")
    trials: int = Field(description="Sign-ups (new trials) in the range.")
    subscriptions: int = Field(description="New subscriptions (first payments) in the range.")
    commission: Money = Field(description="Commission earned in the range, reversals included.")


_RANGE_HELP = (
    f"Inclusive `YYYY-MM-DD`, program time zone. Default: the last 30 days up to today. At most "
    f"{MAX_RANGE_DAYS} days; a bad date, start after end or a longer range answers 400."
)


def _range(start: str | None, end: str | None) -> tuple[date, date]:
    return parse_date_range(start, end)


def _error(exc: DateRangeError) -> Status:
    return Status(400, {"error": {"code": exc.code, "message": exc.message, "field": exc.field}})


# --- Endpoints -------------------------------------------------------------------------------------


@router.get(
    "summary",
    response={200: SummaryOut, 401: ErrorOut},
    summary="The dashboard's KPIs",
    operation_id="partner_summary",
    url_name="partner_summary",
)
def summary(request: HttpRequest):
    data = partner_summary(request.auth)
    return {
        "currency": data.currency,
        "commission": money_str(data.commission),
        "unique_clicks_30d": data.unique_clicks_30d,
        "active_trials": data.active_trials,
        "active_subscriptions": data.active_subscriptions,
        "balance": money_str(data.balance),
        "can_withdraw": data.can_withdraw,
        "pending_commission": money_str(data.pending_commission),
    }


@router.get(
    "trends",
    response={200: TrendsOut, 400: ErrorOut, 401: ErrorOut},
    summary="Daily series for the trend charts",
    description="One entry per day of the range in every array, aligned with `days`; days without activity are 0.",
    operation_id="partner_trends",
    url_name="partner_trends",
)
def trends(
    request: HttpRequest,
    start: Annotated[str | None, Query(description="First day. " + _RANGE_HELP)] = None,
    end: Annotated[str | None, Query(description="Last day. " + _RANGE_HELP)] = None,
):
    try:
        first, last = _range(start, end)
    except DateRangeError as exc:
        return _error(exc)
    data = partner_trends(request.auth, first, last)
    return {
        "days": data.days,
        "commission": [money_str(v) for v in data.commission],
        "new_trials": data.new_trials,
        "new_subscriptions": data.new_subscriptions,
        "unique_clicks": data.unique_clicks,
    }


@router.get(
    "links",
    response={200: list[LinkOut], 400: ErrorOut, 401: ErrorOut},
    summary="The partner's links with their numbers for a date range",
    description="Every link of the caller (default link first, then newest), with counts for `start`..`end`.",
    operation_id="partner_links",
    url_name="partner_links",
)
def links(
    request: HttpRequest,
    start: Annotated[str | None, Query(description="First day. " + _RANGE_HELP)] = None,
    end: Annotated[str | None, Query(description="Last day. " + _RANGE_HELP)] = None,
):
    try:
        first, last = _range(start, end)
    except DateRangeError as exc:
        return _error(exc)
    report = link_performance(request.auth, first, last, sort=None)
    return [
        {
            "code": row.link.code,
            "url": link_url(row.link),
            "destination": link_destination(row.link),
            "trial_days": row.link.trial_days,
            "description": row.link.description,
            "is_default": row.link.is_default,
            "is_active": row.link.is_active,
            "clicks": row.clicks,
            "unique_clicks": row.unique_clicks,
            "trials": row.trials,
            "subscriptions": row.subscriptions,
            "commission": money_str(row.commission),
        }
        for row in report.rows
    ]
