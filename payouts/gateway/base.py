"""What every payout gateway shares: the ``PayoutGateway`` protocol, its errors (safe to show to
staff, and saying whether to try again) and its results (a sent batch, a batch and its items).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

# Item statuses (Payouts API ``transaction_status``) that end a payout.
ITEM_SUCCESS = frozenset({"SUCCESS"})
# Never paid: the money did not leave.
ITEM_FAILED = frozenset({"FAILED", "DENIED"})
# Paid or on its way, then brought back: returned (unclaimed for 30 days), reversed, refunded
# or blocked. These can follow SUCCESS.
ITEM_RETURNED = frozenset({"RETURNED", "REVERSED", "REFUNDED", "BLOCKED"})
BATCH_FAILED = frozenset({"DENIED", "CANCELED"})


# --- errors -------------------------------------------------------------------------------------
class PayoutGatewayError(Exception):
    """Anything that went wrong talking to a payout provider. ``str(exc)`` is safe to show to
    staff: it never contains credentials."""

    retryable = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        name: str = "",
        details: object = None,
        may_have_arrived: bool | None = None,
        retry_after: float = 0.0,
    ):
        super().__init__(message)
        self.message = message
        self.status = status
        self.name = name
        self.details = details
        # A retryable error may hide a batch PayPal created, unless it proves otherwise.
        self.may_have_arrived = self.retryable if may_have_arrived is None else may_have_arrived
        self.retry_after = retry_after

    def as_dict(self) -> dict:
        return {
            "message": self.message,
            "status": self.status,
            "name": self.name,
            "may_have_arrived": self.may_have_arrived,
        }


class RetryableGatewayError(PayoutGatewayError):
    """The outcome is unknown or temporary (network error, timeout, 5xx, 429, unreadable answer):
    try again later with the same ``sender_batch_id``."""

    retryable = True


class PermanentGatewayError(PayoutGatewayError):
    """The provider refused the request (4xx): sending it again will not help."""


class AuthenticationLoopError(PermanentGatewayError):
    """PayPal kept answering 401 after fresh tokens: the credentials or the account are wrong."""


# --- results ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SentBatch:
    batch_id: str  # "" only when PayPal says the batch exists but does not say which one
    batch_status: str
    already_sent: bool = False  # PayPal had this sender_batch_id already (an earlier attempt)


@dataclass(frozen=True)
class BatchItem:
    item_id: str
    sender_item_id: str
    transaction_id: str
    transaction_status: str
    error_name: str = ""
    error_message: str = ""
    amount: Decimal | None = None
    currency: str = ""
    receiver: str = ""

    def pays(self, *, amount: Decimal, currency: str, receiver: str) -> bool:
        """Whether this item is the payment of ``amount`` ``currency`` to ``receiver``."""
        return (
            self.amount is not None
            and self.amount == amount
            and self.currency.upper() == currency.upper()
            and self.receiver.strip().lower() == receiver.strip().lower()
        )


@dataclass(frozen=True)
class BatchResult:
    batch_id: str
    batch_status: str
    sender_batch_id: str
    items: tuple[BatchItem, ...] = field(default_factory=tuple)

    def item_for(self, sender_item_id: str) -> BatchItem | None:
        for item in self.items:
            if item.sender_item_id == sender_item_id:
                return item
        # One payout per batch: an item whose sender_item_id PayPal left out is still ours.
        return self.items[0] if len(self.items) == 1 and not self.items[0].sender_item_id else None


class PayoutGateway(Protocol):
    """A way to pay a partner. Implementations must be idempotent on ``sender_batch_id``."""

    def send(
        self, *, sender_batch_id: str, sender_item_id: str, receiver: str, amount: Decimal, currency: str, note: str
    ) -> SentBatch: ...

    def get_batch(self, batch_id: str) -> BatchResult: ...
