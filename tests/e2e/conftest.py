"""Browser tests: Debian's Chromium driven by Playwright against Django's live server.

The browser is the system Chromium (``/usr/bin/chromium``, installed with apt by ``.ci/run``),
never one downloaded by ``playwright install``. Outside CI a machine without Chromium skips
this folder with a message; in CI (``CI`` set) a missing browser fails the run.

The merchant's website is a stand-in HTTP server on 127.0.0.1 started here. The destination
validator accepts only the scheme's default port (a link to ``http://localhost:8123/`` is
refused, rightly), so the program's merchant host is ``crazycall.test`` (a reserved TLD) and
Chromium resolves that name to the stand-in with ``--host-resolver-rules``: links keep the
form a real merchant URL has and the validation stays exactly as strict as in production.

The live server runs with DEBUG off (pytest-django's default), so the redirect sets its
cookies ``Secure`` as in production; Chromium stores Secure cookies from http://localhost
(a potentially trustworthy origin), so the tests read the real production cookie.

Every page state a test screenshots is also checked with axe-core (vendored from the npm
package ``axe-core``, static/vendor/axe.min.js; no CDN): a critical or serious violation fails
the test, naming the rule and the elements.

Each journey saves a screenshot of every page it visits to
``test-artifacts/<test name>/<nn>-<page>.png``; a failing test also gets a screenshot of its
pages at the moment of failure, and the report names the files.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import threading
import time
from dataclasses import dataclass, field
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.utils import timezone
from playwright.sync_api import expect

from commissions.signing import signature_header
from devtools.fake_paypal import FakePayPal

E2E_DIR = Path(__file__).resolve().parent
ARTIFACTS_DIR = E2E_DIR.parents[1] / "test-artifacts"
MERCHANT_HOST = "crazycall.test"
DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
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
PASSWORD = "correct-horse-battery"

# expect() waits 5 s by default; a CI machine running the whole suite on two busy cores can
# need longer for a page (the admin's "Approve and send" talks to PayPal within the request).
# A behaviour that is broken still fails, only later.
expect.set_options(timeout=20_000)


def find_chromium() -> str | None:
    """The system Chromium: ``E2E_CHROMIUM`` if set, else the Debian binary on PATH."""
    configured = os.environ.get("E2E_CHROMIUM")
    if configured:
        return configured if os.access(configured, os.X_OK) else None
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None


def _in_ci() -> bool:
    return bool(os.environ.get("CI"))


def _is_e2e(item: pytest.Item) -> bool:
    return E2E_DIR in Path(item.path).resolve().parents


def pytest_collection_modifyitems(config, items):
    # The browser tests run last: Playwright's session (and the flag below) then lives only
    # after every other test has run.
    items[:] = [item for item in items if not _is_e2e(item)] + [item for item in items if _is_e2e(item)]
    if find_chromium() or _in_ci():
        return  # in CI the browser fixture fails loudly instead
    skip = pytest.mark.skip(
        reason="browser tests need Chromium (apt install chromium, or set E2E_CHROMIUM); "
        "skipped outside CI, where a missing browser is a failure"
    )
    for item in items:
        if _is_e2e(item):
            item.add_marker(skip)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    # Playwright's sync API keeps an asyncio event loop running in the test thread (inside a
    # greenlet) from its start to the end of the session, so Django's "no ORM calls from async
    # code" guard would refuse the test's own database access (factories, assertions, the
    # flush between tests). Nothing in this thread is really async. Set here, not at import:
    # the flag must not reach the tests that run before, such as `check --deploy`, which
    # rightly refuses it.
    if _is_e2e(item):
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"


# --- the merchant's website ----------------------------------------------------------------------


class MerchantSite:
    """What the merchant's website saw: every request's host, path and query."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, list[str]]]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> int:
        site = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format, *args):
                return

            def do_GET(self):
                parts = urlsplit(self.path)
                with site._lock:
                    site.requests.append((self.headers.get("Host", ""), parts.path, parse_qs(parts.query)))
                title = "Pricing" if parts.path.startswith("/pricing") else "Home"
                body = (
                    "<!doctype html><html><head><meta charset='utf-8'><link rel='icon' href='data:,'>"
                    f"<title>CrazyCall {title}</title></head><body><h1>CrazyCall {title}</h1>"
                    f"<p id='query'>{escape(parts.query)}</p></body></html>"
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="merchant-site", daemon=True).start()
        return self._server.server_address[1]

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()


