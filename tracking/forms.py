from __future__ import annotations

from django import forms
from django.conf import settings

from tracking.models import Creative, Link
from tracking.selectors import creative_list
from tracking.services import CODE_RE, LinkError, clean_destination


class CreativeChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Creative) -> str:
        return f"{obj.get_kind_display()}: {obj.title}"


class LinkBuilderForm(forms.Form):
    creative = CreativeChoiceField(
        queryset=Creative.objects.none(),
        required=False,
        empty_label="Plain text link (no creative)",
        help_text="The banner, logo, screenshot or ready text this link is for.",
    )
    destination = forms.CharField(
        required=False,
        max_length=2000,
        label="Destination URL",
        widget=forms.URLInput(attrs={"placeholder": "https://crazycall.com/pricing", "inputmode": "url"}),
        help_text="Any page on our website. Leave empty for the homepage.",
    )
    trial_days = forms.TypedChoiceField(
        label="Trial length",
        coerce=int,
        initial=14,
        widget=forms.RadioSelect,
    )
    description = forms.CharField(
        required=False,
        max_length=Link._meta.get_field("description").max_length,
        help_text="A campaign name or where you promote this link, e.g. “blog sidebar”. Only you see it.",
    )
    code = forms.CharField(
        required=False,
        max_length=40,
        label="Custom code (optional)",
        help_text="3–40 letters, digits, - or _. Leave empty for a generated one.",
    )
    pass_sub_ids = forms.BooleanField(
        required=False,
        label="Pass sub-IDs on to the landing page",
        help_text="sub1, sub2 and sub3 in your link are always recorded for your reports; tick this to "
        "also send them on to the page visitors land on.",
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["creative"].queryset = creative_list()
        self.fields["trial_days"].choices = [
            (days, f"{days} days" + (" (standard)" if days == 14 else " (extended)")) for days in settings.TRIAL_LENGTHS
        ]
        self.fields["destination"].widget.attrs["placeholder"] = settings.DEFAULT_LANDING_URL.rstrip("/") + "/pricing"

    def clean_destination(self) -> str:
        try:
            return clean_destination(self.cleaned_data["destination"])
        except LinkError as exc:
            raise forms.ValidationError(exc.message) from None

    def clean_code(self) -> str:
        code = self.cleaned_data["code"].strip()
        if code and not CODE_RE.match(code):
            raise forms.ValidationError("Use 3–40 letters, digits, hyphens or underscores.")
        return code


class PromoCodeRequestForm(forms.Form):
    code = forms.CharField(
        max_length=40,
        label="Code",
        help_text="What your audience types at checkout, e.g. PODCAST30: 3–40 letters, digits, - or _.",
    )
    trial_days = forms.TypedChoiceField(label="Trial length", coerce=int, initial=14, widget=forms.RadioSelect)
    description = forms.CharField(
        required=False,
        max_length=200,
        help_text="Where you will use it, e.g. “podcast episode 12”. Only you and our team see it.",
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["trial_days"].choices = [
            (days, f"{days} days" + (" (standard)" if days == 14 else " (extended)")) for days in settings.TRIAL_LENGTHS
        ]
