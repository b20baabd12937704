"""The partner's journeys of issue 8, each one driven through Chromium from start to end."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.contrib.auth import get_user_model
from django.utils import timezone
from playwright.sync_api import expect

from commissions.models import Referral
from partners.models import Partner
from partners.services import api_token_create
from payouts.models import Payout
from tests.e2e.conftest import (
    DASHBOARD,
    MERCHANT_HOST,
    PASSWORD,
    SERIES_RGB,
    arrive,
    chart_state,
    current_totp,
    follow_confirmation_link,
    log_in,
    wait_for_chart,
)
from tests.factories import PartnerFactory
from tracking.models import Click, DailyLinkStats, Link
from tracking.services import link_create

pytestmark = pytest.mark.e2e


def dashboard_charts(page) -> dict[str, dict]:
    page.wait_for_selector("#trends[data-loaded='1']", state="attached")
    return {key: chart_state(page, f"chart-{key}", rgb) for key, rgb in SERIES_RGB.items()}


def kpi(page, name: str) -> str:
    # Amount and currency are joined by a no-break space (they never wrap apart).
    return page.locator(f"#kpi-{name} .kpi-value").inner_text().strip().replace("\u00a0", " ")


def copied(page, button) -> str:
    """Click a copy button (static/js/panel.js) and return what it put on the clipboard,
    checked against the text the button says it copied."""
    button.click()
    expect(button).to_have_attribute("data-copied", re.compile(r".+"))
    marked = button.get_attribute("data-copied")
    clipboard = page.evaluate("navigator.clipboard.readText()")
    assert clipboard == marked
    return clipboard


def test_a_new_partner_signs_up_copies_the_default_link_and_builds_a_30_day_deep_link(open_page, shots, live_server):
    page, problems = open_page(permissions=["clipboard-read", "clipboard-write"])

    page.goto("/accounts/signup/")
    page.get_by_label("Your name").fill("Ada Partner")
    page.get_by_label("Email").fill("ada@example.org")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Website").fill("https://ada.example.org")
    page.get_by_label("I accept the partner program terms").check()
    shots.take(page, "signup")
    page.get_by_role("button", name="Create my partner account").click()
    # The same answer for a new and a taken email (issue 17): the emailed link opens the panel.
    arrive(page, "**/accounts/signup/done/")
    expect(page.locator("h1")).to_have_text("Check your inbox")
    follow_confirmation_link(page)
    arrive(page, DASHBOARD)
    expect(page.locator(".messages")).to_contain_text("Welcome aboard")
    shots.take(page, "dashboard-after-signup")

    page.get_by_role("button", name="Log out").click()
    arrive(page, "**/accounts/login/")
    shots.take(page, "login")
    log_in(page, "ada@example.org")
    expect(page.locator(".topbar-email")).to_have_text("ada@example.org")
    shots.take(page, "dashboard")

    partner = Partner.objects.get(user__email="ada@example.org")
    default_url = f"{live_server.url}/r/{partner.referral_code}"
    expect(page.locator("#default-link")).to_have_value(default_url)
    assert copied(page, page.locator("button[data-copy-target='default-link']")) == default_url

    page.get_by_role("navigation", name="Partner panel").get_by_role("link", name="Resources").click()
    arrive(page, "**/resources/")
    builder = page.locator("#link-builder")
    builder.get_by_label("Destination URL").fill(f"http://{MERCHANT_HOST}/pricing")
    builder.get_by_label("30 days (extended)").check()
    builder.get_by_label("Description").fill("Spring newsletter")
    expect(page.locator("#preview-trial")).to_have_text("30 days")
    expect(page.locator("#preview-destination")).to_have_text(f"http://{MERCHANT_HOST}/pricing")
    shots.take(page, "resources-builder")
    builder.get_by_role("button", name="Create link").click()
    arrive(page, re.compile(r"/resources/links/\d+/#share$"))
    shots.take(page, "link-detail")

    link = Link.objects.get(partner=partner, is_default=False)
    assert (link.destination, link.trial_days, link.description) == (
        f"http://{MERCHANT_HOST}/pricing",
        30,
        "Spring newsletter",
    )
    link_url = f"{live_server.url}/r/{link.code}"
    expect(page.locator("#link-url")).to_have_value(link_url)
    html = copied(page, page.get_by_role("button", name="Copy HTML"))
    assert html == page.locator("#embed-code").input_value()
    assert html == f'<a href="{link_url}" rel="sponsored">Try CrazyCall free</a>'

    page.goto("/resources/#links")
    links_table = page.locator("#links")
    expect(links_table).to_contain_text("Spring newsletter")
    expect(links_table).to_contain_text("30 days")
    shots.take(page, "resources-links")
    assert problems.all() == []


def test_a_visitor_lands_on_the_merchant_page_with_the_click_and_a_repeat_visit_is_no_new_unique_click(
    open_page, visit, shots, live_server, merchant_site
):
    partner = PartnerFactory(user__email="grace@example.org")
    link = link_create(
        partner=partner, destination=f"http://{MERCHANT_HOST}/pricing", trial_days=30, description="Spring newsletter"
    )
    link_url = f"{live_server.url}/r/{link.code}"
    page, problems = open_page()
    redirects = []
    page.on("response", lambda r: r.status == 302 and redirects.append(r))

    page, click_id = visit(link_url + "?utm_source=newsletter", page=page)
    expect(page.locator("h1")).to_have_text("CrazyCall Pricing")
    shots.take(page, "merchant-pricing")
    landed = urlsplit(page.url)
    assert (landed.hostname, landed.path) == (MERCHANT_HOST, "/pricing")
    assert parse_qs(landed.query) == {"utm_source": ["newsletter"], "aff_click": [click_id]}
    assert merchant_site.requests[-1][:2] == (MERCHANT_HOST, "/pricing")

    cookies = {c["name"]: c for c in page.context.cookies(live_server.url)}
    cookie = cookies["aff_click"]
    assert cookie["value"] == click_id
    assert (cookie["httpOnly"], cookie["secure"], cookie["sameSite"], cookie["path"]) == (True, True, "Lax", "/")
    ninety_days = (timezone.now() + timedelta(days=90)).timestamp()
    assert abs(cookie["expires"] - ninety_days) < 3600
    assert "aff_vid" in cookies
    assert redirects[0].header_value("cache-control") == "no-store"

    click = Click.objects.get(pk=click_id)
    assert (click.link_id, click.is_unique) == (link.pk, True)

    page, second_click_id = visit(link_url, page=page)
    shots.take(page, "merchant-pricing-again")
    assert second_click_id != click_id
    again = {c["name"]: c["value"] for c in page.context.cookies(live_server.url)}
    # The same visitor (aff_vid kept), a new click: the newest click attributes.
    assert again == {"aff_click": second_click_id, "aff_vid": cookies["aff_vid"]["value"]}
    assert [c.is_unique for c in Click.objects.filter(link=link).order_by("created_at")] == [True, False]
    stats = DailyLinkStats.objects.get(link=link)
    assert (stats.clicks, stats.unique_clicks) == (2, 1)

    # What the partner's own API says about it.
    token = api_token_create(partner=partner, name="e2e").secret
    summary = requests.get(
        f"{live_server.url}/api/v1/partner/summary", headers={"Authorization": f"Bearer {token}"}, timeout=30
    ).json()
    assert summary["unique_clicks_30d"] == 1
    assert problems.all() == []


def test_merchant_events_show_up_on_the_dashboard_referrals_and_commissions(
    open_page, visit, shots, live_server, merchant
):
    partner = PartnerFactory(user__email="linus@example.org")
    page, problems = open_page()
    log_in(page, "linus@example.org")
    before = dashboard_charts(page)
    assert kpi(page, "commission") == "0.00 USD"
    assert kpi(page, "unique-clicks") == "0"
    assert all(state["empty"] == "1" and state["values"] is None for state in before.values()), before
    shots.take(page, "dashboard-before")

    _, click_id = visit(f"{live_server.url}/r/{partner.referral_code}")
    answer = merchant.signed_up("cus_e2e_linus_1", click_id, "customer@shop.example")
    assert answer["referral"]["status"] == "trial"
    answer = merchant.paid("pay_e2e_linus_1", "cus_e2e_linus_1", "49.00", plan="B", seats=2)
    assert answer["commission"]["amount"] == "9.80"

    page.reload()
    after = dashboard_charts(page)
    shots.take(page, "dashboard-after")
    assert kpi(page, "commission") == "9.80 USD"
    assert kpi(page, "unique-clicks") == "1"
    assert kpi(page, "active-trials") == "0"
    assert kpi(page, "active-subscriptions") == "1"
    assert kpi(page, "balance") == "9.80 USD"
    for key, rgb in SERIES_RGB.items():
        state = wait_for_chart(page, f"chart-{key}", rgb)
        assert state["empty"] == "0" and state["width"] > 0 and state["height"] > 0, (key, state)
        assert after[key]["values"][-1] == {"commission": 9.8}.get(key, 1), (key, after[key]["values"])
        assert sum(after[key]["values"]) == {"commission": 9.8}.get(key, 1), (key, after[key]["values"])

    page.get_by_role("navigation", name="Partner panel").get_by_role("link", name="Referrals").click()
    arrive(page, "**/referrals/")
    referral = Referral.objects.get(customer_id="cus_e2e_linus_1")
    row = page.locator("tr.row-link")
    expect(row).to_have_count(1)
    expect(row.locator(".badge")).to_have_text("Paying")
    expect(row).to_contain_text("49.00")
    expect(row).to_contain_text("9.80")
    shots.take(page, "referrals")

    row.get_by_role("link", name=f"#{referral.pk}").click()
    arrive(page, f"**/referrals/{referral.pk}/")
    timeline = page.locator("ol.timeline li")
    expect(timeline).to_have_count(3)
    expect(timeline.nth(0)).to_contain_text("Clicked your link")
    expect(timeline.nth(1)).to_contain_text("Signed up")
    expect(timeline.nth(1)).to_contain_text("14-day trial")
    expect(timeline.nth(2)).to_contain_text("Payment")
    expect(timeline.nth(2)).to_contain_text("Plan B · 2 seats")
    expect(timeline.nth(2)).to_contain_text("commission 9.80 USD")
    shots.take(page, "referral-detail")

    page.get_by_role("navigation", name="Partner panel").get_by_role("link", name="Commissions").click()
    arrive(page, "**/commissions/")
    expect(page.locator(".lead")).to_contain_text("Commission is 20 % of each payment")
    rows = page.locator("table tbody tr")
    expect(rows).to_have_count(1)
    cells = rows.first.locator("td")
    expect(cells.nth(1)).to_have_text("Payment")
    # The money columns name the currency in their headers, as the CSV's do.
    expect(page.locator("table thead th").nth(5)).to_have_text("Amount (USD)")
    expect(cells.nth(5)).to_have_text("49.00")
    expect(cells.nth(6)).to_have_text("9.80")
    shots.take(page, "commissions")
    assert problems.all() == []


def test_a_partner_at_the_minimum_withdraws_the_admin_approves_and_paypal_pays(
    open_page, visit, shots, live_server, merchant, settings, fake_paypal
):
    partner = PartnerFactory(user__email="margaret@example.org", paypal_email="margaret@paypal.example")
    _, click_id = visit(f"{live_server.url}/r/{partner.referral_code}")
    merchant.signed_up("cus_e2e_margaret", click_id, "buyer@shop.example")
    merchant.paid("pay_e2e_margaret_1", "cus_e2e_margaret", "100.00")  # 20.00 commission

    page, problems = open_page()
    log_in(page, "margaret@example.org")
    withdraw = page.locator(".withdraw-form button[type=submit]")
    expect(withdraw).to_be_disabled()
    expect(page.locator("#withdraw-reason")).to_contain_text(
        "Your balance must reach 50.00 USD to withdraw: 30.00 USD to go"
    )
    shots.take(page, "dashboard-below-minimum")

    merchant.paid("pay_e2e_margaret_2", "cus_e2e_margaret", "150.00")  # 30.00 more: 50.00
    page.reload()
    expect(withdraw).to_be_enabled()
    expect(withdraw).to_have_text("Withdraw 50.00 USD")
    expect(page.locator("#withdraw-reason")).to_have_count(0)
    shots.take(page, "dashboard-can-withdraw")

    withdraw.click()
    arrive(page, DASHBOARD)
    expect(page.locator(".messages")).to_contain_text("Withdrawal of 50.00 USD requested")
    page.get_by_role("navigation", name="Partner panel").get_by_role("link", name="Payouts").click()
    arrive(page, "**/payouts/")
    history = page.locator("table.payouts-table tbody tr")
    expect(history).to_have_count(1)
    expect(history.first.locator(".badge")).to_have_text("Pending")
    expect(history.first).to_contain_text("50.00 USD")
    expect(withdraw).to_be_disabled()
    expect(page.locator("#withdraw-reason")).to_have_text("Your previous withdrawal request is still being processed.")
    shots.take(page, "payouts-pending")
    payout = Payout.objects.get(partner=partner)

    get_user_model().objects.create_superuser(email="admin@example.org", password=PASSWORD)
    admin, admin_problems = open_page()
    admin.goto("/admin/")
    admin.get_by_label("Email").fill("admin@example.org")
    admin.get_by_label("Password").fill(PASSWORD)
    shots.take(admin, "admin-login")
    admin.get_by_role("button", name="Log in").click()
    arrive(admin, "**/admin/")
    admin.locator("tr.model-payout th a").click()
    arrive(admin, "**/admin/payouts/payout/")
    admin.locator(f"input[name=_selected_action][value='{payout.pk}']").check()
    admin.locator("select[name=action]").select_option("approve_and_send")
    shots.take(admin, "admin-payouts")
    admin.locator("#changelist-form button[name=index]").click()
    # Issue 22: no approval before two-factor. The first time, staff enrol an authenticator app.
    arrive(admin, "**/admin/2fa/setup/**")
    expect(admin.locator("#otp-setup svg")).to_be_visible()
    shots.take(admin, "admin-2fa-setup")
    assert Payout.objects.get(pk=payout.pk).status == Payout.Status.PENDING
    admin.get_by_label("6-digit code from your authenticator app").fill(current_totp("admin@example.org"))
    admin.get_by_role("button", name="Confirm and continue").click()
    arrive(admin, "**/admin/payouts/payout/")
    admin.locator(f"input[name=_selected_action][value='{payout.pk}']").check()
    admin.locator("select[name=action]").select_option("approve_and_send")
    admin.locator("#changelist-form button[name=index]").click()
    expect(admin.locator(".messagelist")).to_contain_text(f"Payout #{payout.pk} approved: 50.00 USD")
    shots.take(admin, "admin-approved")

    assert len(fake_paypal.batches) == 1
    (batch,) = fake_paypal.batches.values()
    (item,) = batch.items
    assert item["payout_item"]["receiver"] == "margaret@paypal.example"
    assert item["payout_item"]["amount"] == {"currency": "USD", "value": "50.00"}
    payout.refresh_from_db()
    assert payout.status == Payout.Status.PAID

    page.reload()
    expect(history.first.locator(".badge")).to_have_text("Paid")
    expect(history.first).to_contain_text(batch.batch_id)
    expect(page.locator("#withdraw-reason")).to_contain_text("50.00 USD to go")
    shots.take(page, "payouts-paid")
    # The payout's statement: the commissions it covered, oldest first, to the cent.
    history.first.get_by_role("link", name="Statement").click()
    arrive(page, f"**/payouts/{payout.pk}/statement/")
    rows = page.locator("#statement tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0).locator("td").last).to_have_text("20.00 USD")
    expect(rows.nth(1).locator("td").last).to_have_text("30.00 USD")
    expect(page.locator("#statement tfoot")).to_contain_text("50.00 USD")
    shots.take(page, "payout-statement")
    assert problems.all() == []
    assert admin_problems.all() == []
    assert Decimal(payout.amount) == Decimal("50.00")
