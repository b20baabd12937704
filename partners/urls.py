from django.contrib.auth import views as auth_views
from django.urls import path, reverse_lazy

from partners import dashboard, views

app_name = "partners"

urlpatterns = [
    path("accounts/signup/", views.signup_view, name="signup"),
    path("accounts/signup/done/", views.signup_done_view, name="signup_done"),
    path("accounts/confirm/<uidb64>/<token>/", views.email_confirm_view, name="email_confirm"),
    path("accounts/confirm/again/", views.email_confirm_resend_view, name="email_confirm_resend"),
    path("accounts/login/", views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/password_reset/", views.ThrottledPasswordResetView.as_view(), name="password_reset"),
    path(
        "accounts/password_reset/done/",
        auth_views.PasswordResetDoneView.as_view(template_name="registration/password_reset_done.html"),
        name="password_reset_done",
    ),
    path(
        "accounts/reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(
            template_name="registration/password_reset_confirm.html",
            success_url=reverse_lazy("partners:password_reset_complete"),
        ),
        name="password_reset_confirm",
    ),
    path(
        "accounts/reset/done/",
        auth_views.PasswordResetCompleteView.as_view(template_name="registration/password_reset_complete.html"),
        name="password_reset_complete",
    ),
    path("dashboard/", dashboard.dashboard_view, name="dashboard"),
    path("application/", views.application_view, name="application"),
    path("settings/", views.settings_view, name="settings"),
    path("notifications/unsubscribe/<str:token>/", views.unsubscribe_view, name="unsubscribe"),
]
