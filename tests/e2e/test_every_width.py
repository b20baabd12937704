"""The panel as partners really use it (issue 18): at 1366 px and on a 390 px phone, by
keyboard and by tap. The dashboard opens at the top, no table needs sideways scrolling to show
its cells, the phone menu reaches every page, hints open on focus and tap, charts say what they
show (or why they show nothing), destructive actions ask first, and every page state passes
axe-core (``shots.take`` runs it)."""

from __future__ import annotations

import codecs
import csv
import io
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from partners.models import ApiToken
from partners.services import api_token_create
from payouts.models import Payout
from tests.e2e.conftest import (
    DASHBOARD,
    DESKTOP,
    MERCHANT_HOST,
    PASSWORD,
    PHONE,
    arrive,
    enrol_totp,
    follow_confirmation_link,
    log_in,
)
from tests.e2e.test_panel_pages import busy_partner  # noqa: F401 - a fixture shared with the page test
from tests.factories import PartnerFactory, PayoutFactory
from tests.payouts.conftest import add_commission
from tracking.models import Link
from tracking.rollups import program_today
from tracking.services import link_create

pytestmark = pytest.mark.e2e

VIEWPORTS = pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
NAV = ["Dashboard", "Resources", "Referrals", "Commissions", "Performance", "Payouts", "Settings"]

# Every body cell of every table lies inside the visible part of its table's box and of the
# screen, and no table scrolls sideways: status, amounts and commission are all on screen.
CELLS_OUT_OF_VIEW = """() => {
  const out = [];
  for (const table of document.querySelectorAll("main table")) {
    const wrap = table.closest(".table-wrap") || table.parentElement;
    const box = wrap.getBoundingClientRect();
    const right = Math.min(box.right, document.documentElement.clientWidth);
    if (wrap.scrollWidth > wrap.clientWidth + 1) {
      out.push(`${table.className}: scrolls sideways (${wrap.scrollWidth} > ${wrap.clientWidth})`);
    }
    for (const cell of table.querySelectorAll("tbody td, tfoot td")) {
      const r = cell.getBoundingClientRect();
      if (r.width === 0) { continue; }
      if (r.right > right + 1 || r.left < box.left - 1) {
        out.push(`${table.className}: "${cell.textContent.trim().slice(0, 30)}" at ${Math.round(r.left)}-${Math.round(r.right)}, visible ${Math.round(box.left)}-${Math.round(right)}`);
      }
    }
  }
  return out;
}"""


def open_menu(page) -> None:
    """On a phone the page list sits behind the Menu button; on a desktop it is always shown."""
    button = page.locator("#menu-button")
    if button.is_visible() and button.get_attribute("aria-expanded") == "false":
        button.click()
        expect(button).to_have_attribute("aria-expanded", "true")


def go_to(page, label: str) -> None:
    open_menu(page)
    page.get_by_role("navigation", name="Partner panel").get_by_role("link", name=label, exact=True).click()
    page.wait_for_load_state("load")
    expect(page.locator("h1")).to_contain_text(label)


def tab_to(page, selector: str, *, limit: int = 80) -> None:
    """Press Tab until the element matching ``selector`` has the focus (keyboard only), and
    check that the focus is visible on it."""
    target = page.locator(selector).first
    for _ in range(limit):
        page.keyboard.press("Tab")
        if target.evaluate("el => el === document.activeElement"):
            outline = target.evaluate("el => [getComputedStyle(el).outlineStyle, getComputedStyle(el).outlineWidth]")
            assert outline[0] != "none" and outline[1] != "0px", (selector, outline)
            return
    raise AssertionError(f"Tab never reached {selector}")


