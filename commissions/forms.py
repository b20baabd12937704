"""Filter forms of the referrals and commissions pages (GET parameters, never saved)."""

from __future__ import annotations

from django import forms
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from commissions.selectors import DEFAULT_REFERRAL_SORT, REFERRAL_SORTS, STATUS_LABELS, link_name
from config import rows as table_rows
from partners.models import Partner
from tracking.models import Link
from tracking.reports import DateRangeError, check_day

_OPTION = '<option value="{value}"{selected}>{label}</option>'


class _LinkChoice(forms.ModelChoiceField):
    def label_from_instance(self, obj: Link) -> str:
        return link_name(obj.code, obj.description, obj.is_default)


class ReferralFilterForm(forms.Form):
    status = forms.ChoiceField(
        choices=[("", "All statuses"), *((value, label) for value, label in STATUS_LABELS.items())], required=False
    )
    link = _LinkChoice(queryset=Link.objects.none(), required=False, empty_label="All links")
    sort = forms.ChoiceField(choices=[(key, key) for key in REFERRAL_SORTS], required=False)

    def __init__(self, *args, partner: Partner, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["link"].queryset = Link.objects.filter(partner=partner).order_by(
            "-is_default", "description", "code"
        )

    def link_select(self) -> str:
        """The link filter's ``<select>`` (the markup Django's widget writes), built in one pass
        from the links' four columns: the widget renders a template per option and the field
        builds a model per link, ~10 ms per request for a partner with 100 links."""
        field = self["link"]
        current = str(field.value() or "")
        choice = self.fields["link"]
        options = [("", choice.empty_label)]
        options += [
            (str(pk), link_name(code, description, is_default))
            for pk, code, description, is_default in choice.queryset.values_list(
                "pk", "code", "description", "is_default"
            )
        ]
        selected = mark_safe(" selected")
        return format_html(
            '<select name="{}" id="{}">{}</select>',
            field.html_name,
            field.auto_id,
            mark_safe(
                "".join(
                    table_rows.row(_OPTION, value=value, selected=selected if value == current else "", label=label)
                    for value, label in options
                )
            ),
        )

    def filters(self) -> dict:
        """The valid filters; an invalid parameter is ignored rather than shown as an error."""
        self.is_valid()
        data = getattr(self, "cleaned_data", {})
        link = data.get("link")
        return {
            "status": data.get("status") or None,
            "link_id": link.pk if link else None,
            "sort": data.get("sort") or DEFAULT_REFERRAL_SORT,
        }


class DateRangeForm(forms.Form):
    """The date filter of the panel's pages and CSVs (payouts' form extends it): each day within
    ``tracking.reports.check_day``'s bounds, the API's rule, so a far date is a form error."""

    start = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}), label="From")
    end = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}), label="To")

    def clean(self) -> dict:
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        # Non-field errors: every page's template shows those above its filter.
        for field, day in (("start", start), ("end", end)):
            if day is not None:
                try:
                    check_day(day, field)
                except DateRangeError as exc:
                    raise forms.ValidationError(exc.message, code=exc.code) from None
        if start and end and end < start:
            raise forms.ValidationError("The end date is before the start date.")
        return data

    def range(self) -> tuple:
        if not self.is_valid():
            return None, None
        return self.cleaned_data.get("start"), self.cleaned_data.get("end")
