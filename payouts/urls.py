from django.urls import path

from config.placeholder import empty_page

app_name = "payouts"

urlpatterns = [
    path("payouts/", empty_page("Payouts"), name="payout_list"),
]
