"""Access control: every URL of the panel, the partner JSON API and the admin visited as
anonymous, partner A, partner B, staff without the payout permission and a superuser; A never
sees B's data; CSRF on every state-changing form; login and password-reset throttling; cookie
flags and security headers under the production settings; no inline script or style."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
from django.contrib import admin
from django.core.files.base import ContentFile
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from commissions.models import MerchantEvent
from partners.services import api_token_create
from payouts.models import Payout
from tests.conftest import VerifiedClient, with_totp_device
from tests.factories import (
    ClickFactory,
    CommissionEntryFactory,
    CreativeFactory,
    LinkFactory,
    PartnerFactory,
    PaymentFactory,
    PayoutFactory,
    ReferralFactory,
    StaffFactory,
    UserFactory,
)
from tests.reliability.conftest import ROOT, add_commission
from tracking.models import Creative

pytestmark = pytest.mark.django_db

ROLES = ("anonymous", "partner_b", "staff", "superuser", "partner_a")  # A last: its POSTs change A's data


@dataclass
class World:
    a: object
    b: object
    staff: object
    superuser: object
    a_link: object
    b_link: object
    a_spare_link: object
    a_referral: object
    b_referral: object
    a_payout: object
    b_payout: object
    creative: object
    b_token: str
    clients: dict

    def b_markers(self) -> list[str]:
        """Strings that identify B and must never reach A."""
        return [
            self.b.referral_code,
            self.b_link.code,
            self.b.name,
            self.b.user.email,
            self.b.paypal_email,
            self.b_referral.customer_id,
            "b***@bravo-customers.example",
            "77.77",
            f"/referrals/{self.b_referral.pk}/",
            f"/resources/links/{self.b_link.pk}/",
        ]


def _png() -> ContentFile:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 3), "red").save(buffer, format="PNG")
    return ContentFile(buffer.getvalue(), name="banner.png")


@pytest.fixture
def world(db, settings, tmp_path, support_staff) -> World:
    settings.MEDIA_ROOT = tmp_path
    a = PartnerFactory(
        name="Alpha Person",
        referral_code="alphacode1",
        user__email="alpha.partner@example.com",
        paypal_email="alpha.pp@example.com",
    )
    b = PartnerFactory(
        name="Bravo Unique Person",
        referral_code="bravocode7",
        user__email="bravo.partner@example.net",
        paypal_email="bravo.paypal@example.net",
    )
    a_link = LinkFactory(partner=a, code="alpha-link-x1")
    b_link = LinkFactory(partner=b, code="bravo-link-q7", description="Bravo secret campaign")
    a_referral = ReferralFactory(
        click=ClickFactory(link=a_link), customer_id="cus_alpha_1", email="alice@alpha-customers.example"
    )
    b_referral = ReferralFactory(
        click=ClickFactory(link=b_link), customer_id="cus_bravo_secret", email="bob@bravo-customers.example"
    )
    for referral in (a_referral, b_referral):
        CommissionEntryFactory(
            payment=PaymentFactory(referral=referral, amount=Decimal("450.00")), amount=Decimal("90.00")
        )
    a_payout = PayoutFactory(partner=a, amount=Decimal("12.34"), status=Payout.Status.PAID)
    b_payout = PayoutFactory(partner=b, amount=Decimal("77.77"), status=Payout.Status.PENDING)
    creative = CreativeFactory(kind=Creative.Kind.BANNER, title="Banner", image=_png())
    # With a confirmed TOTP device: the payout decisions' two-factor gate (issue 22) passes.
    superuser = with_totp_device(UserFactory(email="root@example.com", is_staff=True, is_superuser=True))
    b_token = api_token_create(partner=b, name="bravo script").secret
    api_token_create(partner=a, name="alpha script")
    users = {"partner_a": a.user, "partner_b": b.user, "staff": support_staff, "superuser": superuser}
    clients = {role: VerifiedClient() for role in ROLES}
    for role, user in users.items():
        clients[role].force_login(user)
    return World(
        a=a,
        b=b,
        staff=support_staff,
        superuser=superuser,
        a_link=a_link,
        b_link=b_link,
        a_spare_link=LinkFactory(partner=a, code="alpha-spare-1"),
        a_referral=a_referral,
        b_referral=b_referral,
        a_payout=a_payout,
        b_payout=b_payout,
        creative=creative,
        b_token=b_token,
        clients=clients,
    )


# Expected status per role, in ROLES order: anonymous, partner B, staff (no payout permission),
# superuser, partner A. The panel is for partners only: staff and superusers get 403 there.
PANEL = (302, 200, 403, 403, 200)
OWN_OF_A = (302, 404, 403, 403, 200)
API = (401, 200, 401, 401, 200)
PUBLIC = (200, 200, 200, 200, 200)
ANONYMOUS_ONLY = (200, 302, 302, 302, 302)
ADMIN_VIEW = (302, 302, 200, 200, 302)


def _panel_urls(w: World) -> list[tuple[str, str, str, dict, tuple]]:
    """(label, method, path, data, expected per role)."""
    get = [
        ("home", "/", (302,) * 5),
        ("health", "/healthz", PUBLIC),
        ("login", "/accounts/login/", ANONYMOUS_ONLY),
        ("sign-up", "/accounts/signup/", ANONYMOUS_ONLY),
        ("password reset", "/accounts/password_reset/", PUBLIC),
        ("password reset sent", "/accounts/password_reset/done/", PUBLIC),
        ("password reset complete", "/accounts/reset/done/", PUBLIC),
        ("dashboard", "/dashboard/", PANEL),
        ("resources", "/resources/", PANEL),
        ("referrals", "/referrals/", PANEL),
        ("referrals CSV", "/referrals/export.csv", PANEL),
        ("commissions", "/commissions/", PANEL),
        ("commissions CSV", "/commissions/export.csv", PANEL),
        ("performance", "/performance/", PANEL),
        ("performance CSV", "/performance/export.csv", PANEL),
        ("payouts", "/payouts/", PANEL),
        ("payouts CSV", "/payouts/export.csv", PANEL),
        ("settings", "/settings/", PANEL),
        ("A's referral", f"/referrals/{w.a_referral.pk}/", OWN_OF_A),
        ("A's link", f"/resources/links/{w.a_link.pk}/", OWN_OF_A),
        ("creative download", f"/resources/creatives/{w.creative.pk}/download/", PANEL),
        ("creative image (embedded on partner sites)", f"/creatives/{w.creative.pk}/image", PUBLIC),
        ("tracking link", f"/r/{w.a_link.code}", (302,) * 5),
        ("API summary", "/api/v1/partner/summary", API),
        ("API trends", "/api/v1/partner/trends", API),
        ("API links", "/api/v1/partner/links", API),
        ("OpenAPI document", "/api/v1/openapi.json", PUBLIC),
        ("API docs", "/api/v1/docs", PUBLIC),
        ("events API (GET)", "/api/v1/events", (405,) * 5),
    ]
    post = [
        (
            "toggle A's link",
            f"/resources/links/{w.a_link.pk}/toggle/",
            {"action": "disable"},
            (302, 404, 403, 403, 302),
        ),
        ("delete A's link", f"/resources/links/{w.a_spare_link.pk}/delete/", {}, (302, 404, 403, 403, 302)),
        ("withdrawal request", "/payouts/request/", {}, (302, 302, 403, 403, 302)),
        (
            "link builder",
            "/resources/",
            {"destination": "https://crazycall.com/x", "trial_days": "14"},
            (302, 302, 403, 403, 302),
        ),
        # Post/redirect/get: the token is shown by the page the POST redirects to.
        ("settings: API token", "/settings/", {"action": "token_create", "token-name": "n"}, (302, 302, 403, 403, 302)),
        ("events API (unsigned)", "/api/v1/events", {}, (401,) * 5),
    ]
    return [(label, "get", path, {}, expected) for label, path, expected in get] + [
        (label, "post", path, data, expected) for label, path, data, expected in post
    ]


def _admin_urls(w: World) -> list[tuple[str, str, str, dict, tuple]]:
    rows = [("admin index", "get", "/admin/", {}, ADMIN_VIEW)]
    for model in admin.site._registry:
        opts = model._meta
        rows.append(
            (
                f"admin {opts.model_name} list",
                "get",
                reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"),
                {},
                ADMIN_VIEW,
            )
        )
        obj = model._default_manager.order_by("pk").first()
        if obj is not None:
            change = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
            rows.append((f"admin {opts.model_name} change page", "get", change, {}, ADMIN_VIEW))
    payout = w.b_payout.pk
    rows += [
        ("admin payout reject form", "get", f"/admin/payouts/payout/{payout}/reject/", {}, (302, 302, 403, 200, 302)),
        ("admin payout check", "post", f"/admin/payouts/payout/{payout}/check/", {}, (302, 302, 403, 302, 302)),
        (
            "admin payout mark failed form",
            "get",
            f"/admin/payouts/payout/{payout}/mark-failed/",
            {},
            (302, 302, 403, 200, 302),
        ),
        ("admin payout approve", "post", f"/admin/payouts/payout/{payout}/approve/", {}, (302, 302, 403, 302, 302)),
    ]
    return rows


def _visit(w: World, role: str, method: str, path: str, data: dict):
    client = w.clients[role]
    return client.get(path) if method == "get" else client.post(path, data)


def test_every_url_answers_each_role_with_the_expected_status(world, tried):
    rows = _panel_urls(world) + _admin_urls(world)
    failures = []
    for label, method, path, data, expected in rows:
        for role, status in zip(ROLES, expected, strict=True):
            actual = _visit(world, role, method, path, data).status_code
            if actual != status:
                failures.append(f"{label} {method.upper()} {path} as {role}: {actual}, expected {status}")
    tried(f"{len(rows)} URLs × {len(ROLES)} roles = {len(rows) * len(ROLES)} requests")
    assert failures == []


def test_staff_without_the_payout_permission_cannot_approve_a_payout_by_any_route(world, tried):
    staff = world.clients["staff"]
    payout = world.b_payout.pk
    answers = [
        staff.post(f"/admin/payouts/payout/{payout}/approve/").status_code,
        staff.post(f"/admin/payouts/payout/{payout}/reject/", {"reason": "no"}).status_code,
        staff.post("/admin/payouts/payout/", {"action": "approve_and_send", "_selected_action": [payout]}).status_code,
        staff.post(
            "/admin/payouts/payout/", {"action": "reject", "_selected_action": [payout], "apply": "1", "reason": "x"}
        ).status_code,
    ]
    tried("4 approval/rejection routes")
    assert answers[:2] == [403, 403]
    assert all(status in (200, 302, 403) for status in answers[2:])
    assert Payout.objects.get(pk=payout).status == Payout.Status.PENDING


def _all_get_pages_of(w: World) -> list[str]:
    return [path for _, method, path, _, expected in _panel_urls(w) if method == "get" and expected[4] == 200]


def test_partner_a_never_sees_partner_bs_data_on_any_page_export_or_api_answer(world, tried):
    client = world.clients["partner_a"]
    pages = _all_get_pages_of(world)
    pages += [
        f"/referrals/?link={world.b_link.pk}",
        f"/referrals/export.csv?link={world.b_link.pk}",
        f"/performance/?link={world.b_link.pk}",
        "/api/v1/partner/links?start=2020-01-01",
    ]
    leaks = []
    for path in pages:
        response = client.get(path)
        body = b"".join(response.streaming_content) if response.streaming else response.content
        text = body.decode("utf-8", "replace")
        leaks += [f"{path}: {marker}" for marker in world.b_markers() if marker in text]
    tried(f"{len(pages)} pages, {len(world.b_markers())} markers of B")
    assert leaks == []


def test_partner_a_trying_bs_ids_directly_gets_404_and_changes_nothing(world, tried):
    client = world.clients["partner_a"]
    b_link = world.b_link
    answers = {
        "B's referral": client.get(f"/referrals/{world.b_referral.pk}/").status_code,
        "B's link": client.get(f"/resources/links/{b_link.pk}/").status_code,
        "disable B's link": client.post(f"/resources/links/{b_link.pk}/toggle/", {"action": "disable"}).status_code,
        "delete B's link": client.post(f"/resources/links/{b_link.pk}/delete/").status_code,
        "revoke B's token": client.post(
            "/settings/", {"action": "token_revoke", "token_id": world.b.api_tokens.get().pk}
        ).status_code,
        "B's payout in the admin": client.get(f"/admin/payouts/payout/{world.b_payout.pk}/change/").status_code,
    }
    tried(f"{len(answers)} direct tries")
    assert answers == {
        "B's referral": 404,
        "B's link": 404,
        "disable B's link": 404,
        "delete B's link": 404,
        "revoke B's token": 302,  # "No such active token." — B's token stays active
        "B's payout in the admin": 302,  # to the admin login
    }
    b_link.refresh_from_db()
    assert b_link.is_active
    assert world.b.api_tokens.get().revoked_at is None
    assert Payout.objects.get(pk=world.b_payout.pk).status == Payout.Status.PENDING


def test_a_bearer_token_reads_only_its_own_partners_data(world, tried):
    client = Client()
    summary = client.get("/api/v1/partner/summary", HTTP_AUTHORIZATION=f"Bearer {world.b_token}")
    links = client.get("/api/v1/partner/links", HTTP_AUTHORIZATION=f"Bearer {world.b_token}")
    wrong = client.get("/api/v1/partner/summary", HTTP_AUTHORIZATION="Bearer pp_not-a-real-token")
    tried("3 API calls")
    assert summary.status_code == 200
    assert {link["code"] for link in links.json()} == {"bravocode7", "bravo-link-q7"}
    assert wrong.status_code == 401


# --- CSRF -------------------------------------------------------------------------------------------------
def _csrf_forms(w: World) -> list[tuple[str, str, str, dict]]:
    """(label, who, path, data) for every state-changing form."""
    payout = w.b_payout.pk
    return [
        (
            "sign-up",
            "anonymous",
            "/accounts/signup/",
            {"name": "x", "email": "csrf@example.com", "password": "p", "accept_terms": "on"},
        ),
        (
            "login",
            "anonymous",
            "/accounts/login/",
            {"username": "alpha.partner@example.com", "password": "correct-horse-battery"},
        ),
        ("password reset", "anonymous", "/accounts/password_reset/", {"email": "alpha.partner@example.com"}),
        (
            "admin login",
            "anonymous",
            "/admin/login/",
            {"username": "root@example.com", "password": "correct-horse-battery"},
        ),
        ("logout", "partner_a", "/accounts/logout/", {}),
        ("settings: profile", "partner_a", "/settings/", {"action": "profile", "profile-name": "Hijacked"}),
        ("settings: password", "partner_a", "/settings/", {"action": "password"}),
        (
            "settings: PayPal email",
            "partner_a",
            "/settings/",
            {"action": "paypal", "paypal-paypal_email": "evil@example.com"},
        ),
        ("settings: API token", "partner_a", "/settings/", {"action": "token_create", "token-name": "evil"}),
        ("settings: revoke token", "partner_a", "/settings/", {"action": "token_revoke", "token_id": "1"}),
        ("link builder", "partner_a", "/resources/", {"destination": "https://crazycall.com/", "trial_days": "14"}),
        ("link toggle", "partner_a", f"/resources/links/{w.a_link.pk}/toggle/", {"action": "disable"}),
        ("link delete", "partner_a", f"/resources/links/{w.a_spare_link.pk}/delete/", {}),
        ("withdrawal request", "partner_a", "/payouts/request/", {}),
        ("admin approve", "superuser", f"/admin/payouts/payout/{payout}/approve/", {}),
        ("admin reject", "superuser", f"/admin/payouts/payout/{payout}/reject/", {"reason": "evil"}),
        ("admin check with PayPal", "superuser", f"/admin/payouts/payout/{payout}/check/", {}),
        ("admin mark failed", "superuser", f"/admin/payouts/payout/{payout}/mark-failed/", {"reason": "evil"}),
        (
            "admin action",
            "superuser",
            "/admin/payouts/payout/",
            {"action": "approve_and_send", "_selected_action": [payout]},
        ),
        ("admin partner edit", "superuser", f"/admin/partners/partner/{w.a.pk}/change/", {"name": "evil"}),
    ]


def test_every_state_changing_form_refuses_a_post_without_the_csrf_token(world, tried):
    users = {"partner_a": world.a.user, "superuser": world.superuser}
    refused = {}
    for label, who, path, data in _csrf_forms(world):
        client = Client(enforce_csrf_checks=True)
        if who in users:
            client.force_login(users[who])
        refused[label] = client.post(path, data).status_code
    tried(f"{len(refused)} forms posted without a token")
    assert refused == dict.fromkeys(refused, 403)
    world.a.refresh_from_db()
    world.a_link.refresh_from_db()
    assert (world.a.name, world.a.paypal_email, world.a_link.is_active) == (
        "Alpha Person",
        "alpha.pp@example.com",
        True,
    )
    assert Payout.objects.get(pk=world.b_payout.pk).status == Payout.Status.PENDING


def test_the_same_posts_with_the_csrf_token_get_past_the_check(world, tried):
    """The control: the 403s above are the CSRF check, not something else."""
    users = {"partner_a": world.a.user, "superuser": world.superuser}
    answers = {}
    for label, who, path, data in _csrf_forms(world):
        client = Client(enforce_csrf_checks=True)
        if who in users:
            client.force_login(users[who])
        client.get("/accounts/password_reset/")  # any page with a form sets the CSRF cookie
        token = client.cookies["csrftoken"].value
        answers[label] = client.post(path, {**data, "csrfmiddlewaretoken": token}).status_code
    tried(f"{len(answers)} forms posted with a token")
    assert all(status != 403 for status in answers.values()), answers


# --- throttling ---------------------------------------------------------------------------------------------
def test_the_login_form_locks_out_after_repeated_failures_even_for_the_right_password(world, settings, tried):
    client = Client(REMOTE_ADDR="198.51.100.20")
    failures = [
        client.post("/accounts/login/", {"username": "alpha.partner@example.com", "password": f"wrong{n}"}).status_code
        for n in range(settings.AXES_FAILURE_LIMIT)
    ]
    right = client.post(
        "/accounts/login/", {"username": "alpha.partner@example.com", "password": "correct-horse-battery"}
    )
    tried(f"{settings.AXES_FAILURE_LIMIT + 1} login attempts")
    assert failures[:-1] == [200] * (settings.AXES_FAILURE_LIMIT - 1)
    assert right.status_code == 429
    assert "_auth_user_id" not in client.session
    # Another address is not locked out of the same account (no denial of service by a stranger).
    other = Client(REMOTE_ADDR="198.51.100.99")
    assert (
        other.post(
            "/accounts/login/", {"username": "alpha.partner@example.com", "password": "correct-horse-battery"}
        ).status_code
        == 302
    )


def test_the_password_reset_form_is_limited_per_hour(world, settings, mailoutbox, tried):
    client = Client(REMOTE_ADDR="198.51.100.30")
    limit = settings.PASSWORD_RESET_LIMIT_PER_HOUR
    answers = [
        client.post("/accounts/password_reset/", {"email": "alpha.partner@example.com"}).status_code
        for _ in range(limit + 2)
    ]
    tried(f"{limit + 2} reset requests")
    assert answers == [302] * limit + [429, 429]
    assert len(mailoutbox) == limit


# --- production settings: cookies and headers ---------------------------------------------------------------
_PRODUCTION_KEYS = [
    "SESSION_COOKIE_SECURE",
    "SESSION_COOKIE_HTTPONLY",
    "SESSION_COOKIE_SAMESITE",
    "CSRF_COOKIE_SECURE",
    "CSRF_COOKIE_SAMESITE",
    "SECURE_SSL_REDIRECT",
    "SECURE_PROXY_SSL_HEADER",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SECURE_REDIRECT_EXEMPT",
    "X_FRAME_OPTIONS",
    "SECURE_REFERRER_POLICY",
    "SECURE_CONTENT_TYPE_NOSNIFF",
    "SECURE_CROSS_ORIGIN_OPENER_POLICY",
    "CONTENT_SECURITY_POLICY",
    "DEBUG",
]


@pytest.fixture(scope="module")
def production_settings() -> dict:
    """The security settings exactly as config/settings.py makes them with DEBUG off (read in a
    subprocess, so nothing of the test environment leaks in)."""
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("DEBUG", "SECRET_KEY", "EVENTS_SIGNING_SECRET")},
        "DEBUG": "false",
        "SECRET_KEY": "p" * 60,
        "EVENTS_SIGNING_SECRET": "whsec_" + "q" * 32,
        "ALLOWED_HOSTS": "partners.example.com,testserver",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        # Production refuses to start without these (issue 17): a real mail backend, a shared
        # cache; and X-Forwarded-Proto is read only behind a proxy.
        "EMAIL_URL": "smtp://127.0.0.1:25",
        "REDIS_URL": os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0",
        "TRUSTED_PROXY_COUNT": "1",
    }
    script = (
        "import json, django; django.setup(); from django.conf import settings; "
        f"print(json.dumps({{k: getattr(settings, k) for k in {_PRODUCTION_KEYS!r}}}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout.strip().splitlines()[-1])
    assert values.pop("DEBUG") is False
    values["SECURE_PROXY_SSL_HEADER"] = tuple(values["SECURE_PROXY_SSL_HEADER"])
    return values


def _cookie_flags(morsel) -> dict:
    return {"secure": bool(morsel["secure"]), "httponly": bool(morsel["httponly"]), "samesite": morsel["samesite"]}


def test_under_production_settings_session_and_csrf_cookies_are_secure_and_samesite(world, production_settings, tried):
    with override_settings(**production_settings):
        client = Client()
        page = client.get("/accounts/login/", secure=True)
        login = client.post(
            "/accounts/login/",
            {"username": "alpha.partner@example.com", "password": "correct-horse-battery"},
            secure=True,
        )
    tried("2 requests under DEBUG=false settings")
    assert page.status_code == 200 and login.status_code == 302
    assert _cookie_flags(page.cookies["csrftoken"]) == {"secure": True, "httponly": False, "samesite": "Lax"}
    assert _cookie_flags(login.cookies["sessionid"]) == {"secure": True, "httponly": True, "samesite": "Lax"}


def test_under_production_settings_http_is_redirected_to_https_except_the_health_check(
    world, production_settings, tried
):
    with override_settings(**production_settings):
        client = Client()
        plain = client.get("/dashboard/")
        health = client.get("/healthz")
        proxied = client.get("/accounts/login/", HTTP_X_FORWARDED_PROTO="https")
    tried("3 requests")
    assert plain.status_code == 301 and plain["Location"] == "https://testserver/dashboard/"
    assert health.status_code == 200
    assert proxied.status_code == 200


def _script_src(csp: str) -> str:
    directives = {part.strip().split(" ", 1)[0]: part.strip() for part in csp.split(";") if part.strip()}
    return directives.get("script-src", directives.get("default-src", ""))


def test_under_production_settings_every_page_has_csp_without_unsafe_inline_hsts_frame_and_referrer_policies(
    world, production_settings, tried
):
    paths = [*_all_get_pages_of(world), "/accounts/login/", "/admin/", "/admin/payouts/payout/"]
    problems = []
    with override_settings(**production_settings):
        clients = {"partner_a": Client(), "superuser": Client()}
        clients["partner_a"].force_login(world.a.user)
        clients["superuser"].force_login(world.superuser)
        for path in paths:
            client = clients["superuser" if path.startswith("/admin/") else "partner_a"]
            response = client.get(path, secure=True)
            headers = response.headers
            csp = headers.get("Content-Security-Policy", "")
            script_src = _script_src(csp)
            if response.status_code not in (200, 302):
                problems.append(f"{path}: {response.status_code}")
            if not csp or "'unsafe-inline'" in script_src or "'unsafe-eval'" in script_src or "*" in script_src:
                problems.append(f"{path}: script policy {script_src!r}")
            if "frame-ancestors 'none'" not in csp:
                problems.append(f"{path}: no frame-ancestors 'none'")
            if headers.get("X-Frame-Options") != "DENY":
                problems.append(f"{path}: X-Frame-Options {headers.get('X-Frame-Options')}")
            if headers.get("Referrer-Policy") != "strict-origin-when-cross-origin":
                problems.append(f"{path}: Referrer-Policy {headers.get('Referrer-Policy')}")
            if headers.get("Strict-Transport-Security") != "max-age=31536000; includeSubDomains; preload":
                problems.append(f"{path}: HSTS {headers.get('Strict-Transport-Security')}")
            if headers.get("X-Content-Type-Options") != "nosniff":
                problems.append(f"{path}: nosniff missing")
    tried(f"{len(paths)} pages")
    assert problems == []


# --- no inline script or style ----------------------------------------------------------------------------------
_SCRIPT_TAG = re.compile(r"<script\b([^>]*)>", re.IGNORECASE)
_STYLE_ATTR = re.compile(r"""\sstyle\s*=\s*["']""", re.IGNORECASE)
_HANDLER_ATTR = re.compile(r"""<[^>]+\son[a-z]+\s*=\s*["']""", re.IGNORECASE)


