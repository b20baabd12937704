"""Hostile input: the merchant events API fuzzed from its own OpenAPI document (schemathesis),
the signature header and body parsers fuzzed with hypothesis, every form fed malformed, huge
and script-bearing values, and bodies over the size limit. Never a 5xx, never a write on a
refused request, and what is shown back is escaped."""

from __future__ import annotations

import csv
import json
import re
from decimal import Decimal
from itertools import count
from urllib.parse import urlsplit

import pytest
import schemathesis
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections
from django.test import Client
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core import NotSet
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from commissions.events import EventBodyError, parse_event
from commissions.signing import SignatureError, compute_signature, signature_header, verify_signature
from partners.models import ApiToken, Partner, User
from payouts.models import Payout
from tests.factories import ClickFactory, CreativeFactory, LinkFactory, PartnerFactory, PayoutFactory
from tests.reliability.conftest import add_commission, post_event, row_counts, signed_up
from tracking.models import Link

pytestmark = pytest.mark.django_db

FUZZ = hypothesis_settings(
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
    database=None,
)
SECRET = "whsec_fuzz_secret"


def fuzz(examples: int) -> hypothesis_settings:
    return hypothesis_settings(FUZZ, max_examples=examples)


# --- schemathesis against /api/v1/openapi.json -----------------------------------------------------------
@pytest.fixture
def events_operation(settings):
    """POST /api/v1/events from the app's own /api/v1/openapi.json, called through Django's WSGI
    handler. Like Django's test client, the handler's connection housekeeping is switched off:
    it would close the connection that holds this test's transaction."""
    settings.EVENTS_SIGNING_SECRET = SECRET
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", WSGIHandler())
        yield schema["/api/v1/events"]["POST"]
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


def _raw(case) -> bytes:
    """The exact bytes to send (and sign): negative cases may carry raw, non-JSON bodies."""
    if isinstance(case.body, NotSet):
        return b""
    if isinstance(case.body, bytes):
        return case.body
    return json.dumps(case.body).encode()


def _checked_call(case, raw: bytes, headers: dict[str, str]):
    before = row_counts()
    response = case.call(data=raw, headers={"Content-Type": "application/json", **headers})
    case.validate_response(response, checks=[not_a_server_error, status_code_conformance, response_schema_conformance])
    if response.status_code >= 400:
        assert row_counts() == before, (response.status_code, raw[:300])
    return response.status_code


def _schemathesis_run(operation, mode: GenerationMode, *, sign: bool, examples: int) -> list[int]:
    statuses: list[int] = []

    @fuzz(examples)
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case):
        raw = _raw(case)
        headers = (
            {"X-Partner-Signature": signature_header(secret=SECRET, body=raw)} if sign else dict(case.headers or {})
        )
        statuses.append(_checked_call(case, raw, headers))

    run()
    return statuses


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
def test_schemathesis_signed_events_from_the_openapi_document_never_get_a_5xx_nor_write_when_refused(
    events_operation, mode, tried
):
    statuses = _schemathesis_run(events_operation, mode, sign=True, examples=50)
    tried(f"{len(statuses)} signed {mode} cases ({sorted(set(statuses))})")
    if mode is GenerationMode.POSITIVE:
        assert set(statuses) <= {200, 201, 400, 409}
    else:
        # Negative cases also break the (required) signature header itself: those are 401s.
        assert set(statuses) <= {200, 201, 400, 401, 409}
    assert 400 in statuses, "no body reached validation"


def test_schemathesis_unsigned_or_badly_signed_events_are_all_refused_with_401(events_operation, tried):
    statuses = _schemathesis_run(events_operation, GenerationMode.POSITIVE, sign=False, examples=25)
    statuses += _schemathesis_run(events_operation, GenerationMode.NEGATIVE, sign=False, examples=25)
    tried(f"{len(statuses)} cases with generated signature headers")
    assert set(statuses) == {401}