@pytest.fixture(scope="session")
def merchant_site():
    site = MerchantSite()
    site.port = site.start()
    yield site
    site.stop()


# --- the browser (pytest-playwright fixtures, pointed at the system Chromium) ---------------------


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args, merchant_site):
    executable = find_chromium()
    if executable is None:
        pytest.fail("Chromium is not installed (CI installs it with apt in .ci/run); set E2E_CHROMIUM to its path.")
    args = list(CHROMIUM_ARGS)
    if browser_type_launch_args.get("headless") is False:  # pytest --headed
        args.remove("--headless")
    args.append(f"--host-resolver-rules=MAP {MERCHANT_HOST} 127.0.0.1:{merchant_site.port}")
    return {**browser_type_launch_args, "executable_path": executable, "args": args}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args, live_server, browser):
    # Headless Chromium says "HeadlessChrome" in its user agent, and the crawler list rightly
    # counts that as a bot (redirected, no click): the people in these journeys use the same
    # browser's ordinary user agent.
    major = browser.version.split(".")[0]
    user_agent = (
        f"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{major}.0.0.0 Safari/537.36"
    )
    return {
        **browser_context_args,
        "user_agent": user_agent,
        "base_url": live_server.url,
        "locale": "en-US",
        "timezone_id": "UTC",
    }


# --- the program as the tests run it --------------------------------------------------------------


@pytest.fixture(autouse=True)
def _e2e_program(settings, live_server, merchant_site):
    merchant_site.clear()
    settings.SITE_URL = live_server.url
    settings.MERCHANT_ALLOWED_HOSTS = (MERCHANT_HOST,)
    settings.DEFAULT_LANDING_URL = f"http://{MERCHANT_HOST}/"
    # Sign-up and log-in hash passwords in the server; the production hasher costs about a
    # second per hash on a busy CI machine and proves nothing about the panel.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


# --- screenshots and page problems ---------------------------------------------------------------


# --- accessibility ------------------------------------------------------------------------------

AXE_SOURCE_PATH = E2E_DIR.parents[1] / "static" / "vendor" / "axe.min.js"
AXE_FAILING_IMPACTS = ("critical", "serious")
# preload: false keeps axe from injecting a <style> of its own (the CSP would refuse it and the
# page would report a console error that is axe's, not the panel's).
AXE_RUN = """async (impacts) => {
  const result = await window.axe.run(document, {preload: false, resultTypes: ["violations"]});
  return result.violations.filter(v => impacts.includes(v.impact)).map(v =>
    `${v.impact} ${v.id}: ${v.help} -> ${v.nodes.slice(0, 5).map(n => n.target.join(" ")).join(" | ")}`);
}"""


@functools.cache
def _axe_source() -> str:
    return AXE_SOURCE_PATH.read_text(encoding="utf-8")


def axe_violations(page) -> list[str]:
    """Critical and serious axe-core violations of the page as it is now. The script is
    evaluated through the DevTools protocol, which the page's CSP does not govern."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(_axe_source())
    return page.evaluate(AXE_RUN, list(AXE_FAILING_IMPACTS))


def assert_accessible(page, state: str) -> None:
    violations = axe_violations(page)
    assert violations == [], f"axe-core on {state} ({page.url}):\n" + "\n".join(violations)


class Shots:
    """Numbered screenshots of one test: test-artifacts/<test>/<nn>-<page>.png. Every page
    state taken on the panel (not the merchant's stand-in site) is checked with axe-core."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.count = 0
        self.last: Path | None = None
        self.pages: list = []  # every page opened through ``open_page``, for failure shots
        self.problems: list[PageProblems] = []  # and what each one saw
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True, exist_ok=True)

    def take(self, page, name: str) -> Path:
        self.count += 1
        path = self.folder / f"{self.count:02d}-{re.sub(r'[^a-z0-9-]+', '-', name.lower()).strip('-')}.png"
        page.screenshot(path=str(path), full_page=True)
        self.last = path
        if urlsplit(page.url).hostname != MERCHANT_HOST:
            assert_accessible(page, name)
        return path