@VIEWPORTS
def test_the_dashboard_opens_at_the_top_and_a_period_change_keeps_its_place(busy_partner, open_page, shots, viewport):  # noqa: F811
    page, problems = open_page(viewport=viewport)
    log_in(page, busy_partner.user.email)
    page.wait_for_selector("#trends[data-loaded='1']", state="attached")
    assert page.evaluate("window.scrollY") == 0
    assert "#" not in page.url
    shots.take(page, "dashboard-after-log-in")

    go_to(page, "Resources")
    go_to(page, "Dashboard")
    page.wait_for_selector("#trends[data-loaded='1']", state="attached")
    assert page.evaluate("window.scrollY") == 0, "the dashboard opened scrolled down"

    page.locator("#trends").scroll_into_view_if_needed()
    before = page.evaluate("window.scrollY")
    assert before > 0
    page.locator("#period").select_option("7d")
    page.wait_for_url(re.compile(r"/dashboard/\?period=7d$"))
    expect(page.locator("#trends-range")).to_contain_text("(7 days)")
    assert page.evaluate("window.scrollY") == before, "a period change kept its place"
    assert problems.all() == []


@VIEWPORTS
def test_every_table_shows_all_its_cells_without_sideways_scrolling(busy_partner, open_page, shots, viewport):  # noqa: F811
    # The long values the issue found clipping: a rejection note, a short token name, PayPal
    # ids, and a 2,000-character destination.
    PayoutFactory(
        partner=busy_partner,
        amount=Decimal("1493.67"),
        status=Payout.Status.REJECTED,
        rejection_reason="Your ads bid on our brand name, which the program terms do not allow. "
        "Please pause those ads; the amount is back in your balance.",
    )
    PayoutFactory(
        partner=busy_partner,
        amount=Decimal("7878.81"),
        status=Payout.Status.PAID,
        paypal_batch_id="5UXD2E8A7EBQJ2",
        paypal_transaction_id="8GS93471LY3256024",
        paid_at=busy_partner.created_at,
    )
    api_token_create(partner=busy_partner, name="ci")
    link_create(partner=busy_partner, destination=f"http://{MERCHANT_HOST}/pricing?" + "q=x&" * 480, trial_days=14)

    page, problems = open_page(viewport=viewport)
    log_in(page, busy_partner.user.email)
    problems.clear()
    for label in NAV[1:]:
        go_to(page, label)
        page.wait_for_load_state("networkidle")
        assert page.evaluate(CELLS_OUT_OF_VIEW) == [], label
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{label} is {overflow}px wider than the screen"
        shots.take(page, label)
    # The long destination is clamped, not a metre-tall row.
    go_to(page, "Resources")
    tallest = page.evaluate(
        "Math.max(...Array.from(document.querySelectorAll('.links-table td')).map(c => c.getBoundingClientRect().height))"
    )
    assert tallest < 200, tallest
    assert problems.all() == []


def test_the_phone_menu_reaches_every_page(busy_partner, open_page, shots):  # noqa: F811
    page, problems = open_page(viewport=PHONE)
    log_in(page, busy_partner.user.email)
    nav = page.get_by_role("navigation", name="Partner panel")
    expect(nav.get_by_role("link", name="Payouts")).to_be_hidden()  # folded behind the button
    shots.take(page, "menu-closed")
    open_menu(page)
    for label in NAV:
        expect(nav.get_by_role("link", name=label, exact=True)).to_be_in_viewport()
    shots.take(page, "menu-open")
    for label in NAV:
        go_to(page, label)
    assert problems.all() == []


def test_hints_open_on_keyboard_focus_and_on_tap(busy_partner, open_page, shots):  # noqa: F811
    page, problems = open_page()
    log_in(page, busy_partner.user.email)
    tip = page.locator("#hint-commission")
    expect(tip).to_be_hidden()
    tab_to(page, "#kpi-commission .hint")
    expect(tip).to_be_visible()
    expect(tip).to_contain_text("you earn 20% of the payment")
    shots.take(page, "hint-on-focus")
    page.keyboard.press("Escape")
    expect(tip).to_be_hidden()

    phone, phone_problems = open_page(viewport=PHONE, has_touch=True, is_mobile=True)
    log_in(phone, busy_partner.user.email)
    balance_tip = phone.locator("#hint-balance")
    phone.locator("#kpi-balance .hint").tap()
    expect(balance_tip).to_be_visible()
    box = balance_tip.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box
    shots.take(phone, "hint-on-tap")
    phone.locator("h1").tap()
    expect(balance_tip).to_be_hidden()
    assert problems.all() == [] and phone_problems.all() == []


