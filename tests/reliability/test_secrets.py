"""Secrets and data: no secret in the repository or in the logs, API tokens and click IPs stored
only as hashes, customers' emails masked in every partner-facing answer. (`manage.py check
--deploy` under the production settings: tests/partners/test_configuration.py.)"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import subprocess
from decimal import Decimal

import pytest
from django.apps import apps
from django.db import connection, models
from django.test import Client

from partners.models import ApiToken
from partners.services import api_token_create
from payouts.models import Payout
from payouts.services import payout_approve, payout_request
from tests.factories import (
    ClickFactory,
    CommissionEntryFactory,
    LinkFactory,
    PartnerFactory,
    PaymentFactory,
    ReferralFactory,
)
from tests.reliability.conftest import BROWSER_UA, ROOT, paid, post_event, signed_up
from tracking.models import Click

pytestmark = pytest.mark.django_db

# Formats of real credentials: none may ever be committed.
_KEY_FORMATS = {
    "private key": r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |PGP |ENCRYPTED )?PRIVATE KEY-----",
    "AWS access key": r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",
    "GitHub token": r"\bgh[pousr]_[A-Za-z0-9]{36,}\b",
    "Slack token": r"\bxox[abprs]-[A-Za-z0-9-]{10,}",
    "Stripe live key": r"\b[sr]k_live_[0-9A-Za-z]{16,}",
    "Google API key": r"\bAIza[0-9A-Za-z_-]{35}\b",
    "PayPal access token": r"\bA21AA[A-Za-z0-9_-]{40,}",
    "JWT": r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}",
    "partner API token": r"\bpp_[A-Za-z0-9_-]{43}\b",
    # (documentation placeholders such as user:pass are not credentials)
    "URL with a password": r"\b[a-z][a-z0-9+]*://[^/\s:@'\"]+:(?!pass(?:word)?@)[^/\s@'\"$]{4,}@",
}
# A literal assigned to something named like a secret, outside the tests.
_ASSIGNED = re.compile(
    r"""(?i)\b\w*(?:secret|passw(?:or)?d|token|api_?key)\w*\b["']?\s*[:=]\s*["']([^"'\s{}$]{8,})["']"""
)
# Deliberate, documented non-secrets: DEBUG-only defaults and the fake PayPal's own credentials.
_KNOWN_NON_SECRETS = {
    "whsec_demo_signing_secret",  # EVENTS_SIGNING_SECRET default when DEBUG is on (production has none)
    "fake-client-secret",  # devtools.fake_paypal, a local fake
    "dev-only-insecure-key-change-me-",  # SECRET_KEY default when DEBUG is on
    # `manage.py demo`: tuple assignments seen by the pattern (the logins the README prints for
    # the local demo, and a fake-PayPal client id for its history).
    "admin@example.com",
    "demo@example.com",
    "demo-history",
}


def _tracked_text_files() -> list[tuple[str, str]]:
    try:
        names = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=60
        ).stdout.split(b"\0")
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    files = []
    for name in filter(None, names):
        path = ROOT / name.decode()
        if not path.is_file():
            continue
        data = path.read_bytes()
        if b"\0" in data[:8192]:
            continue  # binary (images)
        files.append((name.decode(), data.decode("utf-8", "replace")))
    return files


def test_no_credential_is_committed_to_the_repository(tried):
    files = _tracked_text_files()
    found = []
    for name, text in files:
        for what, pattern in _KEY_FORMATS.items():
            found += [f"{name}: {what}: {m.group(0)[:24]}…" for m in re.finditer(pattern, text)]
        if not name.startswith("tests/"):
            for match in _ASSIGNED.finditer(text):
                if match.group(1) not in _KNOWN_NON_SECRETS:
                    found.append(f"{name}: assigned literal {match.group(0)[:60]!r}")
    tried(f"{len(files)} tracked files × {len(_KEY_FORMATS) + 1} patterns")
    assert found == []


def test_the_environment_file_is_ignored_and_never_tracked(tried):
    tracked = {name for name, _ in _tracked_text_files()}
    ignored = (ROOT / ".gitignore").read_text().split()
    tried("1 ignore file")
    assert ".env" in ignored
    assert not {name for name in tracked if name == ".env" or name.endswith("/.env")}
    assert "db.sqlite3" not in tracked


