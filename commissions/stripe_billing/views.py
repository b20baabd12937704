"""``POST /api/v1/integrations/stripe``: the endpoint a merchant registers in Stripe.

Verified with the official library (``stripe.Webhook.construct_event``, STRIPE_WEBHOOK_SECRET,
300 s tolerance) on the raw body: a missing or bad signature answers 400 and writes nothing.
Every verified event answers 200 (types the program does not use included) once it is stored;
what it did is in the answer's ``status`` and in the admin's Stripe event log."""

from __future__ import annotations

import json

import stripe
from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from commissions.stripe_billing.health import verification_failure_record
from commissions.stripe_billing.services import StripePayloadError, stripe_event_receive


def _answer(status: int, body: dict) -> JsonResponse:
    response = JsonResponse(body, status=status)
    response["Cache-Control"] = "no-store"
    return response


def _refuse(code: str, message: str) -> JsonResponse:
    verification_failure_record(reason=f"{code}: {message}")
    return _answer(400, {"error": {"code": code, "message": message, "field": None}})


@csrf_exempt  # signed by Stripe, no session
def stripe_webhook_view(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"], content=b"Method not allowed")
    secret = settings.STRIPE_WEBHOOK_SECRET
    if not secret:
        return _refuse("not_configured", "STRIPE_WEBHOOK_SECRET is not set: no Stripe event can be verified.")
    header = request.META.get("HTTP_STRIPE_SIGNATURE")
    if not header:
        return _refuse("missing_signature", "The Stripe-Signature header is missing.")
    body = request.body
    try:
        stripe.Webhook.construct_event(body, header, secret, tolerance=settings.STRIPE_WEBHOOK_TOLERANCE_SECONDS)
        payload = json.loads(body)
    except stripe.SignatureVerificationError as exc:
        return _refuse("invalid_signature", str(exc.user_message or exc))
    except (ValueError, UnicodeDecodeError):  # signed, but not JSON
        return _answer(400, {"error": {"code": "invalid_json", "message": "The body is not JSON.", "field": None}})
    if not isinstance(payload, dict):
        return _answer(400, {"error": {"code": "invalid_body", "message": "Not a Stripe event.", "field": None}})
    try:
        row = stripe_event_receive(payload=payload)
    except StripePayloadError as exc:
        return _answer(400, {"error": {"code": "invalid_body", "message": str(exc), "field": None}})
    body = {"received": True, "id": row.stripe_id, "status": row.status, "note": row.note}
    body["applied_as"] = row.merchant_event_ids  # ids in the merchant event log
    return _answer(200, body)
