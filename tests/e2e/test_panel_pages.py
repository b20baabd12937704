"""Every panel page renders cleanly in Chromium on a desktop and on a phone: no console error,
no uncaught exception, no failed or refused request, no page wider than the screen, and the
charts drawn with their data."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from commissions.models import Referral
from tests.e2e.conftest import DESKTOP, MERCHANT_HOST, PHONE, SERIES_RGB, log_in, wait_for_chart
from tests.factories import PartnerFactory
from tracking.services import link_create

pytestmark = pytest.mark.e2e


@pytest.fixture
def busy_partner(live_server, visit, merchant):
    """A partner whose two links were clicked, with a paying referral and one in trial, so that
    every table has rows and every chart has data."""
    partner = PartnerFactory(user__email="katherine@example.org")
    deep = link_create(
        partner=partner, destination=f"http://{MERCHANT_HOST}/pricing", trial_days=30, description="Podcast"
    )
    _, first = visit(f"{live_server.url}/r/{partner.referral_code}")
    _, second = visit(f"{live_server.url}/r/{deep.code}")
    merchant.signed_up("cus_pages_1", first, "one@shop.example")
    merchant.paid("pay_pages_1", "cus_pages_1", "99.00", plan="C", seats=3)
    merchant.signed_up("cus_pages_2", second, "two@shop.example")
    return partner


PAGES = [
    ("dashboard", "/dashboard/", "Dashboard"),
    ("resources", "/resources/", "Resources"),
    ("referrals", "/referrals/", "Referrals"),
    ("referral-detail", None, "Referral #"),
    ("commissions", "/commissions/", "Commissions"),
    ("performance", "/performance/", "Performance"),
    ("payouts", "/payouts/", "Payouts"),
    ("settings", "/settings/", "Settings"),
]


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_every_panel_page_renders_without_errors_and_draws_its_charts(busy_partner, open_page, shots, viewport):
    page, problems = open_page(viewport=viewport)
    log_in(page, busy_partner.user.email)
    problems.clear()  # the log-in page is not a panel page; its problems would show in its own test
    referral = Referral.objects.get(customer_id="cus_pages_1")

    for name, path, heading in PAGES:
        response = page.goto(path or f"/referrals/{referral.pk}/")
        assert response.status == 200, (name, response.status)
        page.wait_for_load_state("networkidle")
        expect(page.locator("h1")).to_contain_text(heading)

        if name == "dashboard":
            page.wait_for_selector("#trends[data-loaded='1']", state="attached")
            for key, rgb in SERIES_RGB.items():
                state = wait_for_chart(page, f"chart-{key}", rgb)
                assert state["width"] > 0 and state["height"] > 0, (key, state)
                assert sum(state["values"]) > 0, (key, state)
        if name == "performance":
            state = wait_for_chart(page, "perf-chart", SERIES_RGB["commission"])
            assert state["width"] > 0 and state["height"] > 0, state
            assert sorted(state["values"]) == [0, 19.8], state

        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{name} is {overflow}px wider than the {viewport['width']}px screen"
        shots.take(page, name)
        assert problems.all() == [], (name, problems.all())
