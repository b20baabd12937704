from django.urls import path

from config.placeholder import empty_page
from tracking import performance

app_name = "tracking"

urlpatterns = [
    path("resources/", empty_page("Resources"), name="resources"),
    path("performance/", performance.performance_view, name="performance"),
    path("performance/export.csv", performance.performance_export_view, name="performance_export"),
]