def test_charts_say_what_they_show_or_why_they_show_nothing(busy_partner, open_page, shots):  # noqa: F811
    page, problems = open_page()
    log_in(page, busy_partner.user.email)
    charts = page.locator("#trend-charts")
    page.wait_for_selector("#trends[data-loaded='1']", state="attached")
    expect(charts).to_be_visible()

    # A reversed custom range: the error, and no charts of the previous period beside it.
    today = program_today()
    page.locator("#period").select_option("custom")
    page.locator("#start").fill(today.isoformat())
    page.locator("#end").fill((today - timedelta(days=5)).isoformat())
    page.locator("#period-apply").click()
    expect(page.locator("#trends-error")).to_have_text("The From date is after the To date.")
    expect(charts).to_be_hidden()
    shots.take(page, "reversed-range")

    # 183 days: weekly bars, said so.
    page.locator("#start").fill((today - timedelta(days=182)).isoformat())
    page.locator("#end").fill(today.isoformat())
    page.locator("#period-apply").click()
    expect(charts).to_be_visible()
    expect(page.locator("#trends-grouping")).to_contain_text("each bar is one week")
    expect(page.locator("#chart-unique_clicks")).to_have_attribute("data-unit", "week")
    bars = page.evaluate("window.Chart.getChart(document.getElementById('chart-unique_clicks')).data.labels.length")
    assert 26 <= bars <= 28, bars
    shots.take(page, "long-range-weekly")

    # Bad dates in the URL are an error, not a silent "Last 30 days".
    problems.clear()
    page.goto("/dashboard/?period=custom&start=2026-13-01&end=2026-12-01")
    expect(page.locator("#trends-error")).to_have_text("From: enter a date as YYYY-MM-DD.")
    expect(page.locator("#period")).to_have_value("custom")
    expect(charts).to_be_hidden()
    shots.take(page, "bad-url-dates")
    assert problems.all() == []


def test_a_new_partner_with_clicks_sees_them_on_performance_and_on_the_links_page(open_page, visit, shots, live_server):
    partner = PartnerFactory(user__email="newcomer@example.org")
    visit(f"{live_server.url}/r/{partner.referral_code}")
    page, problems = open_page()
    log_in(page, partner.user.email)
    go_to(page, "Performance")
    expect(page.locator("#perf-metric")).to_have_value("unique_clicks")  # not "Nothing to compare"
    expect(page.locator("#perf-chart")).to_have_attribute("data-empty", "0")
    shots.take(page, "performance-new-partner")

    link = Link.objects.get(partner=partner, is_default=True)
    page.goto(f"/resources/links/{link.pk}/")
    expect(page.locator("[data-metric='clicks']")).to_have_text("1")
    expect(page.locator("[data-metric='unique_clicks']")).to_have_text("1")
    expect(page.locator("[data-metric='commission']")).to_contain_text("0.00")
    expect(page.locator("#link-metric")).to_have_value("clicks")
    expect(page.locator("#link-chart")).to_have_attribute("data-empty", "0")
    shots.take(page, "link-numbers")
    assert problems.all() == []


