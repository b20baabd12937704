"""Bodies of ``POST /api/v1/events`` (docs/reference.md "Merchant events API").

One pydantic schema per event type, discriminated by ``type``. The view validates the parsed
JSON against ``EVENT_ADAPTER`` itself (after the signature check) so that every refusal is a
``400`` in the contract's shape with a precise ``field`` such as ``data.amount``; the same
schemas are published in the OpenAPI document at ``/api/v1/openapi.json``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from ninja import Schema
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
    TypeAdapter,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

from tracking.rollups import program_tz

EVENT_TYPES = ("customer.signed_up", "payment.succeeded", "payment.refunded", "subscription.cancelled")

# Amounts are strings so no float ever touches money: digits, optionally 1-2 decimals, and
# at most 10 integer digits (the ledger's DecimalField(max_digits=12, decimal_places=2)).
# ASCII digits only, as the published pattern says: Python's ``\d`` (and ``Decimal``) also take
# "١٢.٣٤" or "４９.００", which the merchant's JSON schema validator would refuse.
_AMOUNT_RE = re.compile(r"[0-9]{1,10}(?:\.[0-9]{1,2})?")
AMOUNT_EXAMPLE = "49.00"


def _amount(value: Any) -> Decimal:
    if not isinstance(value, str):
        raise PydanticCustomError(
            "invalid_amount",
            'Must be a decimal string such as "{example}", not a JSON number.',
            {"example": AMOUNT_EXAMPLE},
        )
    if not _AMOUNT_RE.fullmatch(value):
        raise PydanticCustomError(
            "invalid_amount",
            'Must be a positive decimal string with at most two decimal places, such as "{example}".',
            {"example": AMOUNT_EXAMPLE},
        )
    amount = Decimal(value)
    if amount <= 0:
        raise PydanticCustomError("invalid_amount", "Must be greater than 0.")
    return amount


def _currency(value: str) -> str:
    expected = settings.PROGRAM_CURRENCY
    if value != expected:
        raise PydanticCustomError(
            "invalid_currency", "The program pays commission in {expected} only.", {"expected": expected}
        )
    return value


def _created(value: Any) -> datetime:
    message = 'Must be an ISO 8601 date and time with a time zone, such as "2025-01-31T12:00:00Z".'
    if not isinstance(value, str):
        raise PydanticCustomError("invalid_datetime", message)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise PydanticCustomError("invalid_datetime", message) from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise PydanticCustomError("invalid_datetime", "Must include a time zone (Z or an offset such as +02:00).")
    try:
        # The same instant in UTC: PostgreSQL refuses offsets beyond ±15:59 (a DataError, 500).
        moment = moment.astimezone(UTC)
        # Every event is counted on its day in the program's time zone: that day must exist too.
        moment.astimezone(program_tz())
    except OverflowError:
        raise PydanticCustomError("invalid_datetime", "Must be a date and time between the years 1 and 9999.") from None
    return moment


def _email(value: str) -> str:
    try:
        validate_email(value)
    except DjangoValidationError:
        raise PydanticCustomError("invalid_email", "Must be a valid email address.") from None
    return value


def _no_nul(value: str) -> str:
    # PostgreSQL text and jsonb columns cannot hold NUL: a 400 here, not a DataError (500) later.
    if "\x00" in value:
        raise PydanticCustomError("invalid_value", "Must not contain NUL (\\u0000) characters.")
    return value


Identifier = Annotated[
    str,
    Strict(),
    StringConstraints(min_length=1, max_length=255, pattern=r"\S"),
    AfterValidator(_no_nul),
    WithJsonSchema({"type": "string", "minLength": 1, "maxLength": 255}),
]
Amount = Annotated[
    Decimal,
    BeforeValidator(_amount),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^[0-9]{1,10}(\.[0-9]{1,2})?$",
            "description": "A decimal string greater than 0 with at most two decimal places.",
            "examples": [AMOUNT_EXAMPLE],
        }
    ),
]
Currency = Annotated[
    str,
    Strict(),
    AfterValidator(_currency),
    WithJsonSchema(
        {
            "type": "string",
            "description": "Must equal the program currency (the PROGRAM_CURRENCY setting, USD by default).",
            "examples": ["USD"],
        }
    ),
]
Created = Annotated[
    datetime,
    BeforeValidator(_created),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            "description": "When it happened at the merchant: ISO 8601 with a time zone.",
            "examples": ["2025-01-31T12:00:00Z"],
        }
    ),
]
Email = Annotated[
    str,
    Strict(),
    StringConstraints(max_length=254),
    AfterValidator(_email),
    WithJsonSchema({"type": "string", "format": "email", "maxLength": 254}),
]
Seats = Annotated[int, Strict(), Field(ge=1, le=1_000_000)]


class _Strict(BaseModel):
    """The incoming events: plain pydantic models (ninja's ``Schema`` wraps every validation in a
    validator that reads Django objects, a third of the cost of validating an event)."""

    model_config = ConfigDict(extra="forbid")


class SignedUpData(_Strict):
    customer_id: Identifier = Field(description="The merchant's id of the new customer.")
    click_id: Annotated[str, Strict(), StringConstraints(max_length=255)] | None = Field(
        description="The `aff_click` value the visitor brought (cookie or landing-page query parameter); "
        "null when there was none. Required, may be null.",
    )
    email: Email | None = Field(
        default=None, description="Optional. Used only to detect self-referrals; shown masked to the partner."
    )
    promo_code: Annotated[str, Strict(), StringConstraints(max_length=255)] | None = Field(
        default=None,
        description="Optional. The partner promo code the customer entered: it refers the customer to the "
        "code's partner when no click inside the attribution window names another. Case-insensitive.",
    )


class PaymentSucceededData(_Strict):
    payment_id: Identifier = Field(description="The merchant's unique id of this payment: it earns commission once.")
    customer_id: Identifier
    amount: Amount
    currency: Currency
    plan: Literal["A", "B", "C"]
    seats: Seats = Field(description="Number of seats (users) paid for, at least 1.")


class PaymentRefundedData(_Strict):
    payment_id: Identifier = Field(description="The payment being refunded (from its `payment.succeeded`).")
    amount: Amount = Field(description="The refunded part: at most what is left of the payment after earlier refunds.")


class SubscriptionCancelledData(_Strict):
    customer_id: Identifier


class _Event(_Strict):
    id: Identifier = Field(description="The merchant's unique event id (the idempotency key).")
    created: Created


class CustomerSignedUpEvent(_Event):
    """A customer signed up (starts a trial). Attributed when `click_id` names a click made at
    most ATTRIBUTION_WINDOW_DAYS (90) before `created`."""

    type: Literal["customer.signed_up"]
    data: SignedUpData


class PaymentSucceededEvent(_Event):
    """A successful payment: first payments, renewals, upgrades and added seats alike."""

    type: Literal["payment.succeeded"]
    data: PaymentSucceededData


class PaymentRefundedEvent(_Event):
    """A (partial or full) refund of an earlier payment."""

    type: Literal["payment.refunded"]
    data: PaymentRefundedData


class SubscriptionCancelledEvent(_Event):
    """The customer's subscription was cancelled."""

    type: Literal["subscription.cancelled"]
    data: SubscriptionCancelledData