def _inline_problems(html: str) -> list[str]:
    problems = []
    for match in _SCRIPT_TAG.finditer(html):
        attributes = match.group(1)
        if "src=" not in attributes and 'type="application/json"' not in attributes:
            problems.append(f"inline <script{attributes}>")
    if _STYLE_ATTR.search(html):
        problems.append("style= attribute")
    if _HANDLER_ATTR.search(html):
        problems.append("on…= event handler attribute")
    return problems


def test_the_templates_have_no_inline_script_style_attribute_or_event_handler(tried):
    templates = sorted(Path(ROOT, "templates").rglob("*.html"))
    problems = [
        f"{path.relative_to(ROOT)}: {problem}" for path in templates for problem in _inline_problems(path.read_text())
    ]
    tried(f"{len(templates)} templates")
    assert problems == []


def test_the_rendered_panel_and_admin_pages_have_no_inline_script_or_style(world, tried):
    pages = [(p, "partner_a") for p in _all_get_pages_of(world)] + [
        ("/admin/", "superuser"),
        ("/admin/payouts/payout/", "superuser"),
        (f"/admin/payouts/payout/{world.b_payout.pk}/change/", "superuser"),
        (f"/admin/payouts/payout/{world.b_payout.pk}/reject/", "superuser"),
    ]
    problems = []
    for path, role in pages:
        response = world.clients[role].get(path)
        if response.get("Content-Type", "").startswith("text/html"):
            problems += [f"{path}: {p}" for p in _inline_problems(response.content.decode())]
    tried(f"{len(pages)} rendered pages")
    assert problems == []


