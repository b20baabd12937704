from django.urls import path

from config.placeholder import empty_page

app_name = "tracking"

urlpatterns = [
    path("resources/", empty_page("Resources"), name="resources"),
    path("performance/", empty_page("Performance"), name="performance"),
]