def test_delete_disable_and_revoke_ask_first_and_a_token_is_made_once(open_page, shots):
    partner = PartnerFactory(user__email="careful@example.org")
    doomed = link_create(partner=partner, destination=f"http://{MERCHANT_HOST}/pricing", description="Doomed")
    page, problems = open_page()
    log_in(page, partner.user.email)
    page.goto("/resources/#links")
    questions: list[str] = []

    def answer(accept: bool):
        def handler(dialog):
            questions.append(dialog.message)
            dialog.accept() if accept else dialog.dismiss()

        return handler

    page.once("dialog", answer(False))
    page.get_by_role("button", name=f"Delete link {doomed.code}").click()
    expect(page.get_by_role("button", name=f"Delete link {doomed.code}")).to_be_enabled()
    assert Link.objects.filter(pk=doomed.pk).exists()
    page.once("dialog", answer(False))
    page.get_by_role("button", name=f"Disable link {doomed.code}").click()
    assert Link.objects.get(pk=doomed.pk).is_active
    page.once("dialog", answer(True))
    page.get_by_role("button", name=f"Delete link {doomed.code}").click()
    expect(page.locator(".messages")).to_contain_text("Link deleted.")
    assert not Link.objects.filter(pk=doomed.pk).exists()
    assert questions[0].startswith(f"Delete link {doomed.code}?") and questions[1].startswith("Disable link")

    page.goto("/settings/")
    assert page.evaluate("document.activeElement === document.body")  # Old password has no autofocus
    page.get_by_label("Token name").fill("reports")
    page.get_by_role("button", name="Create token").click()
    arrive(page, re.compile(r"/settings/#tokens$"))
    secret = page.locator("#new-token").input_value()
    assert secret
    shots.take(page, "token-created")
    page.reload()
    expect(page.locator("#new-token")).to_have_count(0)  # shown once
    assert ApiToken.objects.filter(partner=partner).count() == 1  # and the reload made none
    page.once("dialog", answer(False))
    page.get_by_role("button", name="Revoke token reports").click()
    assert ApiToken.objects.get(partner=partner).revoked_at is None
    page.once("dialog", answer(True))
    page.get_by_role("button", name="Revoke token reports").click()
    expect(page.locator(".messages")).to_contain_text("The token was revoked.")
    assert problems.all() == []


def test_the_referrals_csv_has_a_bom_and_the_pages_column_titles(busy_partner, open_page):  # noqa: F811
    page, problems = open_page()
    log_in(page, busy_partner.user.email)
    go_to(page, "Referrals")
    texts = page.locator(".referrals-table thead th").evaluate_all("cells => cells.map(c => c.textContent)")
    titles = [re.sub(r"[▲▼]", "", text).strip() for text in texts]
    expect(page.locator(".referrals-table")).to_contain_text("99.00")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV").click()
    with open(download.value.path(), "rb") as downloaded:
        body = downloaded.read()
    assert body.startswith(codecs.BOM_UTF8)
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert set(titles) <= set(rows[0]), (titles, rows[0])
    assert problems.all() == []


def test_sign_up_build_a_link_set_paypal_and_withdraw_with_the_keyboard_only(
    open_page, shots, visit, merchant, live_server
):
    page, problems = open_page()
    page.goto("/accounts/signup/")
    expect(page.get_by_role("link", name="partner program terms")).to_have_attribute("href", "/terms/")
    tab_to(page, "#id_name")
    page.keyboard.type("Kim Keys")
    tab_to(page, "#id_email")
    page.keyboard.type("kim@example.org")
    tab_to(page, "#id_password")
    page.keyboard.type(PASSWORD)
    tab_to(page, "#id_accept_terms")
    page.keyboard.press("Space")
    tab_to(page, "button[type=submit]")
    shots.take(page, "signup-by-keyboard")
    page.keyboard.press("Enter")
    arrive(page, "**/accounts/signup/done/")
    follow_confirmation_link(page)
    arrive(page, DASHBOARD)
    assert page.evaluate("window.scrollY") == 0

    page.goto("/resources/")
    tab_to(page, "#link-builder [name=destination]")
    page.keyboard.type(f"http://{MERCHANT_HOST}/pricing")
    tab_to(page, "#link-builder [name=description]")
    page.keyboard.type("Keyboard campaign")
    tab_to(page, "#link-builder button[type=submit]")
    page.keyboard.press("Enter")
    arrive(page, re.compile(r"/resources/links/\d+/#share$"))
    shots.take(page, "link-by-keyboard")
    assert Link.objects.filter(description="Keyboard campaign").exists()

    page.goto("/settings/")
    tab_to(page, "#id_paypal-paypal_email")
    page.keyboard.type("kim@paypal.example")
    tab_to(page, "#id_paypal-current_password")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.locator(".messages")).to_contain_text("Your PayPal email was saved.")
    partner = Link.objects.get(description="Keyboard campaign").partner
    partner.refresh_from_db()
    assert partner.paypal_email == "kim@paypal.example"
    _, click = visit(f"{live_server.url}/r/{partner.referral_code}")
    merchant.signed_up("cus_keys", click, "buyer@keys.example")
    merchant.paid("pay_keys", "cus_keys", "250.00")  # 50.00 commission
    page.goto("/dashboard/")
    tab_to(page, ".withdraw-form button[type=submit]")
    page.keyboard.press("Enter")
    expect(page.locator(".messages")).to_contain_text("Withdrawal of 50.00 USD requested")
    assert Payout.objects.filter(partner=partner).count() == 1
    assert problems.all() == []


