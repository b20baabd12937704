"""The Stripe webhook in the API's OpenAPI document (``/api/v1/openapi.json``).

The URLconf routes ``POST /api/v1/integrations/stripe`` to ``views.stripe_webhook_view`` before
the API's own patterns (config/urls.py), so the signature is verified on the untouched raw body;
this operation, registered with the API's router, publishes it and answers the same way when it
is reached through django-ninja (it calls that view)."""

from __future__ import annotations

from typing import Literal

from django.http import HttpRequest, HttpResponse
from ninja import Field, Router, Schema

from commissions.schemas import EventErrorOut
from commissions.stripe_billing.models import StripeEvent
from commissions.stripe_billing.views import stripe_webhook_view

router = Router(tags=["Stripe Billing"])


class StripeWebhookOut(Schema):
    received: Literal[True]
    id: str = Field(description="The Stripe event id.")
    status: Literal[tuple(StripeEvent.Status.values)] = Field(  # type: ignore[valid-type]
        description="What the event did: applied, duplicate (a redelivery or an already known payment), "
        "held (waiting for a prerequisite; applied when it arrives), not_referred, ignored (a type the "
        "program does not use) or rejected (see the note)."
    )
    note: str
    applied_as: list[str] = Field(description="Ids of the merchant events it was applied as.")


_OPENAPI_EXTRA = {
    "parameters": [
        {
            "in": "header",
            "name": "Stripe-Signature",
            "required": True,
            "schema": {"type": "string"},
            "description": 'As Stripe signs: t=<unix seconds>,v1=<hex HMAC-SHA256(webhook secret, "<t>.<raw body>")>; '
            "t within 300 seconds of the server's clock.",
        }
    ],
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "description": "A Stripe event as Stripe sends it (https://docs.stripe.com/api/events/object).",
                    "required": ["id", "type", "created", "data"],
                    "properties": {
                        "id": {"type": "string"},
                        "type": {"type": "string"},
                        "created": {"type": "integer"},
                        "data": {
                            "type": "object",
                            "required": ["object"],
                            "properties": {"object": {"type": "object"}},
                        },
                    },
                }
            }
        },
    },
}


@router.post(
    "/integrations/stripe",
    auth=None,
    url_name="stripe_webhook_api",
    operation_id="stripe_webhook",
    summary="Receive one Stripe Billing webhook",
    description=(
        "The endpoint a merchant registers in Stripe, verified with `STRIPE_WEBHOOK_SECRET` (300 s tolerance). "
        "`200`: a verified event, stored in the Stripe event log (types the program does not use included; a "
        "redelivered event id changes nothing). `400`: signature missing, wrong or stale, or not a Stripe event: "
        "nothing written. See docs/stripe.md."
    ),
    response={200: StripeWebhookOut, 400: EventErrorOut},
    openapi_extra=_OPENAPI_EXTRA,
)
def stripe_webhook(request: HttpRequest) -> HttpResponse:
    return stripe_webhook_view(request)