MerchantEventIn = Annotated[
    CustomerSignedUpEvent | PaymentSucceededEvent | PaymentRefundedEvent | SubscriptionCancelledEvent,
    Field(discriminator="type"),
]
EVENT_ADAPTER: TypeAdapter = TypeAdapter(MerchantEventIn)


# --- responses (documentation of the JSON the endpoint answers with) ---------------------


class EventErrorDetail(Schema):
    code: str = Field(examples=["invalid_amount"])
    message: str
    field: str | None = Field(
        description="The offending body field as a dotted path, e.g. `data.amount`; null when none."
    )


class EventErrorOut(Schema):
    error: EventErrorDetail


class EventReferralOut(Schema):
    id: int
    partner: str = Field(description="The partner's referral code.")
    status: Literal["trial", "paying", "cancelled", "expired"] = Field(
        description="`expired` is a trial that ended with no payment."
    )
    trial_days: Literal[14, 30]
    trial_ends_at: datetime


class EventPaymentOut(Schema):
    payment_id: str
    customer_id: str
    referral: int = Field(description="The referral's id.")
    amount: str = Field(examples=["49.00"])
    currency: str = Field(examples=["USD"])
    plan: Literal["A", "B", "C"]
    seats: int
    paid_at: datetime
    refunded_amount: str = Field(examples=["0.00"])


class EventCommissionOut(Schema):
    amount: str = Field(
        description="The ledger entry: the commission (0.00 for a self-referral) or, for a refund, its negative reversal.",
        examples=["9.80", "-2.00"],
    )


class EventRefundOut(Schema):
    payment_id: str
    amount: str = Field(examples=["10.00"])
    refunded_at: datetime
    payment_refunded_amount: str = Field(description="All refunds of the payment so far.", examples=["10.00"])
    payment_remaining_amount: str = Field(description="What is left of the payment to refund.", examples=["39.00"])


_AWAITING_CLICK_DOC = (
    "Present (true) while the sign-up's click, one this server issued, is still in the click buffer: the "
    "event is kept and applied the moment the click is stored; a replay then answers with the result."
)


class EventReferralResult(Schema):
    """`customer.signed_up` and `subscription.cancelled`."""

    referral: EventReferralOut | None
    awaiting_click: bool | None = Field(default=None, description=_AWAITING_CLICK_DOC)


class EventPaymentResult(Schema):
    """`payment.succeeded`."""

    payment: EventPaymentOut | None
    commission: EventCommissionOut | None
    awaiting_click: bool | None = Field(default=None, description=_AWAITING_CLICK_DOC)


class EventRefundResult(Schema):
    """`payment.refunded`."""

    refund: EventRefundOut | None
    commission: EventCommissionOut | None
    awaiting_click: bool | None = Field(default=None, description=_AWAITING_CLICK_DOC)


EventResult = EventReferralResult | EventPaymentResult | EventRefundResult