# --- hypothesis: the signature header parser --------------------------------------------------------------
_header_parts = st.one_of(
    st.text(max_size=40),
    st.builds(lambda t: f"t={t}", st.one_of(st.integers(), st.text(max_size=20), st.just("9" * 400))),
    st.builds(lambda v: f"v1={v}", st.one_of(st.text(max_size=80), st.binary(max_size=40).map(bytes.hex))),
    st.sampled_from(["t=", "v1=", "=", ",", "t==1", "v1=\u0663\u0664", "t=\u0663\u0664\u0665", "t=1e9", "t=-5"]),
)
_headers = st.one_of(
    st.text(),
    st.lists(_header_parts, max_size=8).map(",".join),
    st.text(alphabet=st.characters(codec="latin-1"), max_size=300),
)


def test_hypothesis_any_signature_header_is_either_valid_or_a_signature_error(tried):
    sent = count()

    @fuzz(250)
    @given(header=_headers, body=st.binary(max_size=200))
    def run(header, body):
        next(sent)
        try:
            verify_signature(header=header, body=body, secret=SECRET, tolerance=300, now=1_700_000_000)
        except SignatureError:
            return
        # Accepted only if it really carries the signature of these bytes at an accepted time.
        timestamp = int(header.split("t=")[1].split(",")[0])
        assert compute_signature(secret=SECRET, timestamp=timestamp, body=body) in header

    run()
    tried(f"{next(sent)} generated headers")


def test_hypothesis_a_signature_with_any_one_hex_digit_changed_is_refused(tried):
    sent = count()

    @fuzz(150)
    @given(body=st.binary(max_size=300), timestamp=st.integers(1_699_999_701, 1_700_000_299), flip=st.integers(0, 63))
    def run(body, timestamp, flip):
        next(sent)
        good = signature_header(secret=SECRET, body=body, timestamp=timestamp)
        verify_signature(header=good, body=body, secret=SECRET, tolerance=300, now=1_700_000_000)
        digits = good.split("v1=")[1]
        bad_digit = "0" if digits[flip] != "0" else "1"
        bad = good.replace(digits, digits[:flip] + bad_digit + digits[flip + 1 :])
        with pytest.raises(SignatureError):
            verify_signature(header=bad, body=body, secret=SECRET, tolerance=300, now=1_700_000_000)

    run()
    tried(f"{next(sent)} signed bodies, one digit flipped each")


def test_hypothesis_garbage_signature_headers_over_http_are_401_and_write_nothing(client, settings, tried):
    settings.EVENTS_SIGNING_SECRET = SECRET
    raw = json.dumps(signed_up("cus_sig", None)).encode()
    sent = count()

    @fuzz(100)
    @given(header=st.one_of(_headers.filter(bool), st.lists(_header_parts, min_size=1).map(",".join)))
    def run(header):
        next(sent)
        before = row_counts()
        response = client.post(
            "/api/v1/events", data=raw, content_type="application/json", HTTP_X_PARTNER_SIGNATURE=header
        )
        assert response.status_code == 401, header
        assert response.json()["error"]["code"] in {"invalid_signature", "missing_signature", "signature_expired"}
        assert row_counts() == before

    run()
    tried(f"{next(sent)} garbage headers")


# --- hypothesis: the body parser ----------------------------------------------------------------------------
_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False)
    | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
