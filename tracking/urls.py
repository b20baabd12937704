from django.urls import path

from tracking import dimension_views, performance, promo_views, views

app_name = "tracking"

urlpatterns = [
    path("resources/", views.resources_view, name="resources"),
    path("resources/links/<int:link_id>/", views.link_detail_view, name="link_detail"),
    path("resources/links/<int:link_id>/qr.<str:kind>", views.link_qr_view, name="link_qr"),
    path("resources/links/<int:link_id>/toggle/", views.link_toggle_view, name="link_toggle"),
    path("resources/links/<int:link_id>/delete/", views.link_delete_view, name="link_delete"),
    path("resources/creatives/<int:creative_id>/download/", views.creative_download_view, name="creative_download"),
    path("creatives/<int:creative_id>/image", views.creative_image_view, name="creative_image"),
    path("resources/promo-codes/request/", promo_views.promo_code_request_view, name="promo_code_request"),
    path("performance/", performance.performance_view, name="performance"),
    path("performance/promo-codes/", promo_views.promo_code_performance_view, name="promo_code_performance"),
    path(
        "performance/promo-codes/export.csv",
        promo_views.promo_code_performance_export_view,
        name="promo_code_performance_export",
    ),
    path("performance/sources/", dimension_views.sources_view, name="sources"),
    path("performance/links/<int:link_id>/", dimension_views.link_sub_ids_view, name="link_sub_ids"),
    path(
        "performance/links/<int:link_id>/export.csv",
        dimension_views.link_sub_ids_export_view,
        name="link_sub_ids_export",
    ),
    path("performance/export.csv", performance.performance_export_view, name="performance_export"),
]