def test_the_scanner_does_find_a_planted_credential(tried):
    """The control: the patterns above are able to fail."""
    # Assembled at run time so this file itself does not hold what the scan looks for.
    planted = "PAYPAL_CLIENT_SECRET = 'EHx9kq2Lm4Vn8Pz1'\nkey = '" + "AKIA" + "ABCDEFGHIJKLMNOP'"
    tried("1 planted file")
    assert _ASSIGNED.search(planted)
    assert re.search(_KEY_FORMATS["AWS access key"], planted)


# --- logs --------------------------------------------------------------------------------------------------
def test_no_secret_reaches_the_logs_or_emails_while_tokens_payouts_and_events_are_used(
    settings, caplog, capfd, mailoutbox, fake_paypal, payout_staff, django_capture_on_commit_callbacks, tried
):
    signing_secret = "whsec_LOGCHECK_" + "s3cr3t" * 4
    paypal_secret = "PAYPAL-LOGCHECK-" + "z" * 24
    settings.EVENTS_SIGNING_SECRET = signing_secret
    settings.PAYPAL_CLIENT_SECRET = paypal_secret
    settings.STAFF_NOTIFICATION_EMAILS = ["ops@example.com"]
    fake_paypal.client_secret = paypal_secret
    caplog.set_level(logging.DEBUG)
    for name in (
        "django",
        "django.request",
        "django.db.backends",
        "urllib3",
        "requests",
        "celery",
        "payouts",
        "partners",
    ):
        caplog.set_level(logging.DEBUG, logger=name)
    connection.force_debug_cursor = True  # SQL with its parameters, as DEBUG logging would show it
    try:
        partner = PartnerFactory(paypal_email="pay@example.com")
        client = Client()
        client.force_login(partner.user)
        # Post/redirect/get: the token is on the page the POST redirects to.
        created = client.post("/settings/", {"action": "token_create", "token-name": "logcheck"}, follow=True)
        api_secret = re.search(rb"pp_[A-Za-z0-9_-]{43}", created.content).group(0).decode()
        anonymous = Client()
        assert anonymous.get("/api/v1/partner/summary", HTTP_AUTHORIZATION=f"Bearer {api_secret}").status_code == 200
        assert anonymous.get("/api/v1/partner/summary", HTTP_AUTHORIZATION=f"Bearer {api_secret}x").status_code == 401

        click = ClickFactory(link=LinkFactory(partner=partner))
        assert post_event(anonymous, signed_up("cus_logs", click.id)).status_code == 201
        for amount in ("150.00", "200.00", "300.00"):
            assert post_event(anonymous, paid(f"pay_logs_{amount}", "cus_logs", amount)).status_code == 201
        bad = anonymous.post(
            "/api/v1/events", data=b"{}", content_type="application/json", HTTP_X_PARTNER_SIGNATURE="t=1,v1=00"
        )
        assert bad.status_code == 401

        with django_capture_on_commit_callbacks(execute=True):
            payout = payout_request(partner=partner)
        with django_capture_on_commit_callbacks(execute=True):
            payout_approve(payout_id=payout.pk, actor=payout_staff)
        assert Payout.objects.get(pk=payout.pk).status == Payout.Status.PAID
        # Wrong credentials: PayPal refuses the token request and that failure is logged too.
        settings.PAYPAL_CLIENT_SECRET = "wrong-" + paypal_secret
        CommissionEntryFactory(payment=PaymentFactory(referral=ReferralFactory(click=click)), amount=Decimal("60.00"))
        with django_capture_on_commit_callbacks(execute=True):
            second = payout_request(partner=partner)
        with django_capture_on_commit_callbacks(execute=True):
            payout_approve(payout_id=second.pk, actor=payout_staff)
    finally:
        connection.force_debug_cursor = False

    out, err = capfd.readouterr()
    emails = "\n".join(f"{m.subject}\n{m.body}" for m in mailoutbox)
    everything = "\n".join([caplog.text, out, err, emails, *(repr(r.args) for r in caplog.records)])
    basic = base64.b64encode(f"{fake_paypal.client_id}:{paypal_secret}".encode()).decode()
    secrets = {
        "PayPal client secret": paypal_secret,
        "PayPal Basic credentials": basic,
        "signing secret": signing_secret,
        "partner API token": api_secret,
        **{f"PayPal bearer token {n}": token for n, token in enumerate(fake_paypal.tokens)},
    }
    tried(f"{len(caplog.records)} log records, {len(mailoutbox)} emails; {len(secrets)} secrets looked for")
    assert len(caplog.records) > 100  # SQL, requests and tasks were all logged at DEBUG
    assert fake_paypal.tokens
    assert [what for what, secret in secrets.items() if secret in everything] == []


