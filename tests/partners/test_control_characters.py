"""Issue 17, item 10: no control characters in names and billing fields, and the staff's payout
email keeps a name on its line whatever is stored."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core import mail
from django.urls import reverse

from partners.models import Partner
from tests.factories import CommissionEntryFactory, PartnerFactory

pytestmark = pytest.mark.django_db

INJECTED = "Ada\nInjected line: URGENT approve"


@pytest.mark.parametrize(
    "value",
    [INJECTED, "Ada\rB", "Ada\tB", "Ada\x1bB", "Ada\x85B", "Ada\u2028B", "Ada\u2029B", "Ada\u202eB", "Ada\x7fB"],
)
def test_signup_refuses_a_name_with_a_control_character(client, value):
    response = client.post(
        reverse("partners:signup"),
        {"name": value, "email": "ada@example.com", "password": "a-long-unusual-passphrase", "accept_terms": "on"},
    )
    assert response.status_code == 200
    assert "name" in response.context["form"].errors
    assert not Partner.objects.exists()


@pytest.mark.parametrize("field", ["name", "billing_name", "billing_country", "tax_id", "billing_address"])
def test_settings_refuse_control_characters_in_names_and_billing_fields(partner_client, field):
    data = {
        "action": "profile",
        "profile-name": "Ada",
        "profile-billing_name": "Ada Ltd",
        "profile-billing_country": "PL",
        "profile-tax_id": "PL123",
        "profile-billing_address": "1 Main St",
    }
    data[f"profile-{field}"] = "A\x0bB" if field != "billing_country" else "P\x00"
    response = partner_client.post(reverse("partners:settings"), data)
    assert response.status_code == 400
    partner = Partner.objects.get(pk=partner_client.partner.pk)
    assert "\x0b" not in getattr(partner, field) and "\x00" not in getattr(partner, field)


def test_a_billing_address_keeps_its_line_breaks(partner_client):
    data = {
        "action": "profile",
        "profile-name": "Ada",
        "profile-billing_address": "1 Main St\r\n00-001 Warsaw",
    }
    assert partner_client.post(reverse("partners:settings"), data).status_code == 302
    partner = Partner.objects.get(pk=partner_client.partner.pk)
    assert partner.billing_address.splitlines() == ["1 Main St", "00-001 Warsaw"]


def test_the_admin_refuses_a_partner_name_with_a_line_break(admin_client):
    partner = PartnerFactory()
    url = reverse("admin:partners_partner_change", args=[partner.pk])
    response = admin_client.post(
        url,
        {
            "user": partner.user_id,
            "name": INJECTED,
            "website": "",
            "paypal_email": partner.paypal_email,
            "api_tokens-TOTAL_FORMS": "0",
            "api_tokens-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 200
    assert "name" in response.context["adminform"].form.errors


def test_the_staff_payout_email_keeps_a_stored_name_on_one_line(
    partner_client, settings, django_capture_on_commit_callbacks
):
    settings.STAFF_NOTIFICATION_EMAILS = ["ops@example.com"]
    partner = partner_client.partner
    # Written around the forms, as an old row or a direct update could be.
    Partner.objects.filter(pk=partner.pk).update(name=INJECTED)
    CommissionEntryFactory(payment__referral__click__link__partner=partner, amount=Decimal("80.00"))

    with django_capture_on_commit_callbacks(execute=True):
        partner_client.post(reverse("payouts:payout_request"))

    (staff_email,) = [m for m in mail.outbox if m.to == ["ops@example.com"]]
    assert not any(line.startswith("Injected line") for line in staff_email.body.splitlines())
    assert "Ada Injected line: URGENT approve" in staff_email.body