_amounts = st.one_of(
    st.floats(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.text(alphabet="0123456789.-+eE,_ ", max_size=30),
    st.sampled_from(["49.001", "-1.00", "0", "0.00", "1e3", "NaN", "Infinity", "١٢.٣٤", "99999999999.99", " 49.00"]),
)


def _event_like(type_, data):
    return {"id": "evt_fuzz", "type": type_, "created": "2025-01-31T12:00:00Z", "data": data}


_bodies = st.one_of(
    _json,
    st.builds(
        _event_like,
        st.sampled_from(["customer.signed_up", "payment.succeeded", "payment.refunded", "subscription.cancelled"]),
        _json,
    ),
    st.builds(
        lambda amount, seats, payment_id, customer_id: _event_like(
            "payment.succeeded",
            {
                "payment_id": payment_id,
                "customer_id": customer_id,
                "amount": amount,
                "currency": "USD",
                "plan": "A",
                "seats": seats,
            },
        ),
        _amounts,
        st.one_of(st.integers(min_value=-(10**30), max_value=10**30), st.floats(), st.text(max_size=5)),
        st.text(max_size=300),
        st.text(max_size=300),
    ),
)


def test_hypothesis_any_body_either_parses_into_an_event_or_is_a_400_body_error(tried):
    sent = count()

    @fuzz(250)
    @given(raw=st.one_of(st.binary(max_size=400), _bodies.map(lambda doc: json.dumps(doc).encode())))
    def run(raw):
        next(sent)
        try:
            parsed = parse_event(raw)
        except EventBodyError as exc:
            assert exc.code and exc.message
            return
        assert parsed.event.type in {
            "customer.signed_up",
            "payment.succeeded",
            "payment.refunded",
            "subscription.cancelled",
        }
        if parsed.event.type == "payment.succeeded":
            amount = parsed.event.data.amount
            assert isinstance(amount, Decimal) and amount > 0 and amount == amount.quantize(Decimal("0.01"))

    run()
    tried(f"{next(sent)} generated bodies")


_NASTY_BODIES = {
    "100,000 nested arrays": b"[" * 100_000 + b"]" * 100_000,
    "100,000 nested objects": b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
    "a 5,000-digit amount number": json.dumps(_event_like("payment.refunded", {"payment_id": "p", "amount": 1}))
    .encode()
    .replace(b'"amount": 1', b'"amount": ' + b"9" * 5000),
    "a float amount": json.dumps(_event_like("payment.refunded", {"payment_id": "p", "amount": 49.0})).encode(),
    "NaN literal": b'{"id":"e","type":"payment.refunded","created":"2025-01-31T12:00:00Z","data":{"payment_id":"p","amount":NaN}}',
    "a 10^30 seat count": json.dumps(
        _event_like(
            "payment.succeeded",
            {"payment_id": "p", "customer_id": "c", "amount": "1.00", "currency": "USD", "plan": "A", "seats": 10**30},
        )
    ).encode(),
    "duplicate keys": b'{"id":"e","id":"f","type":"subscription.cancelled","created":"2025-01-31T12:00:00Z","data":{"customer_id":"c"}}',
    "UTF-16": json.dumps(_event_like("subscription.cancelled", {"customer_id": "c"})).encode("utf-16"),
    "invalid UTF-8": b'{"id":"\xff\xfe","type":"subscription.cancelled"}',
    "a NUL in an id": json.dumps(_event_like("subscription.cancelled", {"customer_id": "c\x00d"})).encode(),
    "a lone surrogate": b'{"id":"\\ud800","type":"subscription.cancelled","created":"2025-01-31T12:00:00Z","data":{"customer_id":"c"}}',
    "a 10,000-character id": json.dumps(
        {**_event_like("subscription.cancelled", {"customer_id": "c"}), "id": "e" * 10_000}
    ).encode(),
    "a date in year 99999": json.dumps(
        {**_event_like("subscription.cancelled", {"customer_id": "c"}), "created": "99999-01-01T00:00:00Z"}
    ).encode(),
    "a naive date": json.dumps(
        {**_event_like("subscription.cancelled", {"customer_id": "c"}), "created": "2025-01-31T12:00:00"}
    ).encode(),
    "an array body": b"[]",
    "a string body": b'"event"',
    "null": b"null",
    "empty": b"",
    "a script customer id": json.dumps(
        _event_like("customer.signed_up", {"customer_id": "<script>alert(1)</script>", "click_id": "<img src=x>"})
    ).encode(),
}


@pytest.mark.parametrize("name", list(_NASTY_BODIES))
def test_a_nasty_signed_body_is_answered_without_a_5xx_and_writes_nothing_when_refused(client, settings, name, tried):
    settings.EVENTS_SIGNING_SECRET = SECRET
    raw = _NASTY_BODIES[name]
    before = row_counts()
    response = client.post(
        "/api/v1/events",
        data=raw,
        content_type="application/json",
        HTTP_X_PARTNER_SIGNATURE=signature_header(secret=SECRET, body=raw),
    )
    tried(f"1 body ({len(raw):,} bytes)")
    assert response.status_code in {201, 400}, response.content[:300]
    if response.status_code == 400:
        assert response.json()["error"]["code"]
        assert row_counts() == before


# --- request bodies over the limit --------------------------------------------------------------------------
_POST_URLS = [
    ("/api/v1/events", None),
    ("/accounts/signup/", None),
    ("/accounts/login/", None),
    ("/accounts/password_reset/", None),
    ("/settings/", "partner"),
    ("/resources/", "partner"),
    ("/payouts/request/", "partner"),
    ("/admin/login/", None),
]


@pytest.mark.parametrize(("url", "who"), _POST_URLS, ids=[url for url, _ in _POST_URLS])
def test_a_body_over_max_request_body_bytes_is_refused_with_413_before_any_view(url, who, settings, tried):
    partner = PartnerFactory()
    add_commission(partner, "80.00")
    client = Client()
    if who:
        client.force_login(partner.user)
    before = row_counts() | {"Link": Link.objects.count(), "ApiToken": ApiToken.objects.count()}
    too_big = settings.MAX_REQUEST_BODY_BYTES + 1
    form = client.post(url, data={"name": "x" * too_big, "action": "token_create", "token-name": "t" * too_big})
    raw = client.post(url, data=b"{" + b" " * too_big + b"}", content_type="application/json")
    tried(f"2 bodies of {too_big:,}+ bytes")
    assert (form.status_code, raw.status_code) == (413, 413)
    assert raw.json()["error"]["code"] == "payload_too_large"
    assert row_counts() | {"Link": Link.objects.count(), "ApiToken": ApiToken.objects.count()} == before
    assert not Payout.objects.exists()


# --- hostile query strings ------------------------------------------------------------------------------------
_QUERY_VALUES = ["\x00", "<script>alert(1)</script>", "9" * 400, "-1", "2025-02-30", "%'[]é" * 100]
_QUERY_PAGES = [
    ("partner", "/dashboard/", ["period", "start", "end"]),
    ("partner", "/referrals/", ["status", "link", "start", "end", "sort", "page"]),
    ("partner", "/referrals/export.csv", ["status", "link", "start", "end"]),
    ("partner", "/commissions/", ["start", "end", "page"]),
    ("partner", "/commissions/export.csv", ["start", "end"]),
    ("partner", "/performance/", ["start", "end", "sort", "link", "page"]),
    ("partner", "/performance/export.csv", ["start", "end", "sort"]),
    ("partner", "/payouts/", ["start", "end", "page"]),
    ("partner", "/payouts/export.csv", ["start", "end"]),
    ("partner", "/resources/", ["kind", "creative", "page"]),
    ("partner", "/api/v1/partner/trends", ["start", "end"]),
    ("partner", "/api/v1/partner/links", ["start", "end"]),
    ("anonymous", "/r/somecode", ["next", "url", "aff_click"]),
    ("anonymous", "/accounts/login/", ["next"]),
    ("staff", "/admin/commissions/referral/", ["q", "status", "o", "p"]),
    ("staff", "/admin/payouts/payout/", ["q", "status__exact", "o"]),
    ("staff", "/admin/tracking/click/", ["q", "o"]),
]


@pytest.mark.parametrize("who", ["partner", "anonymous", "staff"])
def test_hostile_query_strings_never_get_a_5xx_and_are_not_reflected_unescaped(who, admin_user, tried):
    partner = PartnerFactory()
    add_commission(partner, "60.00")
    LinkFactory(partner=partner, code="somecode")
    client = Client()
    if who == "partner":
        client.force_login(partner.user)
    elif who == "staff":
        client.force_login(admin_user)
    sent = 0
    for _, path, params in [row for row in _QUERY_PAGES if row[0] == who]:
        for param in params:
            for value in _QUERY_VALUES:
                response = client.get(
                    path, {param: value}, HTTP_USER_AGENT="Mozilla/5.0 (X11; Linux x86_64) Firefox/125.0"
                )
                sent += 1
                context = f"{path}?{param}={value[:20]!r}"
                assert response.status_code < 500, context
                if not response.streaming:
                    _assert_safe(response.content, context)
    tried(f"{sent} requests")


# --- every form: malformed, huge, script-bearing -----------------------------------------------------------
SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
PAYLOADS = [
    SCRIPT,
    IMG,
    " JaVaScRiPt:alert(document.cookie)",
    "{{ 7|add:7 }}{% debug %}",
    "\x00\x1b[31m\u202eevil\u202d control and bidi",
    "😀" * 300,
    "A" * 5_000,
    "//evil.example/phish",
    "",
]
# The raw forms of dangerous output: none may ever appear in a page.
_DANGEROUS = [
    SCRIPT.encode(),
    b"<img src=x onerror=alert(1)>",
    b"<script>alert(document.cookie)",
    b"onerror=alert(1)>",
]
_JS_HREF = re.compile(rb"""(href|src|action)\s*=\s*["']?\s*javascript:""", re.IGNORECASE)
_emails = count(1)


def _assert_safe(html: bytes, context: str) -> None:
    for dangerous in _DANGEROUS:
        assert dangerous not in html, f"{dangerous!r} unescaped in {context}"
    assert not _JS_HREF.search(html), f"javascript: URL in an attribute in {context}"


def _signup_data(field: str, value) -> dict:
    data = {
        "name": "Fuzzy Partner",
        "email": f"fuzz{next(_emails)}@example.com",
        "password": "a-Long-unusual-passw0rd!",
        "website": "https://blog.example.com",
        "accept_terms": "on",
    }
    data[field] = value
    return data


FORMS = {
    # name: (url, needs a partner, base data, fields fuzzed)
    "sign-up": ("/accounts/signup/", False, None, ["name", "email", "password", "website", "accept_terms"]),
    "login": ("/accounts/login/", False, {"username": "nobody@example.com", "password": "x"}, ["username", "password"]),
    "password reset": ("/accounts/password_reset/", False, {"email": "nobody@example.com"}, ["email"]),
    "settings: profile": (
        "/settings/",
        True,
        {
            "action": "profile",
            "profile-name": "Pat",
            "profile-website": "",
            "profile-billing_name": "",
            "profile-billing_address": "",
            "profile-billing_country": "",
            "profile-tax_id": "",
        },
        [
            "profile-name",
            "profile-website",
            "profile-billing_name",
            "profile-billing_address",
            "profile-billing_country",
            "profile-tax_id",
        ],
    ),
    "settings: password": (
        "/settings/",
        True,
        {
            "action": "password",
            "password-old_password": "correct-horse-battery",
            "password-new_password1": "n3w-Unusual-passphrase",
            "password-new_password2": "n3w-Unusual-passphrase",
        },
        ["password-old_password", "password-new_password1", "password-new_password2"],
    ),
    "settings: PayPal email": (
        "/settings/",
        True,
        {
            "action": "paypal",
            "paypal-paypal_email": "me@paypal.example",
            "paypal-current_password": "correct-horse-battery",
        },
        ["paypal-paypal_email", "paypal-current_password"],
    ),
    "settings: API token": ("/settings/", True, {"action": "token_create", "token-name": "script"}, ["token-name"]),
    "settings: token revoke": ("/settings/", True, {"action": "token_revoke", "token_id": "1"}, ["token_id", "action"]),
    "link builder": (
        "/resources/",
        True,
        {
            "destination": "https://crazycall.com/pricing",
            "trial_days": "14",
            "description": "",
            "code": "",
            "creative": "",
        },
        ["destination", "trial_days", "description", "code", "creative"],
    ),
    "withdrawal request": ("/payouts/request/", True, {"next": "/dashboard/"}, ["next"]),
}


@pytest.mark.parametrize("form_name", list(FORMS))
def test_every_form_answers_hostile_values_with_clear_errors_no_5xx_and_escaped_output(form_name, tried):
    url, needs_partner, base, fields = FORMS[form_name]
    client = Client()  # one client: building one loads every middleware again
    partner = None
    if needs_partner:
        partner = PartnerFactory(paypal_email="pay@example.com")
        add_commission(partner, "60.00")
    sent = 0
    for field in fields:
        for index, payload in enumerate([*PAYLOADS, ["a", SCRIPT]]):
            if partner is not None:
                client.force_login(partner.user)
            else:
                client.logout()
            data = _signup_data(field, payload) if base is None else {**base, field: payload}
            # A fresh address per request: the login and reset throttles are tested elsewhere.
            response = client.post(url, data, REMOTE_ADDR=f"10.9.{len(field)}.{index}")
            sent += 1
            context = f"{form_name} {field}={str(payload)[:40]!r}"
            assert response.status_code < 500, context
            _assert_safe(response.content, context)
            if response.status_code in (200, 400) and field != "action" and form_name != "password reset":
                # (A forged hidden "action" names no form; the reset form answers alike for any email.)
                assert b'class="errorlist' in response.content or b"message-success" in response.content, context
            if response.status_code == 302:
                target = urlsplit(response["Location"])
                assert not target.scheme and not target.netloc, context  # never off-site
                assert not response["Location"].startswith(("//", "/\\")), context
                followed = client.get(response["Location"] if target.path.startswith("/") else "/dashboard/")
                assert followed.status_code < 500, context
                _assert_safe(followed.content, f"{context} (after redirect)")
    tried(f"{sent} requests ({len(fields)} fields × {len(PAYLOADS) + 1} values)")


def test_stored_script_bearing_values_are_shown_escaped_on_every_page_and_in_the_admin(admin_client, tried):
    partner = PartnerFactory(name=SCRIPT, paypal_email="pay@example.com", billing_name=IMG, tax_id=IMG[:50])
    client = Client()
    client.force_login(partner.user)
    creative = CreativeFactory(title=SCRIPT, text=IMG)
    link = LinkFactory(partner=partner, description=IMG, creative=creative)
    ApiToken.objects.create(partner=partner, name=SCRIPT, token_hash="0" * 64, prefix="pp_abcdef")
    click = ClickFactory(link=link)
    post_event(client, signed_up(SCRIPT, click.id, email=f"{'x' * 5}@example.com"))
    add_commission(partner, "60.00", payment__payment_id=IMG, payment__referral__customer_id=IMG[:60])
    pages = [
        "/dashboard/",
        "/resources/",
        f"/resources/links/{link.pk}/",
        "/referrals/",
        "/commissions/",
        "/performance/",
        "/payouts/",
        "/settings/",
        *[f"/referrals/{pk}/" for pk in partner.referrals.values_list("pk", flat=True)],
    ]
    for page in pages:
        response = client.get(page)
        assert response.status_code == 200, page
        _assert_safe(response.content, page)
    admin_pages = [
        "/admin/partners/partner/",
        f"/admin/partners/partner/{partner.pk}/change/",
        "/admin/tracking/link/",
        f"/admin/tracking/link/{link.pk}/change/",
        "/admin/tracking/creative/",
        "/admin/commissions/referral/",
        "/admin/commissions/payment/",
        "/admin/commissions/merchantevent/",
    ]
    for page in admin_pages:
        response = admin_client.get(page)
        assert response.status_code == 200, page
        _assert_safe(response.content, page)
    tried(f"{len(pages) + len(admin_pages)} pages showing stored payloads")


def test_csv_exports_neutralise_spreadsheet_formulas(tried):
    partner = PartnerFactory()
    LinkFactory(partner=partner, description='=HYPERLINK("http://evil.example","x")', code="formula-link")
    add_commission(partner, "10.00", payment__referral__customer_id="+cmd|' /C calc'!A0")
    client = Client()
    client.force_login(partner.user)
    exports = ["/performance/export.csv", "/referrals/export.csv", "/commissions/export.csv", "/payouts/export.csv"]
    for url in exports:
        response = client.get(url)
        assert response.status_code == 200, url
        body = b"".join(response.streaming_content).decode()
        for line in body.splitlines()[1:]:
            for cell in next(csv.reader([line])):
                assert not re.match(r"^[=+@]", cell), (url, cell)
    tried(f"{len(exports)} exports")


def test_signup_with_a_script_name_creates_an_account_whose_name_is_escaped_everywhere(tried):
    client = Client()
    response = client.post("/accounts/signup/", _signup_data("name", SCRIPT))
    assert response.status_code == 302
    partner = Partner.objects.get(user__email=User.objects.latest("date_joined").email)
    assert partner.name == SCRIPT  # kept as typed: escaping is the output's job
    # Sign-up no longer logs in (its answer must read the same for a taken email).
    client.force_login(partner.user)
    for page in ("/dashboard/", "/settings/"):
        _assert_safe(client.get(page).content, page)
    tried("1 sign-up, 2 pages")


# --- Issue 17: what an outside tester got through -------------------------------------------------

FAR_DAYS = ["9999-12-31", "0001-01-01", "2999-01-01", "1900-02-28"]


def test_far_dates_on_every_date_filter_are_a_form_error_or_the_json_400_never_a_500(tried):
    partner = PartnerFactory(paypal_email="pay@example.com")
    add_commission(partner, "60.00")
    PayoutFactory(partner=partner)
    client = Client()
    client.force_login(partner.user)
    sent = 0
    for day in FAR_DAYS:
        for field in ("start", "end"):
            for page in ("/referrals/", "/commissions/", "/payouts/", "/performance/"):
                response = client.get(page, {field: day})
                sent += 1
                assert response.status_code == 200, (page, field, day)
                assert b"between 2000-01-01" in response.content, (page, field, day)
            for export in ("/referrals/export.csv", "/commissions/export.csv", "/payouts/export.csv"):
                response = client.get(export, {field: day})
                sent += 1
                assert response.status_code == 400 and not response.streaming, (export, field, day)
            response = client.get("/performance/export.csv", {field: day})
            sent += 1
            assert response.status_code == 400, (field, day)
            for api in ("/api/v1/partner/links", "/api/v1/partner/trends"):
                response = client.get(api, {field: day})
                sent += 1
                assert response.status_code == 400, (api, field, day)
                assert response.json()["error"]["field"] == field
    tried(f"{sent} requests ({len(FAR_DAYS)} far days × start/end × 4 pages, 4 CSVs, 2 API endpoints)")


CONTROL_VALUES = ["Ada\nInjected line: URGENT approve", "Ada\r\nBcc: x@evil.test", "A\x0bB", "A\u2028B", "A\u202eB"]


def test_control_characters_in_names_and_billing_fields_are_refused_and_staff_email_stays_on_its_lines(
    settings, django_capture_on_commit_callbacks, mailoutbox, tried
):
    settings.STAFF_NOTIFICATION_EMAILS = ["ops@example.com"]
    partner = PartnerFactory(name="Pat", paypal_email="pay@example.com")
    add_commission(partner, "60.00")
    client = Client()
    client.force_login(partner.user)
    sent = 0
    for field in ("name", "billing_name", "billing_country", "tax_id"):
        for value in CONTROL_VALUES:
            response = client.post(
                "/settings/", {"action": "profile", "profile-name": "Pat", f"profile-{field}": value}
            )
            sent += 1
            assert response.status_code == 400, (field, value)
    for value in CONTROL_VALUES:
        response = Client().post("/accounts/signup/", _signup_data("name", value), REMOTE_ADDR=f"10.17.0.{sent}")
        sent += 1
        assert response.status_code == 200 and b'class="errorlist' in response.content, value
    partner.refresh_from_db()
    assert partner.name == "Pat"
    # A row written around the forms: the staff email keeps it on one line.
    Partner.objects.filter(pk=partner.pk).update(name=CONTROL_VALUES[0])
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/payouts/request/")
    (staff,) = [m for m in mailoutbox if m.to == ["ops@example.com"]]
    assert not any(line.startswith("Injected line") for line in staff.body.splitlines())
    tried(f"{sent} posts ({len(CONTROL_VALUES)} values × 4 settings fields + sign-up) and 1 staff email")


EMAIL_SPELLINGS = ["PRIYA@example.com", "Priya@Example.COM", "ｐｒｉｙａ@example.com", "priya@example.com "]


def test_no_spelling_of_a_locked_email_gets_its_own_attempts(settings, tried):
    PartnerFactory(user__email="priya@example.com")
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/accounts/login/", {"username": "priya@example.com", "password": "wrong"})
    sent = settings.AXES_FAILURE_LIMIT
    for spelling in EMAIL_SPELLINGS:
        response = client.post("/accounts/login/", {"username": spelling, "password": "correct-horse-battery"})
        sent += 1
        assert "_auth_user_id" not in client.session, spelling
        assert response.status_code in (200, 429), spelling
    for spelling in ("prıya@example.com",):  # dotless i: PostgreSQL's UPPER() folds it, casefold does not
        client.post("/accounts/login/", {"username": spelling, "password": "correct-horse-battery"})
        sent += 1
        assert "_auth_user_id" not in client.session, spelling
    tried(f"{sent} logins ({len(EMAIL_SPELLINGS) + 1} spellings of a locked email)")