def test_the_event_log_is_readable_by_staff_and_closed_to_partners_and_anonymous_visitors(world, tried):
    MerchantEvent.objects.create(
        event_id="evt_acl",
        type=MerchantEvent.Type.SUBSCRIPTION_CANCELLED,
        body="{}",
        body_sha256="0" * 64,
        created=timezone.now(),
        outcome=MerchantEvent.Outcome.NOT_REFERRED,
        response_status=201,
        response_body={},
    )
    event = MerchantEvent.objects.get(event_id="evt_acl")
    url = f"/admin/commissions/merchantevent/{event.pk}/change/"
    answers = [world.clients[role].get(url).status_code for role in ROLES]
    tried("1 event log row × 5 roles")
    assert answers == list(ADMIN_VIEW)


# --- Issue 17: what an outside tester got through -------------------------------------------------


def test_the_admin_login_lockout_holds_for_every_case_of_the_email(settings, tried):
    StaffFactory(email="root@example.com", is_superuser=True)
    client = Client()
    variants = ["root@example.com", "ROOT@example.com", "Root@Example.com", "rOOt@example.COM", "root@EXAMPLE.com"]
    for variant in variants[: settings.AXES_FAILURE_LIMIT]:
        client.post("/admin/login/", {"username": variant, "password": "wrong"})
    answers = [
        client.post("/admin/login/", {"username": v, "password": "correct-horse-battery"}).status_code for v in variants
    ]
    assert answers == [429] * len(variants)
    assert "_auth_user_id" not in client.session
    tried(f"{settings.AXES_FAILURE_LIMIT} failures in mixed case, then the right password in {len(variants)} cases")