@dataclass
class PageProblems:
    """Console errors, uncaught exceptions, failed requests and HTTP errors seen by a page."""

    console: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    bad_responses: list[str] = field(default_factory=list)
    # The page's network and navigation history, printed with a failure.
    log: list[str] = field(default_factory=list)

    def attach(self, page) -> None:
        started = time.monotonic()
        navigations = [0]  # main-frame navigations started so far
        leaving = [False]  # a main-frame navigation has started and its document has not committed
        seen_at: dict[int, tuple[int, bool]] = {}  # id(request) -> (navigations, leaving) when it started

        def note(text: str) -> None:
            self.log.append(f"{time.monotonic() - started:7.2f}s {text}")

        def on_request(req) -> None:
            seen_at[id(req)] = (navigations[0], leaving[0])
            if req.is_navigation_request() and req.frame == page.main_frame:
                navigations[0] += 1
                leaving[0] = True
            note(f"-> {req.method} {req.url}")

        def on_navigated(frame) -> None:
            if frame == page.main_frame:
                leaving[0] = False
                note(f"committed {frame.url}")

        def on_failed(req) -> None:
            note(f"xx {req.method} {req.url} {req.failure}")
            if req.failure == "net::ERR_ABORTED" and left_behind(req, *seen_at.get(id(req), (navigations[0], False))):
                return
            self.failed_requests.append(f"{req.method} {req.url}: {req.failure}")

        def left_behind(req, started_at: int, started_leaving: bool) -> bool:
            # Leaving a page cancels what it was still loading (a favicon, a chart's fetch, a CSS
            # background the old document asked for after the test had already moved on): that
            # is the test moving on, not the page failing. Chromium also cancels its own favicon
            # fetch at times (a page closed or a favicon already cached): a favicon that is
            # missing still shows up as a bad response. Anything else counts.
            if req.url.endswith("/favicon.svg"):
                return True
            if req.is_navigation_request():
                return navigations[0] > started_at + 1
            return started_leaving or navigations[0] > started_at

        page.on("console", lambda msg: msg.type == "error" and self.console.append(f"{msg.text} @ {msg.location}"))
        page.on("pageerror", lambda exc: self.page_errors.append(str(exc)))
        page.on("response", lambda resp: resp.status >= 400 and self.bad_responses.append(f"{resp.status} {resp.url}"))
        page.on("request", on_request)
        page.on("requestfailed", on_failed)
        page.on("requestfinished", lambda req: note(f"<- {req.method} {req.url}"))
        page.on("framenavigated", on_navigated)
        page.on("domcontentloaded", lambda p: note(f"domcontentloaded {p.url}"))
        page.on("load", lambda p: note(f"load {p.url}"))

    def aborted(self) -> list[str]:
        """Every cancelled request in the log, however long ago (the failure report shows the tail)."""
        return [line for line in self.log if " xx " in line]

    def all(self) -> list[str]:
        return self.console + self.page_errors + self.failed_requests + self.bad_responses

    def clear(self) -> None:
        for bucket in (self.console, self.page_errors, self.failed_requests, self.bad_responses):
            bucket.clear()


@pytest.fixture
def shots(request) -> Shots:
    # One browser only: "test_x[chromium]" is saved as "test_x", "test_y[chromium-phone]" as "test_y-phone".
    callspec = getattr(request.node, "callspec", None)
    params = [part for part in (callspec.id.split("-") if callspec else []) if part != "chromium"]
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", "-".join([request.node.originalname, *params]))
    recorder = Shots(ARTIFACTS_DIR / name)
    request.node._e2e_shots = recorder
    return recorder


