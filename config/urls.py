from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from commissions.api import events_view
from commissions.stripe_billing.views import stripe_webhook_view
from config.api import api
from config.health import healthz
from config.metrics import metrics_view
from partners.otp import otp_setup_view, otp_verify_view
from partners.views import terms_view
from tracking.redirect import click_redirect_view

admin.site.site_header = "Partner Panel administration"
admin.site.site_title = "Partner Panel admin"

urlpatterns = [
    # The affiliate link first: it is the most requested URL by far, and Django tries the
    # patterns in order (nested includes cost a resolver level each).
    path("r/<str:code>", click_redirect_view, name="click_redirect"),
    path("", RedirectView.as_view(pattern_name="partners:dashboard", permanent=False)),
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics_view, name="metrics"),
    path("favicon.ico", RedirectView.as_view(url=settings.STATIC_URL + "img/favicon.svg", permanent=True)),
    # Public; the sign-up form links here by name.
    path("terms/", terms_view, name="terms"),
    # Two-factor for staff who decide payouts (payouts/approval.py).
    path("admin/2fa/setup/", otp_setup_view, name="otp_setup"),
    path("admin/2fa/verify/", otp_verify_view, name="otp_verify"),
    path("admin/", admin.site.urls),
    # Before the API's own patterns, which answer the same URL (and publish its schema).
    path("api/v1/events", events_view),
    path("api/v1/integrations/stripe", stripe_webhook_view, name="stripe_webhook"),
    path("api/v1/", api.urls),
    # The program terms the sign-up form links to (a URL named "terms").
    path("terms/", terms_view, name="terms"),
    path("", include("tracking.urls")),
    path("", include("partners.urls")),
    path("", include("commissions.urls")),
    path("", include("payouts.urls")),
]

if settings.DEBUG:
    from django.conf.urls.static import static

    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
