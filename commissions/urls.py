from django.urls import path

from commissions import views

app_name = "commissions"

urlpatterns = [
    path("referrals/", views.referral_list_view, name="referral_list"),
    path("referrals/export.csv", views.referral_export_view, name="referral_export"),
    path("referrals/<int:pk>/", views.referral_detail_view, name="referral_detail"),
    path("commissions/", views.commission_list_view, name="commission_list"),
    path("commissions/export.csv", views.commission_export_view, name="commission_export"),
]