@pytest.fixture
def open_page(new_context, shots):
    """A page in a fresh browser context (own cookies, like another person's browser), watched
    for problems: ``page, problems = open_page(viewport=PHONE, permissions=[...])``."""

    def _open(**context_kwargs):
        context_kwargs.setdefault("viewport", DESKTOP)
        context = new_context(**context_kwargs)
        page = context.new_page()
        problems = PageProblems()
        problems.attach(page)
        shots.pages.append(page)
        shots.problems.append(problems)
        return page, problems

    return _open


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    recorder: Shots | None = getattr(item, "_e2e_shots", None)
    if recorder is None or not report.failed or report.when != "call":
        return
    for page in recorder.pages:
        try:
            if not page.is_closed():
                recorder.take(page, "failure")
        except Exception as exc:  # the page may be the reason of the failure; say so, keep going
            report.sections.append(("e2e", f"could not screenshot {page.url}: {exc}"))
    for page, problems in zip(recorder.pages, recorder.problems, strict=True):
        report.sections.append(
            (f"e2e page {page.url}", "\n".join([*problems.all(), *problems.aborted(), *problems.log[-40:]]))
        )
    if recorder.last is not None:
        shown = os.path.relpath(recorder.last, Path.cwd())
        report.sections.append(("e2e screenshots", f"last screenshot: {shown}\nall: {recorder.folder}"))


# --- charts ------------------------------------------------------------------------------------

# Chart.js state of a canvas and how much of it is painted in the series' colour: proof that the
# chart drew its data, not only its axes.
CHART_STATE = """([id, rgb]) => {
  const canvas = document.getElementById(id);
  if (!canvas) { return null; }
  const chart = window.Chart ? window.Chart.getChart(canvas) : undefined;
  const box = canvas.getBoundingClientRect();
  let inked = 0, coloured = 0;
  if (chart && canvas.width && canvas.height) {
    const px = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
    for (let i = 0; i < px.length; i += 4) {
      if (px[i + 3] === 0) { continue; }
      inked++;
      const near = Math.abs(px[i] - rgb[0]) + Math.abs(px[i + 1] - rgb[1]) + Math.abs(px[i + 2] - rgb[2]);
      if (near < 30 && px[i + 3] > 200) { coloured++; }
    }
  }
  return {empty: canvas.getAttribute("data-empty"), width: box.width, height: box.height,
          values: chart ? chart.data.datasets[0].data.map(Number) : null, inked: inked, coloured: coloured};
}"""
# static/js/charts.js colours.
SERIES_RGB = {
    "commission": (0x15, 0x73, 0x47),
    "new_trials": (0x1F, 0x5F, 0xD6),
    "new_subscriptions": (0x7A, 0x3F, 0xD1),
    "unique_clicks": (0xD9, 0x48, 0x0F),
}


def chart_state(page, canvas_id: str, rgb: tuple[int, int, int]) -> dict:
    return page.evaluate(CHART_STATE, [canvas_id, list(rgb)])


def wait_for_chart(page, canvas_id: str, rgb: tuple[int, int, int]) -> dict:
    """Wait until the chart has drawn its series (Chart.js animates for 250 ms)."""
    page.wait_for_function(
        f"([id, rgb]) => {{ const s = ({CHART_STATE})([id, rgb]); return s && s.coloured > 0; }}",
        arg=[canvas_id, list(rgb)],
    )
    return chart_state(page, canvas_id, rgb)


# --- people and systems around the panel ---------------------------------------------------------


# static/js/dashboard.js puts the chosen period in the URL (history.replaceState) once loaded.
DASHBOARD = re.compile(r"/dashboard/([?#].*)?$")


def arrive(page, url) -> None:
    """Wait until the page is at ``url`` (glob or regex) and loaded. (What it fetches after
    loading, a chart's data or the favicon, may be cut short by the next step: the problems
    watcher ignores only that; the page test waits for every page to go quiet.)"""
    page.wait_for_url(url)


def log_in(page, email: str, password: str = PASSWORD) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    arrive(page, DASHBOARD)


