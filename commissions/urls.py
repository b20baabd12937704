from django.urls import path

from config.placeholder import empty_page

app_name = "commissions"

urlpatterns = [
    path("referrals/", empty_page("Referrals"), name="referral_list"),
    path("referrals/<int:pk>/", empty_page("Referral"), name="referral_detail"),
    path("commissions/", empty_page("Commissions"), name="commission_list"),
]
