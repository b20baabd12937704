"""Issue 22 item 1: applications under PARTNER_APPROVAL=manual."""

from __future__ import annotations

import pytest
from django.core import mail
from django.urls import reverse

from partners.models import Partner
from partners.services import partner_signup, partners_approve, partners_decline
from tests.factories import PartnerFactory, StaffFactory
from tests.tracking.conftest import BROWSER_UA
from tracking.models import Click

pytestmark = pytest.mark.django_db


@pytest.fixture
def manual(settings):
    settings.PARTNER_APPROVAL = "manual"


def _signup(client):
    return client.post(
        reverse("partners:signup"),
        {
            "name": "Ada Applicant",
            "email": "ada@example.com",
            "password": "a-long-enough-pass-42",
            "website": "https://ada.example.com",
            "accept_terms": "on",
        },
    )


def test_under_auto_approval_a_new_partner_is_approved_at_once(settings):
    settings.PARTNER_APPROVAL = "auto"
    partner = partner_signup(email="auto@example.com", password="pw-long-enough-1", name="Auto")
    assert partner.status == Partner.Status.APPROVED


def test_under_manual_approval_a_new_partner_waits_and_is_emailed(manual, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        partner = partner_signup(email="wait@example.com", password="pw-long-enough-1", name="Wait")
    assert partner.status == Partner.Status.PENDING
    assert [m.subject for m in mail.outbox] == ["We received your partner application"]


def test_a_pending_partner_is_shown_the_application_under_review_page(
    manual, client, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = _signup(client)
    assert response.status_code == 302
    assert response["Location"] == reverse("partners:signup_done")
    assert Partner.objects.get(user__email="ada@example.com").status == Partner.Status.PENDING
    # The emailed confirmation link logs the applicant in; the panel then shows the review page.
    link = next(line for m in mailoutbox for line in m.body.splitlines() if "/accounts/confirm/" in line).strip()
    confirmed = client.get(link[link.index("/accounts/confirm/") :], follow=True)
    assert confirmed.redirect_chain[-1][0] == reverse("partners:application")
    page = client.get(reverse("partners:application"))
    assert page.status_code == 200
    assert b"under review" in page.content
    assert b"What happens next" in page.content


@pytest.mark.parametrize("url", ["/dashboard/", "/referrals/", "/commissions/", "/payouts/", "/settings/"])
def test_every_panel_page_sends_a_pending_partner_to_the_application_page(client, url):
    partner = PartnerFactory(status=Partner.Status.PENDING)
    client.force_login(partner.user)
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"] == reverse("partners:application")


def test_a_pending_partners_link_behaves_like_an_unknown_code(client):
    partner = PartnerFactory(status=Partner.Status.PENDING)
    response = client.get(f"/r/{partner.referral_code}", HTTP_USER_AGENT=BROWSER_UA)
    assert response.status_code == 302
    assert response["Location"] == "https://crazycall.com/"
    assert "aff_click" not in response.cookies
    assert Click.objects.count() == 0


def test_approval_makes_the_cached_link_count_at_once(client, django_capture_on_commit_callbacks):
    partner = PartnerFactory(status=Partner.Status.PENDING)
    client.get(f"/r/{partner.referral_code}", HTTP_USER_AGENT=BROWSER_UA)  # cached as not counting
    with django_capture_on_commit_callbacks(execute=True):
        partners_approve(partner_ids=[partner.pk], actor=StaffFactory())
    response = client.get(f"/r/{partner.referral_code}", HTTP_USER_AGENT=BROWSER_UA)
    assert "aff_click" in response.cookies
    assert Click.objects.filter(link__partner=partner).count() == 1


def test_decline_stops_the_cached_link_at_once(client, django_capture_on_commit_callbacks):
    partner = PartnerFactory()
    client.get(f"/r/{partner.referral_code}", HTTP_USER_AGENT=BROWSER_UA)  # cached as counting
    Partner.objects.filter(pk=partner.pk).update(status=Partner.Status.PENDING)
    with django_capture_on_commit_callbacks(execute=True):
        partners_decline(partner_ids=[partner.pk], actor=StaffFactory())
    response = client.get(f"/r/{partner.referral_code}", HTTP_USER_AGENT=BROWSER_UA)
    assert "aff_click" not in response.cookies
    assert Click.objects.count() == 1


def test_approval_and_decline_email_the_partner(django_capture_on_commit_callbacks):
    approved, declined = PartnerFactory(status="pending"), PartnerFactory(status="pending")
    staff = StaffFactory()
    with django_capture_on_commit_callbacks(execute=True):
        partners_approve(partner_ids=[approved.pk], actor=staff)
        partners_decline(partner_ids=[declined.pk], actor=staff)
    assert [(m.to, "approved" in m.subject) for m in mail.outbox] == [
        ([approved.user.email], True),
        ([declined.user.email], False),
    ]
    approved.refresh_from_db()
    assert approved.status_changed_by == staff


def test_decline_leaves_approved_partners_alone():
    partner = PartnerFactory()
    assert partners_decline(partner_ids=[partner.pk], actor=StaffFactory()) == []
    partner.refresh_from_db()
    assert partner.status == Partner.Status.APPROVED


def test_a_declined_partner_cannot_use_the_panel_or_the_api(client):
    partner = PartnerFactory(status=Partner.Status.DECLINED)
    client.force_login(partner.user)
    assert client.get("/dashboard/")["Location"] == reverse("partners:application")
    page = client.get(reverse("partners:application"))
    assert page.status_code == 403
    assert b"declined" in page.content
    assert client.get("/api/v1/partner/summary").status_code == 401


def test_an_approved_partner_is_sent_from_the_application_page_to_the_dashboard(partner_client):
    response = partner_client.get(reverse("partners:application"))
    assert response["Location"] == reverse("partners:dashboard")


def test_staff_approve_and_decline_in_bulk_from_the_admin(admin_client):
    pending = [PartnerFactory(status="pending") for _ in range(3)]
    response = admin_client.post(
        reverse("admin:partners_partner_changelist"),
        {"action": "approve_applications", "_selected_action": [p.pk for p in pending[:2]]},
        follow=True,
    )
    assert b"2 partner(s) approved" in response.content
    admin_client.post(
        reverse("admin:partners_partner_changelist"),
        {"action": "decline_applications", "_selected_action": [pending[2].pk]},
    )
    statuses = [Partner.objects.get(pk=p.pk).status for p in pending]
    assert statuses == ["approved", "approved", "declined"]


def test_the_admin_lists_partners_filtered_by_status(admin_client):
    PartnerFactory(status="pending", name="Waiting Walter")
    PartnerFactory(name="Approved Alice")
    response = admin_client.get(reverse("admin:partners_partner_changelist"), {"status__exact": "pending"})
    assert b"Waiting Walter" in response.content
    assert b"Approved Alice" not in response.content
