from __future__ import annotations

from django import forms
from django.contrib.auth import authenticate, password_validation
from django.contrib.auth.forms import AuthenticationForm, PasswordChangeForm, PasswordResetForm
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from partners.emails import normalize_email
from partners.models import Partner, User
from partners.validators import no_control_characters

WRONG_PASSWORD = "Your current password is not correct."


def current_password_ok(*, request: HttpRequest, user: User, password: str) -> bool:
    """The settings page's current-password check, through the login's lockout (django-axes):
    a wrong password counts as a failed login of this email from this address, and while the
    lockout lasts even the right one is refused (AxesMiddleware answers 429). Without this the
    page was an unthrottled password oracle for whoever held a session."""
    authenticated = authenticate(request, username=user.email, password=password)
    return authenticated is not None and authenticated.pk == user.pk


class EmailLoginForm(AuthenticationForm):
    username = forms.EmailField(
        label="Email", max_length=254, widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"})
    )

    def clean_username(self) -> str:
        return normalize_email(self.cleaned_data["username"])


class AccountPasswordResetForm(PasswordResetForm):
    """Django's reset form with the login's lookup: the stored, normalised email matched exactly."""

    def get_users(self, email: str):
        users = User.objects.filter(email=normalize_email(email), is_active=True)
        return (user for user in users if user.has_usable_password())


class SignupForm(forms.Form):
    name = forms.CharField(max_length=200, label="Your name", validators=[no_control_characters])
    email = forms.EmailField(max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email"}))
    password = forms.CharField(widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}), max_length=128)
    website = forms.URLField(
        max_length=500, required=False, assume_scheme="https", help_text="Where you will promote us (optional)."
    )
    accept_terms = forms.BooleanField(label="I accept the partner program terms", required=True)

    # No "this email already has an account" here: the answer reads the same either way and the
    # owner of a taken address gets an email instead (partners.services.partner_signup_submit).

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # The terms open in a new tab: the form keeps what was typed.
        self.fields["accept_terms"].label = format_html(
            'I accept the <a href="{}" target="_blank" rel="noopener">partner program terms</a>', reverse("terms")
        )

    def clean_email(self) -> str:
        return normalize_email(self.cleaned_data["email"])

    def clean(self) -> dict:
        cleaned = super().clean()
        password = cleaned.get("password")
        if password:
            probe = User(email=cleaned.get("email", ""), first_name=cleaned.get("name", ""))
            try:
                password_validation.validate_password(password, probe)
            except forms.ValidationError as exc:
                self.add_error("password", exc)
        return cleaned


class ProfileForm(forms.ModelForm):
    website = forms.URLField(max_length=500, required=False, assume_scheme="https")

    class Meta:
        model = Partner
        fields = ["name", "website", "billing_name", "billing_address", "billing_country", "tax_id"]
        labels = {"billing_name": "Billing name", "billing_country": "Country (2-letter code)", "tax_id": "Tax ID"}
        widgets = {"billing_address": forms.Textarea(attrs={"rows": 3})}

    def clean_billing_country(self) -> str:
        value = self.cleaned_data["billing_country"].strip().upper()
        if value and (len(value) != 2 or not value.isalpha() or not value.isascii()):
            raise forms.ValidationError("Use the two-letter country code, e.g. US, PL or DE.")
        return value


class PaypalEmailForm(forms.Form):
    paypal_email = forms.EmailField(max_length=254, label="PayPal email")
    current_password = forms.CharField(
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}), max_length=128
    )

    def __init__(self, *args, request: HttpRequest, user: User, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.request = request
        self.user = user

    def clean_current_password(self) -> str:
        password = self.cleaned_data["current_password"]
        if not current_password_ok(request=self.request, user=self.user, password=password):
            raise forms.ValidationError(WRONG_PASSWORD)
        return password


class LockoutPasswordChangeForm(PasswordChangeForm):
    """Django's password change with the current password checked through the lockout."""

    def __init__(self, user: User, *args, request: HttpRequest, **kwargs) -> None:
        super().__init__(user, *args, **kwargs)
        self.request = request

    def clean_old_password(self) -> str:
        old_password = self.cleaned_data["old_password"]
        if not current_password_ok(request=self.request, user=self.user, password=old_password):
            raise forms.ValidationError(WRONG_PASSWORD, code="password_incorrect")
        return old_password


class ApiTokenForm(forms.Form):
    name = forms.CharField(max_length=100, label="Token name", help_text="e.g. “reporting script”.")


class NotificationsForm(forms.ModelForm):
    """The emails a partner chooses (issue 22); each email carries an unsubscribe link too."""

    class Meta:
        model = Partner
        fields = ["notify_new_referral", "notify_new_commission", "notify_payout_sent", "notify_monthly_statement"]
        labels = {
            "notify_new_referral": "Email me when a new referral signs up",
            "notify_new_commission": "Email me when I earn a new commission",
            "notify_payout_sent": "Email me when a payout is sent",
            "notify_monthly_statement": "Email me a monthly statement",
        }
