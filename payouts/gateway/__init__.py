"""How money leaves: one small gateway per payout method, behind the ``PayoutGateway`` protocol.

PayPal is the only method today (``PayPalGateway``). A bank transfer, Wise or Stripe Connect
gateway would implement the same three calls and register itself in ``get_gateway``.

The package: ``base`` (the protocol, its errors and results), ``paypal`` (the PayPal gateway,
paypalrestsdk with its defects fixed) and ``paypal_format`` (PayPal's amounts, answers and
errors). Import from here: ``from payouts.gateway import get_gateway, PayoutGatewayError``.
"""

from __future__ import annotations

from payouts.gateway.base import (
    BATCH_FAILED,
    ITEM_FAILED,
    ITEM_RETURNED,
    ITEM_SUCCESS,
    AuthenticationLoopError,
    BatchItem,
    BatchResult,
    PayoutGateway,
    PayoutGatewayError,
    PermanentGatewayError,
    RetryableGatewayError,
    SentBatch,
)
from payouts.gateway.paypal import MAX_TOKEN_REFRESHES, PayPalGateway
from payouts.gateway.paypal_format import ZERO_DECIMAL_CURRENCIES, amount_value

__all__ = [
    "BATCH_FAILED",
    "ITEM_FAILED",
    "ITEM_RETURNED",
    "ITEM_SUCCESS",
    "MAX_TOKEN_REFRESHES",
    "ZERO_DECIMAL_CURRENCIES",
    "AuthenticationLoopError",
    "BatchItem",
    "BatchResult",
    "PayPalGateway",
    "PayoutGateway",
    "PayoutGatewayError",
    "PermanentGatewayError",
    "RetryableGatewayError",
    "SentBatch",
    "amount_value",
    "get_gateway",
]


def get_gateway(method: str = "paypal") -> PayoutGateway:
    """The gateway for a payout method (``Payout.method``)."""
    if method == PayPalGateway.method:
        return PayPalGateway()
    raise ValueError(f"No payout gateway for method {method!r}")