# --- stored hashed ------------------------------------------------------------------------------------------
def _text_values_everywhere() -> str:
    """Every text-like column of every row of the project's models (and sessions, axes)."""
    chunks = []
    for model in apps.get_models():
        fields = [
            f.attname
            for f in model._meta.concrete_fields
            if isinstance(f, (models.CharField, models.TextField, models.JSONField, models.GenericIPAddressField))
        ]
        if fields:
            chunks += [repr(row) for row in model._default_manager.values_list(*fields)]
    return "\n".join(chunks)


def test_api_tokens_are_stored_only_as_sha256_hashes(tried):
    partner = PartnerFactory()
    created = [api_token_create(partner=partner, name=f"t{n}") for n in range(3)]
    stored = _text_values_everywhere()
    tried("3 tokens")
    for new in created:
        row = ApiToken.objects.get(pk=new.token.pk)
        assert row.token_hash == hashlib.sha256(new.secret.encode()).hexdigest()
        assert len(row.prefix) <= 9 and new.secret.startswith(row.prefix)
        assert new.secret not in stored
        assert new.secret[len(row.prefix) :] not in stored


def test_click_ip_addresses_are_stored_only_as_keyed_hashes(tried):
    link = LinkFactory()
    client = Client()
    addresses = ["203.0.113.77", "2001:db8::4242", "198.51.100.200"]
    for ip in addresses:
        assert client.get(f"/r/{link.code}", HTTP_USER_AGENT=BROWSER_UA, REMOTE_ADDR=ip).status_code == 302
    stored = _text_values_everywhere()
    tried(f"{len(addresses)} clicks")
    assert Click.objects.count() == len(addresses)
    for ip in addresses:
        assert ip not in stored
        # Not a plain hash either: without the server's key it cannot be matched by hashing guesses.
        assert hashlib.sha256(ip.encode()).hexdigest() not in stored
        assert hashlib.md5(ip.encode()).hexdigest() not in stored  # noqa: S324 - looking for it
    assert all(len(h) == 64 for h in Click.objects.values_list("ip_hash", flat=True))


def test_failed_login_addresses_are_stored_only_as_keyed_pseudonyms(tried, settings):
    # django-axes keeps failed attempts (they are the throttle) with the address it is given.
    import ipaddress

    from axes.models import AccessAttempt

    PartnerFactory(user__email="bob@example.com")
    addresses = ["203.0.113.77", "2001:db8::4242"]
    for ip in addresses:
        Client().post("/accounts/login/", {"username": "bob@example.com", "password": "wrong"}, REMOTE_ADDR=ip)
    stored = _text_values_everywhere()
    tried(f"{len(addresses)} failed logins")
    assert AccessAttempt.objects.count() == len(addresses)
    for ip in addresses:
        assert ip not in stored
    for value in AccessAttempt.objects.values_list("ip_address", flat=True):
        assert ipaddress.ip_address(value) in ipaddress.ip_network("fd00::/8")


# --- customer emails masked ------------------------------------------------------------------------------------
def test_customers_emails_are_masked_on_every_partner_page_export_and_api_answer(tried):
    partner = PartnerFactory()
    referral = ReferralFactory(
        click=ClickFactory(link=LinkFactory(partner=partner)), email="jane.customer@mail.example"
    )
    CommissionEntryFactory(payment=PaymentFactory(referral=referral), amount=Decimal("9.80"))
    client = Client()
    client.force_login(partner.user)
    paths = [
        "/dashboard/",
        "/referrals/",
        f"/referrals/{referral.pk}/",
        "/referrals/export.csv",
        "/commissions/",
        "/commissions/export.csv",
        "/performance/",
        "/payouts/",
        "/api/v1/partner/summary",
        "/api/v1/partner/links",
    ]
    shown_masked = []
    for path in paths:
        response = client.get(path)
        assert response.status_code == 200, path
        body = (b"".join(response.streaming_content) if response.streaming else response.content).decode()
        assert "jane.customer" not in body, path
        if "j***@mail.example" in body:
            shown_masked.append(path)
    tried(f"{len(paths)} pages and answers")
    assert {"/referrals/", f"/referrals/{referral.pk}/", "/referrals/export.csv"} <= set(shown_masked)
