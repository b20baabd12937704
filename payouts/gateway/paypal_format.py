"""PayPal's formats: the amount string we send, and the answers and errors we read back (batches,
items, the duplicate-batch answer, ``Retry-After``). Nothing here talks to PayPal.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal

from payouts.gateway.base import BatchItem, BatchResult, PermanentGatewayError, RetryableGatewayError

# PayPal's batch and item ids are short upper-case alphanumerics; anything else taken from an
# answer (e.g. a HATEOAS link) is refused rather than pasted into a URL.
_PAYPAL_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_BATCH_LINK = re.compile(r"/v1/payments/payouts/([A-Za-z0-9_-]{1,64})/?(?:[?#]|$)")

# Zero-decimal currencies of the Payouts API: amounts are whole numbers.
ZERO_DECIMAL_CURRENCIES = frozenset({"HUF", "JPY", "TWD"})


def _error_from_body(body: object, status: int | None) -> dict:
    if isinstance(body, dict):
        return body
    if isinstance(body, (str, bytes)):
        try:
            parsed = json.loads(body)
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return {}


def _describe(error: dict, fallback: str) -> tuple[str, str]:
    name = str(error.get("name") or error.get("error") or "")
    message = str(error.get("message") or error.get("error_description") or fallback)
    issues = [
        str(detail.get("issue"))
        for detail in error.get("details") or []
        if isinstance(detail, dict) and detail.get("issue")
    ]
    if issues:
        message = f"{message} ({'; '.join(issues)})"
    return name, message[:500]


def _duplicate_batch_id(error: dict) -> str | None:
    """The existing batch's id when ``error`` is PayPal's answer to a reused sender_batch_id,
    "" when it is that answer without a usable link, None for any other error.

    Recognised by the field, never by the wording: a business error (not a validation error of
    the id's format) with a ``details[].field`` of ``SENDER_BATCH_ID``."""
    details = [d for d in error.get("details") or [] if isinstance(d, dict)]
    duplicate = str(error.get("name") or "") != "VALIDATION_ERROR" and any(
        str(d.get("field") or "").strip().upper().rsplit(".", 1)[-1] == "SENDER_BATCH_ID" for d in details
    )
    if not duplicate:
        return None
    links = [link for d in details for link in (d.get("link") or []) if isinstance(link, dict)]
    links += [link for link in error.get("links") or [] if isinstance(link, dict)]
    for link in links:
        match = _BATCH_LINK.search(str(link.get("href") or ""))
        if match:
            return match.group(1)
    return ""


def _item_from(raw: dict) -> BatchItem:
    errors = raw.get("errors") if isinstance(raw.get("errors"), dict) else {}
    payout_item = raw.get("payout_item") if isinstance(raw.get("payout_item"), dict) else {}
    amount = payout_item.get("amount") if isinstance(payout_item.get("amount"), dict) else {}
    return BatchItem(
        item_id=str(raw.get("payout_item_id") or ""),
        sender_item_id=str(payout_item.get("sender_item_id") or raw.get("sender_item_id") or ""),
        transaction_id=str(raw.get("transaction_id") or ""),
        transaction_status=str(raw.get("transaction_status") or "").upper(),
        error_name=str(errors.get("name") or ""),
        error_message=str(errors.get("message") or "")[:500],
        amount=_decimal(amount.get("value")),
        currency=str(amount.get("currency") or ""),
        receiver=str(payout_item.get("receiver") or ""),
    )


def _batch_from(answer: object, batch_id: str) -> BatchResult:
    header = answer.get("batch_header") if isinstance(answer, dict) else None
    if not isinstance(header, dict) or not header.get("batch_status"):
        raise RetryableGatewayError("PayPal's answer for the batch had no batch header.")
    if str(header.get("payout_batch_id") or batch_id) != batch_id:
        raise RetryableGatewayError("PayPal answered with a different batch than the one asked for.")
    sender_header = header.get("sender_batch_header") if isinstance(header.get("sender_batch_header"), dict) else {}
    items = tuple(_item_from(raw) for raw in answer.get("items") or [] if isinstance(raw, dict))
    return BatchResult(
        batch_id=batch_id,
        batch_status=str(header["batch_status"]).upper(),
        sender_batch_id=str(sender_header.get("sender_batch_id") or ""),
        items=items,
    )


def amount_value(amount: Decimal, currency: str) -> str:
    """The Payouts API's amount string: whole units for zero-decimal currencies, else cents."""
    if currency.upper() in ZERO_DECIMAL_CURRENCIES:
        if amount != amount.to_integral_value():
            raise PermanentGatewayError(f"{currency} payouts must be whole amounts, not {amount}.")
        return f"{amount:.0f}"
    return f"{amount:.2f}"


def _decimal(value: object) -> Decimal | None:
    try:
        return Decimal(str(value)) if value not in (None, "") else None
    except ArithmeticError:
        return None


def _retry_after(response: object) -> float:
    """Seconds from a ``Retry-After`` header (delta-seconds; an HTTP date counts as 60 s)."""
    headers = getattr(response, "headers", None) or {}
    value = str(headers.get("Retry-After") or "").strip()
    if not value:
        return 0.0
    try:
        return max(0.0, min(float(value), 3600.0))
    except ValueError:
        return 60.0
