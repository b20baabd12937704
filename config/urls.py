from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from config.api import api
from config.health import healthz

admin.site.site_header = "Partner Panel administration"
admin.site.site_title = "Partner Panel admin"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="partners:dashboard", permanent=False)),
    path("healthz", healthz, name="healthz"),
    path("favicon.ico", RedirectView.as_view(url=settings.STATIC_URL + "img/favicon.svg", permanent=True)),
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    path("", include("tracking.urls")),
    path("", include("partners.urls")),
    path("", include("commissions.urls")),
    path("", include("payouts.urls")),
]

if settings.DEBUG:
    from django.conf.urls.static import static

    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