class Merchant:
    """The merchant's backend: signs each event with the shared secret and posts it to the
    events API of the live server, as docs/reference.md "Merchant events API" says."""

    def __init__(self, base_url: str, secret: str) -> None:
        self.url = base_url + "/api/v1/events"
        self.secret = secret
        self.sent = 0

    def send(self, type_: str, data: dict) -> dict:
        self.sent += 1
        body = json.dumps(
            {
                "id": f"evt_e2e_{time.time_ns()}_{self.sent}",
                "type": type_,
                "created": timezone.now().isoformat().replace("+00:00", "Z"),
                "data": data,
            }
        ).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Partner-Signature": signature_header(secret=self.secret, body=body),
        }
        response = requests.post(self.url, data=body, headers=headers, timeout=30)
        assert response.status_code == 201, f"{type_}: {response.status_code} {response.text}"
        return response.json()

    def signed_up(self, customer_id: str, click_id: str | None, email: str) -> dict:
        return self.send("customer.signed_up", {"customer_id": customer_id, "click_id": click_id, "email": email})

    def paid(self, payment_id: str, customer_id: str, amount: str, *, plan: str = "B", seats: int = 1) -> dict:
        data = {
            "payment_id": payment_id,
            "customer_id": customer_id,
            "amount": amount,
            "currency": "USD",
            "plan": plan,
            "seats": seats,
        }
        return self.send("payment.succeeded", data)


@pytest.fixture
def merchant(live_server, settings) -> Merchant:
    return Merchant(live_server.url, settings.EVENTS_SIGNING_SECRET)


@pytest.fixture
def fake_paypal(settings):
    """PayPal's Payouts API as devtools/fake_paypal.py plays it, in this process; the live
    server's gateway (the real paypalrestsdk client) talks to it over HTTP."""
    fake = FakePayPal()
    settings.PAYPAL_API_BASE = fake.start()
    settings.PAYPAL_CLIENT_ID = fake.client_id
    settings.PAYPAL_CLIENT_SECRET = fake.client_secret
    yield fake
    fake.stop()


@pytest.fixture
def visit(open_page, merchant_site):
    """A visitor opens a tracking link in a fresh browser: returns (page, click id from the
    merchant page's URL)."""

    def _visit(url: str, page=None):
        if page is None:
            page, _ = open_page()
        page.goto(url)
        landed = urlsplit(page.url)
        assert landed.hostname == MERCHANT_HOST, page.url
        click_ids = parse_qs(landed.query).get("aff_click", [])
        assert len(click_ids) == 1, page.url
        return page, click_ids[0]

    return _visit


@pytest.fixture(scope="session")
def base_url() -> None:
    """Shadows pytest-playwright's fallback ``base_url`` fixture, an instance method that pytest
    deprecates (PytestRemovedIn10Warning); the pages get the live server's URL through
    ``browser_context_args`` instead."""
    return None


def current_totp(email: str) -> str:
    """The code an authenticator app would show now for the user's TOTP device."""
    from django_otp.oath import totp
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.filter(user__email=email).latest("pk")
    return f"{totp(device.bin_key, device.step, device.t0, device.digits, device.drift):06d}"


def follow_confirmation_link(page) -> None:
    """Open the link of the newest sign-up confirmation email, as its reader would (issue 17:
    sign-up answers alike for every email; the emailed link opens the panel)."""
    from urllib.parse import urlsplit

    from django.core import mail

    link = next(line for line in mail.outbox[-1].body.splitlines() if "/accounts/confirm/" in line)
    page.goto(urlsplit(link.strip()).path)


def enrol_totp(admin, email: str) -> None:
    """Staff who approve payouts enrol an authenticator app first (issue 22)."""
    admin.wait_for_load_state("networkidle")  # the page's own scripts finish loading first
    admin.goto("/admin/2fa/setup/")
    admin.get_by_label("6-digit code from your authenticator app").fill(current_totp(email))
    admin.get_by_role("button", name="Confirm and continue").click()
    admin.wait_for_load_state("networkidle")
