"""Issue 22 journeys through Chromium: an application under manual approval, and the program
terms accepted at sign-up and again after they change. (The statement and the 2FA approval
are in test_journeys.py's withdrawal journey.)"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from partners.models import Partner, TermsAcceptance
from partners.services import terms_publish
from tests.e2e.conftest import DASHBOARD, MERCHANT_HOST, PASSWORD, arrive, follow_confirmation_link
from tests.factories import PartnerFactory
from tracking.models import Click

pytestmark = pytest.mark.e2e


def _admin_login(page) -> None:
    get_user_model().objects.create_superuser(email="staff@example.org", password=PASSWORD)
    page.goto("/admin/")
    page.get_by_label("Email").fill("staff@example.org")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    arrive(page, "**/admin/")


def test_an_application_waits_for_review_its_link_counts_nothing_then_staff_approve_it(
    open_page, shots, live_server, settings, merchant_site
):
    settings.PARTNER_APPROVAL = "manual"
    page, problems = open_page()
    page.goto("/accounts/signup/")
    page.get_by_label("Your name").fill("Avery Applicant")
    page.get_by_label("Email").fill("avery@example.org")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Website").fill("https://avery.example.org")
    page.get_by_label("I accept the partner program terms").check()
    page.get_by_role("button", name="Create my partner account").click()
    arrive(page, "**/accounts/signup/done/")
    follow_confirmation_link(page)
    arrive(page, "**/application/")
    expect(page.locator("h1")).to_have_text("Your application is under review")
    expect(page.locator("#application")).to_contain_text("What happens next")
    expect(page.locator("nav.sidenav")).to_have_count(0)
    shots.take(page, "application-under-review")
    page.goto("/referrals/")
    arrive(page, "**/application/")

    partner = Partner.objects.get(user__email="avery@example.org")
    visitor, _ = open_page()
    visitor.goto(f"{live_server.url}/r/{partner.referral_code}")
    landed = urlsplit(visitor.url)
    assert landed.hostname == MERCHANT_HOST
    assert "aff_click" not in parse_qs(landed.query)
    assert Click.objects.count() == 0

    staff, staff_problems = open_page()
    _admin_login(staff)
    staff.goto("/admin/partners/partner/?status__exact=pending")
    staff.locator(f"input[name=_selected_action][value='{partner.pk}']").check()
    staff.locator("select[name=action]").select_option("approve_applications")
    shots.take(staff, "admin-applications")
    staff.locator("#changelist-form button[name=index]").click()
    expect(staff.locator(".messagelist")).to_contain_text("1 partner(s) approved")

    page.goto("/dashboard/")
    arrive(page, DASHBOARD)
    expect(page.locator("nav.sidenav")).to_be_visible()
    visitor.goto(f"{live_server.url}/r/{partner.referral_code}")
    assert "aff_click" in parse_qs(urlsplit(visitor.url).query)
    assert problems.all() == []
    assert staff_problems.all() == []


def test_a_partner_accepts_changed_terms_before_going_on(open_page, shots, live_server):
    terms_publish(text="# Terms\n\nBe **honest**.")
    partner = PartnerFactory(user__email="terry@example.org")
    page, problems = open_page()
    page.goto("/accounts/login/")
    page.get_by_label("Email").fill("terry@example.org")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    arrive(page, "**/terms/**")
    expect(page.locator(".terms-text strong")).to_have_text("honest")
    page.get_by_role("button", name="I accept version 1 of the terms").click()
    arrive(page, DASHBOARD)
    expect(page.locator(".messages")).to_contain_text("you accepted version 1")

    staff, _ = open_page()
    _admin_login(staff)
    staff.goto("/admin/partners/programterms/add/")
    staff.get_by_label("Text").fill("# Terms\n\nBe **honest**. No *brand bidding*.")
    staff.get_by_label("Summary of changes").fill("No bidding on our brand")
    staff.get_by_role("button", name="Save", exact=True).click()
    expect(staff.locator(".messagelist")).to_contain_text("was added successfully")

    page.goto("/payouts/")
    arrive(page, "**/terms/**")
    expect(page.locator("[role=alert]")).to_contain_text("changed since you accepted version 1")
    expect(page.locator("[role=alert]")).to_contain_text("No bidding on our brand")
    shots.take(page, "terms-changed")
    page.get_by_role("button", name="I accept version 2 of the terms").click()
    arrive(page, "**/payouts/")
    assert sorted(TermsAcceptance.objects.filter(partner=partner).values_list("terms__version", flat=True)) == [1, 2]
    assert problems.all() == []