def test_one_address_guessing_many_emails_is_locked_out(settings, tried):
    settings.LOGIN_ADDRESS_FAILURE_LIMIT = 20
    PartnerFactory(user__email="target@example.com")
    client = Client()
    for n in range(settings.LOGIN_ADDRESS_FAILURE_LIMIT):
        client.post(
            "/accounts/login/", {"username": f"guess{n}@example.com", "password": "x"}, REMOTE_ADDR="192.0.2.50"
        )
    right = {"username": "target@example.com", "password": "correct-horse-battery"}
    assert client.post("/accounts/login/", right, REMOTE_ADDR="192.0.2.50").status_code == 429
    assert client.post("/accounts/login/", right, REMOTE_ADDR="192.0.2.51").status_code == 302
    tried(f"{settings.LOGIN_ADDRESS_FAILURE_LIMIT} failed logins for different emails from one address")


def test_the_settings_page_is_no_password_oracle(settings, tried):
    partner = PartnerFactory(paypal_email="old@example.com")
    client = Client()
    client.force_login(partner.user)
    tries = settings.AXES_FAILURE_LIMIT + 7
    for n in range(tries):
        client.post(
            "/settings/",
            {"action": "paypal", "paypal-paypal_email": "evil@example.com", "paypal-current_password": f"guess{n}"},
        )
    response = client.post(
        "/settings/",
        {
            "action": "paypal",
            "paypal-paypal_email": "evil@example.com",
            "paypal-current_password": "correct-horse-battery",
        },
    )
    assert response.status_code == 429
    partner.refresh_from_db()
    assert partner.paypal_email == "old@example.com"
    tried(f"{tries} wrong current passwords, then the right one")


