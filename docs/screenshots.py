"""Regenerate docs/screenshots/ from a running demo (``make demo`` in another terminal).

    .venv/bin/python docs/screenshots.py [--base-url http://127.0.0.1:8000]

Drives Debian's Chromium (/usr/bin/chromium) through Playwright: logs in as the demo partner,
captures every panel page (and a link's own page, a payout statement, the terms, an application
under review) at 1366 x 900, the dashboard, the menu and the referrals, commissions and payouts
tables on a 390 x 844 phone, then logs in as the admin and captures the payout list (opening on
what needs action), applications, fraud flags, the 2FA enrolment and a pending payout. No browser
is downloaded.
"""

from __future__ import annotations

import argparse
import re
import shutil
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

OUT = Path(__file__).resolve().parent / "screenshots"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PANEL_PAGES = [
    ("dashboard", "/dashboard/"),
    ("resources", "/resources/"),
    ("referrals", "/referrals/"),
    ("commissions", "/commissions/"),
    ("performance", "/performance/"),
    ("payouts", "/payouts/"),
    ("settings", "/settings/"),
    ("terms", "/terms/"),
    ("commissions-paid", "/commissions/?state=paid"),
]


def _login(page: Page, base: str, email: str, password: str, path: str = "/accounts/login/") -> None:
    page.goto(base + path)
    page.fill("input[name=username]", email)
    page.fill("input[name=password]", password)
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_load_state("networkidle")


def _shot(page: Page, name: str) -> None:
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(400)  # let Chart.js finish its entry animation
    path = OUT / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"wrote {path.relative_to(OUT.parent.parent)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", default="http://127.0.0.1:8000")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = parser.parse_args()
    base = args.base_url.rstrip("/")
    OUT.mkdir(parents=True, exist_ok=True)

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
        partner = browser.new_context(viewport={"width": 1366, "height": 900})
        page = partner.new_page()
        _login(page, base, "demo@example.com", "demo")
        for name, path in PANEL_PAGES:
            page.goto(base + path)
            _shot(page, name)
            if name == "referrals":
                first = page.locator("a[href^='/referrals/']").filter(has_text=re.compile(r"\S")).first
                href = first.get_attribute("href") if first.count() else None
                if href and re.match(r"^/referrals/\d+/$", href):
                    page.goto(base + href)
                    _shot(page, "referral-detail")
            if name == "resources":
                link = page.locator(".links-table a[href^='/resources/links/']").first
                href = link.get_attribute("href") if link.count() else None
                if href:
                    page.goto(base + href)
                    _shot(page, "link-detail")

        statement = page.locator("a[href$='/statement/']").first
        page.goto(base + "/payouts/")
        if statement.count():
            statement.click()
            _shot(page, "payout-statement")
        applicant = browser.new_context(viewport={"width": 1366, "height": 900}).new_page()
        _login(applicant, base, "applicant@example.com", "partner")
        applicant.goto(base + "/application/")
        _shot(applicant, "application-under-review")
        # A phone (390 x 844): the menu, and the pages whose tables become stacked rows.
        phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
        mobile = phone.new_page()
        _login(mobile, base, "demo@example.com", "demo")
        mobile.goto(base + "/dashboard/")
        _shot(mobile, "dashboard-phone")
        mobile.locator("#menu-button").click()
        _shot(mobile, "menu-phone")
        for name, path in (("referrals", "/referrals/"), ("commissions", "/commissions/"), ("payouts", "/payouts/")):
            mobile.goto(base + path)
            _shot(mobile, f"{name}-phone")

        admin = browser.new_context(viewport={"width": 1366, "height": 900})
        page = admin.new_page()
        _login(page, base, "admin@example.com", "admin", path="/admin/login/")
        page.goto(base + "/admin/payouts/payout/")
        _shot(page, "admin-payouts")
        page.goto(base + "/admin/partners/partner/?status__exact=pending")
        _shot(page, "admin-applications")
        page.goto(base + "/admin/fraud/fraudflag/")
        _shot(page, "admin-fraud-flags")
        page.goto(base + "/admin/2fa/setup/")
        _shot(page, "admin-2fa-setup")
        page.goto(base + "/admin/payouts/payout/?status=pending")
        pending = page.locator("#result_list tbody tr th a").first
        if pending.count():
            pending.click()
            _shot(page, "admin-payout-pending")
        browser.close()


if __name__ == "__main__":
    main()
