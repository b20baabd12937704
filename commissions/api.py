"""Merchant events API (docs/reference.md "Merchant events API").

``POST /api/v1/events``: signature first (401), then the body (400 in the contract's shape,
never django-ninja's 422 — the view validates the raw body itself so that the signature is
checked on the exact bytes and every refusal names its ``field``), then idempotency (200 for
a replay, 409 for a reused id) and the event itself (201, or 200 when it changed nothing).
The request schemas are published in the OpenAPI document all the same, one per event type.
"""

from __future__ import annotations

import copy
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from ninja import Router

from commissions.events import EventBodyError, parse_event
from commissions.schemas import EVENT_ADAPTER, EventErrorOut, EventResult
from commissions.services import EventConflict, EventRejected, event_receive
from commissions.signing import HEADER, SignatureError, verify_signature
from config.dbretry import on_live_connection
from config.errors import PortalError

router = Router(tags=["events"])
_HEADER_META = "HTTP_" + HEADER.upper().replace("-", "_")


def _inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """The request body schema with its ``$defs`` inlined: the operation's schema must be
    self-contained (django-ninja only registers components for the models it validates)."""
    definitions = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                merged = {
                    **copy.deepcopy(definitions[ref.removeprefix("#/$defs/")]),
                    **{k: v for k, v in node.items() if k != "$ref"},
                }
                return resolve(merged)
            return {key: resolve(value) for key, value in node.items() if key != "discriminator"}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    return resolve(schema)


_EXAMPLES = {
    "customer.signed_up": {
        "id": "evt_1001",
        "type": "customer.signed_up",
        "created": "2025-01-31T12:00:00Z",
        "data": {
            "customer_id": "cus_42",
            "click_id": "3f2b8c1e-7d4a-4e0b-9a57-2c1d5e6f7a8b",
            "email": "jane@example.com",
        },
    },
    "payment.succeeded": {
        "id": "evt_1002",
        "type": "payment.succeeded",
        "created": "2025-02-14T09:30:00Z",
        "data": {
            "payment_id": "pay_7",
            "customer_id": "cus_42",
            "amount": "49.00",
            "currency": "USD",
            "plan": "B",
            "seats": 3,
        },
    },
    "payment.refunded": {
        "id": "evt_1003",
        "type": "payment.refunded",
        "created": "2025-02-20T10:00:00Z",
        "data": {"payment_id": "pay_7", "amount": "10.00"},
    },
    "subscription.cancelled": {
        "id": "evt_1004",
        "type": "subscription.cancelled",
        "created": "2025-03-01T08:00:00Z",
        "data": {"customer_id": "cus_42"},
    },
}

_OPENAPI_EXTRA = {
    "parameters": [
        {
            "in": "header",
            "name": HEADER,
            "required": True,
            "schema": {"type": "string", "pattern": r"^t=\d+,v1=[0-9a-f]{64}$"},
            "description": 't=<unix seconds>,v1=<hex HMAC-SHA256(signing secret, "<t>.<raw body>")>; '
            "t must be within 300 seconds of the server's clock.",
        }
    ],
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": _inline_refs(EVENT_ADAPTER.json_schema(mode="validation")),
                "examples": {name: {"summary": name, "value": value} for name, value in _EXAMPLES.items()},
            }
        },
    },
}


def _error(status: int, exc: PortalError) -> JsonResponse:
    response = JsonResponse({"error": {"code": exc.code, "message": exc.message, "field": exc.field}}, status=status)
    response["Cache-Control"] = "no-store"
    return response


@router.post(
    "/events",
    auth=None,
    url_name="events",
    operation_id="events_receive",
    summary="Send one merchant event",
    description=(
        "One event per request, signed with the `X-Partner-Signature` header. "
        "`201`: applied for the first time. `200`: a replay of the same `id` and body (the first answer again), "
        "or an event that changed nothing (a known `payment_id`, an already referred `customer_id`, an already "
        "cancelled subscription). `null` objects mean the customer (or payment) is not a referral's: the event is "
        "still logged. `400`: malformed, nothing written. `401`: signature missing, wrong or older than 300 s. "
        "`409`: this `id` was used for a different body. See docs/integration.md."
    ),
    response={
        201: EventResult,
        200: EventResult,
        400: EventErrorOut,
        401: EventErrorOut,
        409: EventErrorOut,
        413: EventErrorOut,
    },
    openapi_extra=_OPENAPI_EXTRA,
)
def events_receive(request: HttpRequest) -> JsonResponse:
    body = request.body
    try:
        verify_signature(
            # META, not request.headers: that builds a dict of every header on first use.
            header=request.META.get(_HEADER_META),
            body=body,
            secret=settings.EVENTS_SIGNING_SECRET,
            tolerance=settings.EVENTS_SIGNATURE_TOLERANCE_SECONDS,
        )
    except SignatureError as exc:
        return _error(401, exc)
    try:
        parsed = parse_event(body)
        result = on_live_connection(lambda: event_receive(parsed=parsed))
    except (EventBodyError, EventRejected) as exc:
        return _error(400, exc)
    except EventConflict as exc:
        return _error(409, exc)
    response = JsonResponse(result.body, status=result.status)
    response["Cache-Control"] = "no-store"
    return response


@csrf_exempt  # signed, no session: as django-ninja's operations are
def events_view(request: HttpRequest) -> HttpResponse:
    """``POST /api/v1/events`` as the URLconf routes it (config/urls.py): the operation above
    called directly, without django-ninja's dispatch around it (its checks, parameter parsing
    and response conversion do nothing for this operation, which reads the raw body and returns
    its own responses, and were ~9 % of an event's Python time: BENCHMARKS.md, "Events API"). The
    operation stays registered with the router, which publishes it in the OpenAPI document.
    Another method is refused as django-ninja refuses it."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"], content=b"Method not allowed")
    return events_receive(request)