def test_signup_answers_alike_for_taken_and_free_emails_and_is_throttled_per_address(settings, tried):
    PartnerFactory(user__email="taken@example.com")
    client = Client()
    answers = set()
    for email in ("taken@example.com", "TAKEN@example.com", "free1@example.com", "free2@example.com"):
        response = client.post(
            "/accounts/signup/",
            {"name": "P", "email": email, "password": "a-long-unusual-passphrase", "accept_terms": "on"},
            REMOTE_ADDR="192.0.2.60",
        )
        answers.add((response.status_code, response.get("Location"), tuple(sorted(response.cookies))))
    assert len(answers) == 1
    sent = 4
    statuses = []
    for n in range(settings.SIGNUP_LIMIT_PER_HOUR):
        statuses.append(
            client.post(
                "/accounts/signup/",
                {"name": "P", "email": f"probe{n}@example.com", "password": "a-long-unusual-passphrase"},
                REMOTE_ADDR="192.0.2.60",
            ).status_code
        )
        sent += 1
    assert 429 in statuses
    tried(f"{sent} sign-ups from one address (2 spellings of a taken email, then new ones)")


def test_an_unconfirmed_email_cannot_withdraw(tried):
    partner = PartnerFactory(user__email_verified_at=None, paypal_email="pay@example.com")
    add_commission(partner, "80.00")
    client = Client()
    client.force_login(partner.user)
    client.post("/payouts/request/")
    assert not Payout.objects.filter(partner=partner).exists()
    tried("1 withdrawal request before the email was confirmed")