def test_the_payout_approver_works_at_1366_px_by_keyboard(open_page, shots, fake_paypal, settings):
    from django.contrib.auth import get_user_model

    settings.PAYOUT_SECOND_APPROVAL_ABOVE = Decimal("5000.00")  # one approver here (four eyes: tests/program)
    waiting = PayoutFactory(partner=PartnerFactory(paypal_email="waiting@paypal.example"), amount=Decimal("1493.67"))
    add_commission(waiting.partner, "1493.67")  # the ledger owes what the payout asks
    refused = PayoutFactory(partner=PartnerFactory(paypal_email="refused@paypal.example"), amount=Decimal("75.00"))
    add_commission(refused.partner, "75.00")
    PayoutFactory(
        partner=PartnerFactory(paypal_email="a.rather.long.address.for.paypal@payouts.example.com"),
        status=Payout.Status.PAID,
        paypal_batch_id="5UXD2E8A7EBQJ2",
    )
    get_user_model().objects.create_superuser(email="approver@example.org", password=PASSWORD)
    admin, problems = open_page()
    admin.goto("/admin/")
    admin.get_by_label("Email").fill("approver@example.org")
    admin.get_by_label("Password").fill(PASSWORD)
    admin.get_by_role("button", name="Log in").click()
    arrive(admin, "**/admin/")
    expect(admin.locator("#content-main")).to_contain_text("Daily link stats")
    expect(admin.locator("#content-main")).not_to_contain_text("statss")
    enrol_totp(admin, "approver@example.org")

    admin.goto("/admin/payouts/payout/")
    # The list opens on what needs a decision, not on every payout ever made.
    expect(admin.locator("#changelist-filter li.selected").first).to_have_text("Needs action")
    expect(admin.locator("#result_list tbody tr")).to_have_count(2)
    shots.take(admin, "admin-needs-action")
    admin.get_by_role("link", name="All", exact=True).first.click()
    expect(admin.locator("#result_list tbody tr")).to_have_count(3)
    clipped = admin.evaluate(
        "(() => { const r = document.querySelector('#changelist .results'); return r.scrollWidth - r.clientWidth; })()"
    )
    assert clipped <= 0, f"the payouts table is {clipped}px wider than its box"
    shots.take(admin, "admin-all-payouts")

    admin.goto(f"/admin/payouts/payout/{waiting.pk}/change/")
    approve = admin.get_by_role("button", name="Approve and send 1,493.67 USD")
    reject = admin.get_by_role("link", name="Reject…")
    a, r = approve.bounding_box(), reject.bounding_box()
    assert abs(a["y"] - r["y"]) < 4 and r["x"] >= a["x"] + a["width"], (a, r)  # side by side, not cramped under
    assert r["height"] >= a["height"] - 2
    shots.take(admin, "admin-payout-change")
    tab_to(admin, ".payout-decision input[type=submit]")
    admin.keyboard.press("Enter")
    expect(admin.locator(".messagelist")).to_contain_text(f"Payout #{waiting.pk} approved")

    admin.goto(f"/admin/payouts/payout/{refused.pk}/change/")
    tab_to(admin, ".payout-decision a.button")
    admin.keyboard.press("Enter")
    arrive(admin, f"**/admin/payouts/payout/{refused.pk}/reject/")
    tab_to(admin, "#id_reason")
    admin.keyboard.type("The PayPal account could not be verified.")
    shots.take(admin, "admin-reject")
    tab_to(admin, "input[type=submit][value=Reject]")
    admin.keyboard.press("Enter")
    expect(admin.locator(".messagelist")).to_contain_text("rejected")
    refused.refresh_from_db()
    assert refused.status == Payout.Status.REJECTED
    assert problems.all() == []
