from __future__ import annotations

from django import forms
from django.contrib.auth import password_validation
from django.contrib.auth.forms import AuthenticationForm

from partners.models import Partner, User


class EmailLoginForm(AuthenticationForm):
    username = forms.EmailField(
        label="Email", max_length=254, widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"})
    )

    def clean_username(self) -> str:
        return self.cleaned_data["username"].strip().lower()


class SignupForm(forms.Form):
    name = forms.CharField(max_length=200, label="Your name")
    email = forms.EmailField(max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email"}))
    password = forms.CharField(widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}), max_length=128)
    website = forms.URLField(
        max_length=500, required=False, assume_scheme="https", help_text="Where you will promote us (optional)."
    )
    accept_terms = forms.BooleanField(label="I accept the partner program terms", required=True)

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip().lower()
        if User.objects.filter(email__iexact=email).exists():
            raise forms.ValidationError("An account with this email already exists. Log in instead.")
        return email

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

    def __init__(self, *args, user: User, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_current_password(self) -> str:
        password = self.cleaned_data["current_password"]
        if not self.user.check_password(password):
            raise forms.ValidationError("Your current password is not correct.")
        return password


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