@pytest.mark.parametrize("credential", ["session", "token"])
def test_partner_answers_are_private_and_not_stored(world, credential, tried):
    client = Client()
    extra = {}
    if credential == "session":
        client.force_login(world.a.user)
        paths = ["/dashboard/", "/settings/", "/referrals/", "/payouts/", "/api/v1/partner/summary"]
    else:
        extra["HTTP_AUTHORIZATION"] = f"Bearer {api_token_create(partner=world.a, name='t').secret}"
        paths = ["/api/v1/partner/summary", "/api/v1/partner/trends", "/api/v1/partner/links"]
    for path in paths:
        response = client.get(path, **extra)
        assert response.status_code == 200, path
        directives = {d.strip() for d in response["Cache-Control"].split(",")}
        assert {"private", "no-store"} <= directives, path
    tried(f"{len(paths)} answers with a {credential}")


def test_x_forwarded_proto_is_ignored_in_production_without_a_proxy(tried):
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("DEBUG", "TRUSTED_PROXY_COUNT")},
        "DEBUG": "false",
        "SECRET_KEY": "p" * 60,
        "EVENTS_SIGNING_SECRET": "whsec_" + "q" * 32,
        "ALLOWED_HOSTS": "testserver",
        "EMAIL_URL": "smtp://127.0.0.1:25",
        "REDIS_URL": os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0",
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    script = (
        "import django; django.setup(); from django.test import RequestFactory; "
        "print(RequestFactory().get('/', HTTP_X_FORWARDED_PROTO='https').is_secure())"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "False"
    tried("a request claiming https through X-Forwarded-Proto, DEBUG=false, TRUSTED_PROXY_COUNT=0")


def test_a_staff_session_ends_within_twelve_hours(settings, tried):
    StaffFactory(email="ops@example.com", is_superuser=True)
    client = Client()
    client.post("/admin/login/", {"username": "ops@example.com", "password": "correct-horse-battery"})
    client.get("/admin/")
    assert 0 < client.session.get_expiry_age() <= 12 * 3600
    tried("1 admin login")
