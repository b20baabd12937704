"""The program rules of docs/reference.md, read and validated from the environment.

A malformed value stops start-up with ``ImproperlyConfigured`` naming the variable, so a typo
in production can never silently pay the wrong commission.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured


@dataclass(frozen=True)
class ProgramRules:
    commission_rate: Decimal
    attribution_window_days: int
    payout_minimum: Decimal
    currency: str
    merchant_allowed_hosts: tuple[str, ...]
    default_landing_url: str
    commission_hold_days: int
    tracking_cookie_domain: str | None
    paypal_mode: str


def _fail(name: str, value: str, why: str) -> ImproperlyConfigured:
    return ImproperlyConfigured(f"{name}={value!r} is invalid: {why}.")


def _decimal(env: environ.Env, name: str, default: str, *, low: Decimal, high: Decimal | None) -> Decimal:
    raw = env.str(name, default=default).strip()
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise _fail(name, raw, "expected a decimal number such as " + default) from None
    if not value.is_finite() or value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise _fail(name, raw, f"must be {bounds}")
    return value


def _int(env: environ.Env, name: str, default: int, *, low: int, high: int) -> int:
    raw = env.str(name, default=str(default)).strip()
    try:
        value = int(raw)
    except ValueError:
        raise _fail(name, raw, "expected a whole number") from None
    if not low <= value <= high:
        raise _fail(name, raw, f"must be between {low} and {high}")
    return value


def _hostname(name: str, raw: str) -> str:
    host = raw.strip().lower().rstrip(".")
    if not host or not all(part.isascii() and part.replace("-", "").isalnum() for part in host.split(".")):
        raise _fail(name, raw, "expected host names such as crazycall.com")
    return host


def read_program_rules(env: environ.Env) -> ProgramRules:
    hosts_raw = env.str("MERCHANT_ALLOWED_HOSTS", default="crazycall.com")
    hosts = tuple(_hostname("MERCHANT_ALLOWED_HOSTS", h) for h in hosts_raw.split(",") if h.strip())
    if not hosts:
        raise _fail("MERCHANT_ALLOWED_HOSTS", hosts_raw, "at least one host is required")

    landing = env.str("DEFAULT_LANDING_URL", default=f"https://{hosts[0]}/").strip()
    parts = urlsplit(landing)
    landing_host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or not any(
        landing_host == h or landing_host.endswith("." + h) for h in hosts
    ):
        raise _fail("DEFAULT_LANDING_URL", landing, "must be an http(s) URL on MERCHANT_ALLOWED_HOSTS")

    currency = env.str("PROGRAM_CURRENCY", default="USD").strip()
    if len(currency) != 3 or not currency.isalpha() or not currency.isupper():
        raise _fail("PROGRAM_CURRENCY", currency, "expected a three-letter ISO code such as USD")

    mode = env.str("PAYPAL_MODE", default="sandbox").strip()
    if mode not in ("sandbox", "live"):
        raise _fail("PAYPAL_MODE", mode, "expected sandbox or live")

    cookie_domain = env.str("TRACKING_COOKIE_DOMAIN", default="").strip() or None
    if cookie_domain is not None:
        _hostname("TRACKING_COOKIE_DOMAIN", cookie_domain.lstrip("."))

    minimum = _decimal(env, "PAYOUT_MINIMUM", "50.00", low=Decimal("0.01"), high=None)
    if minimum != minimum.quantize(Decimal("0.01")):
        raise _fail("PAYOUT_MINIMUM", str(minimum), "at most two decimal places")

    return ProgramRules(
        commission_rate=_decimal(env, "COMMISSION_RATE", "0.20", low=Decimal("0"), high=Decimal("1")),
        attribution_window_days=_int(env, "ATTRIBUTION_WINDOW_DAYS", 90, low=1, high=3650),
        payout_minimum=minimum,
        currency=currency,
        merchant_allowed_hosts=hosts,
        default_landing_url=landing,
        commission_hold_days=_int(env, "COMMISSION_HOLD_DAYS", 0, low=0, high=3650),
        tracking_cookie_domain=cookie_domain,
        paypal_mode=mode,
    )
