"""One django-ninja API under /api/v1/: the merchant events endpoint and the partner JSON API.
Its OpenAPI document is served at /api/v1/openapi.json."""

from ninja import NinjaAPI
from ninja.errors import AuthenticationError

from commissions.api import router as events_router
from commissions.stripe_billing.api import router as stripe_router
from partners.api import router as partner_router
from partners.api import unauthorized_error

api = NinjaAPI(
    title="Partner Panel API",
    version="1",
    description=(
        "Merchant events (`POST /api/v1/events`, HMAC-signed), the Stripe Billing webhook "
        "(`POST /api/v1/integrations/stripe`, signed by Stripe) and the partner JSON API "
        "(session or `Authorization: Bearer <token>`). See docs/integration.md and docs/stripe.md."
    ),
    urls_namespace="api",
    openapi_url="/openapi.json",
    docs_url="/docs",
)
api.add_router("/", events_router)
api.add_router("/partner/", partner_router)
api.add_router("/", stripe_router)  # POST /api/v1/integrations/stripe (routed to its view in config/urls.py)
# Partner API 401s in the contract error shape.
api.add_exception_handler(AuthenticationError, unauthorized_error)
