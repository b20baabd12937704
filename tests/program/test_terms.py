"""Issue 22 item 2: versioned program terms, accepted at sign-up and again when they change."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from partners.models import Partner, TermsAcceptance
from partners.services import partner_signup, terms_accept, terms_publish
from partners.terms import render_terms
from payouts.rules import withdrawal_status
from payouts.services import PayoutError, payout_request
from tests.factories import CommissionEntryFactory, PartnerFactory

pytestmark = pytest.mark.django_db


def test_versions_are_numbered_one_after_the_other():
    assert [terms_publish(text=f"Terms {n}").version for n in range(3)] == [1, 2, 3]


def test_the_terms_page_is_public_and_renders_markdown(client):
    terms_publish(text="# Our terms\n\nBe **honest**.")
    response = client.get(reverse("terms"))
    assert response.status_code == 200
    assert b"<strong>honest</strong>" in response.content
    assert b"Version 1" in response.content


def test_raw_html_and_script_links_in_the_terms_are_stripped():
    html = render_terms("<script>alert(1)</script>\n\n[x](javascript:alert(1)) <img src=x onerror=alert(1)>")
    assert "<script" not in html
    assert "javascript:" not in html
    assert "onerror" not in html


def test_sign_up_records_the_acceptance_of_the_current_version():
    terms = terms_publish(text="v1")
    partner = partner_signup(email="new@example.com", password="pw-long-enough-1", name="New")
    acceptance = TermsAcceptance.objects.get(partner=partner)
    assert acceptance.terms == terms
    assert partner.accepted_terms_version == 1


def test_new_terms_send_the_partner_to_accept_them_at_the_next_visit(partner_client):
    terms_publish(text="v1")
    response = partner_client.get("/referrals/")
    assert response.status_code == 302
    assert response["Location"] == "/terms/?next=%2Freferrals%2F"
    page = partner_client.get(response["Location"])
    assert b"I accept version 1" in page.content


def test_accepting_records_version_and_time_and_returns_to_the_page(partner_client):
    terms_publish(text="v1")
    response = partner_client.post(reverse("terms"), {"version": "1", "next": "/referrals/"})
    assert response["Location"] == "/referrals/"
    acceptance = TermsAcceptance.objects.get(partner=partner_client.partner)
    assert acceptance.terms.version == 1
    assert acceptance.accepted_at is not None
    assert partner_client.get("/referrals/").status_code == 200


def test_accepting_twice_keeps_the_first_acceptance():
    terms = terms_publish(text="v1")
    partner = PartnerFactory()
    first = terms_accept(partner=partner, terms=terms)
    again = terms_accept(partner=partner, terms=terms)
    assert first.pk == again.pk
    assert TermsAcceptance.objects.filter(partner=partner).count() == 1


def test_an_acceptance_of_an_outdated_version_is_refused(partner_client):
    terms_publish(text="v1")
    terms_publish(text="v2")
    response = partner_client.post(reverse("terms"), {"version": "1"})
    assert response["Location"] == reverse("terms")
    assert not TermsAcceptance.objects.filter(partner=partner_client.partner).exists()


def test_an_offsite_next_is_ignored(partner_client):
    terms_publish(text="v1")
    response = partner_client.post(reverse("terms"), {"version": "1", "next": "https://evil.example/"})
    assert response["Location"] == reverse("partners:dashboard")


def test_a_partner_cannot_withdraw_before_accepting_the_new_terms():
    partner = PartnerFactory()
    CommissionEntryFactory(payment__referral__click__link__partner=partner, amount=Decimal("80.00"))
    terms = terms_publish(text="v1")
    assert withdrawal_status(partner=partner).reason_code == "terms_not_accepted"
    with pytest.raises(PayoutError, match="Accept version 1"):
        payout_request(partner=partner)
    terms_accept(partner=partner, terms=terms)
    assert payout_request(partner=Partner.objects.get(pk=partner.pk)).amount == Decimal("80.00")


def test_staff_publish_a_new_version_in_the_admin_and_old_ones_stay_unchanged(admin_client):
    first = terms_publish(text="Old text")
    response = admin_client.post(
        reverse("admin:partners_programterms_add"), {"text": "New **text**", "summary_of_changes": "Clearer"}
    )
    assert response.status_code == 302
    first.refresh_from_db()
    assert first.text == "Old text"
    change = admin_client.get(reverse("admin:partners_programterms_change", args=[first.pk]))
    assert change.status_code == 200
    from partners.models import ProgramTerms

    assert list(ProgramTerms.objects.values_list("version", "text")) == [(2, "New **text**"), (1, "Old text")]
