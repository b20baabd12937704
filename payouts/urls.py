from django.urls import path

from payouts import views

app_name = "payouts"

urlpatterns = [
    path("payouts/", views.payout_list_view, name="payout_list"),
    path("payouts/request/", views.payout_request_view, name="payout_request"),
    path("payouts/export.csv", views.payout_export_view, name="payout_export"),
    path("payouts/<int:payout_id>/statement/", views.payout_statement_view, name="payout_statement"),
    path("payouts/<int:payout_id>/statement.csv", views.payout_statement_export_view, name="payout_statement_export"),
]
