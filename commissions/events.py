"""Parsing an incoming merchant event: raw bytes → validated schema, or a precise 400.

Idempotency compares bodies by the SHA-256 of their *canonical JSON* (keys sorted, no
insignificant whitespace, UTF-8), not of the raw bytes: a merchant whose HTTP library
re-serialises a retried event with other spacing or key order is still sending the same event
(200), while any change of a value is a different body (409). The raw bytes themselves are
what the signature covers and what the event log keeps.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from commissions.schemas import EVENT_ADAPTER, EVENT_TYPES
from config.errors import PortalError


class EventBodyError(PortalError):
    """A malformed event: answered with 400 in the contract's error shape, nothing written."""

    code = "invalid_body"


@dataclass(frozen=True)
class ParsedEvent:
    event: Any  # one of the schemas of commissions.schemas.MerchantEventIn
    text: str  # the raw body, decoded (kept in the event log)
    body_sha256: str  # of the canonical JSON


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise EventBodyError(f'The key "{key}" appears twice in one object.', code="invalid_json")
        result[key] = value
    return result


def _no_constants(name: str) -> None:
    raise EventBodyError(f"{name} is not valid JSON.", code="invalid_json")


def canonical_sha256(document: Any) -> str:
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


# pydantic error type -> (our code, our message or None to keep pydantic's)
_ERRORS: dict[str, tuple[str, str | None]] = {
    "missing": ("missing_field", "This field is required."),
    "extra_forbidden": ("unknown_field", "This field is not part of this event type."),
    "union_tag_not_found": ("missing_field", "This field is required: the event type."),
    "string_type": ("invalid_type", "Must be a string."),
    "int_type": ("invalid_type", "Must be a whole number."),
    "int_from_float": ("invalid_type", "Must be a whole number."),
    "model_attributes_type": ("invalid_type", "Must be a JSON object."),
    "model_type": ("invalid_type", "Must be a JSON object."),
    "dict_type": ("invalid_type", "Must be a JSON object."),
    "string_too_short": ("invalid_value", "Must not be empty."),
    "string_pattern_mismatch": ("invalid_value", "Must not be blank."),
    "string_too_long": ("invalid_value", None),
    "literal_error": ("invalid_value", None),
    "greater_than_equal": ("invalid_value", None),
    "less_than_equal": ("invalid_value", None),
}


def _field(loc: tuple, event_type: Any) -> str | None:
    parts = list(loc)
    # Errors inside a tagged union are prefixed with the tag ("payment.succeeded", "data", …).
    if parts and parts[0] == event_type and event_type in EVENT_TYPES:
        parts = parts[1:]
    return ".".join(str(p) for p in parts) or None


def _body_error(exc: ValidationError, event_type: Any) -> EventBodyError:
    error = exc.errors(include_url=False)[0]
    kind = error["type"]
    if kind == "union_tag_invalid":
        return EventBodyError(
            f"Unknown event type; expected one of: {', '.join(EVENT_TYPES)}.", code="unknown_event_type", field="type"
        )
    if kind == "union_tag_not_found":
        return EventBodyError("This field is required: the event type.", code="missing_field", field="type")
    code, message = _ERRORS.get(kind, (kind if kind.startswith("invalid_") else "invalid_value", None))
    return EventBodyError(message or error["msg"], code=code, field=_field(error["loc"], event_type))


def parse_event(raw: bytes) -> ParsedEvent:
    """Decode, parse and validate one event. Raises ``EventBodyError`` (→ 400)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise EventBodyError("The body must be UTF-8 encoded JSON.", code="invalid_json") from None
    try:
        document = json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constants)
    except json.JSONDecodeError as exc:
        raise EventBodyError(
            f"The body is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno}).", code="invalid_json"
        ) from None
    except (ValueError, RecursionError):
        # Numbers beyond Python's int-conversion limit, absurd nesting.
        raise EventBodyError("The body is not valid JSON for this API.", code="invalid_json") from None
    if not isinstance(document, dict):
        raise EventBodyError("The body must be a JSON object.", code="invalid_type")
    try:
        event = EVENT_ADAPTER.validate_python(document)
    except ValidationError as exc:
        raise _body_error(exc, document.get("type")) from None
    return ParsedEvent(event=event, text=text, body_sha256=canonical_sha256(document))
