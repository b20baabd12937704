"""Start-up refuses malformed program rules, naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import environ
import pytest
from django.core.exceptions import ImproperlyConfigured

from config.program import read_program_rules

ROOT = Path(__file__).resolve().parents[2]


def _rules(monkeypatch, **values):
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return read_program_rules(environ.Env())


def test_defaults_are_the_contracts(monkeypatch):
    for key in (
        "COMMISSION_RATE",
        "PAYOUT_MINIMUM",
        "ATTRIBUTION_WINDOW_DAYS",
        "MERCHANT_ALLOWED_HOSTS",
        "DEFAULT_LANDING_URL",
        "COMMISSION_HOLD_DAYS",
        "PROGRAM_CURRENCY",
    ):
        monkeypatch.delenv(key, raising=False)
    rules = read_program_rules(environ.Env())
    assert rules.commission_rate == Decimal("0.20")
    assert rules.payout_minimum == Decimal("50.00")
    assert rules.attribution_window_days == 90
    assert rules.merchant_allowed_hosts == ("crazycall.com",)
    assert rules.default_landing_url == "https://crazycall.com/"
    assert rules.commission_hold_days == 0
    assert rules.currency == "USD"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("COMMISSION_RATE", "abc"),
        ("COMMISSION_RATE", "1.5"),
        ("COMMISSION_RATE", "NaN"),
        ("PAYOUT_MINIMUM", "-5"),
        ("PAYOUT_MINIMUM", "50.001"),
        ("ATTRIBUTION_WINDOW_DAYS", "ninety"),
        ("ATTRIBUTION_WINDOW_DAYS", "0"),
        ("COMMISSION_HOLD_DAYS", "-1"),
        ("PROGRAM_CURRENCY", "dollars"),
        ("MERCHANT_ALLOWED_HOSTS", "crazy call.com"),
        ("DEFAULT_LANDING_URL", "https://evil.io/"),
        ("PAYPAL_MODE", "production"),
    ],
)
def test_malformed_values_stop_startup_naming_the_variable(monkeypatch, variable, value):
    with pytest.raises(ImproperlyConfigured, match=variable):
        _rules(monkeypatch, **{variable: value})


def test_manage_py_refuses_to_start_with_a_malformed_rate():
    env = {**os.environ, "COMMISSION_RATE": "abc", "DEBUG": "true"}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "COMMISSION_RATE" in result.stderr


def test_production_settings_pass_check_deploy():
    env = {
        **os.environ,
        "DEBUG": "false",
        "SECRET_KEY": "a" * 20 + "-production-secret-" + "b" * 30,
        "EVENTS_SIGNING_SECRET": "whsec_" + "c" * 32,
        "ALLOWED_HOSTS": "partners.example.com",
        "EMAIL_URL": "smtp+tls://smtp.example.com:587",
        "REDIS_URL": os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_a_secret_key():
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY",)}
    env.update({"DEBUG": "false", "EVENTS_SIGNING_SECRET": "x" * 32})
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


# --- Issue 17: production refuses the settings that leak reset links or split the throttles -------

_PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": "a" * 20 + "-production-secret-" + "b" * 30,
    "EVENTS_SIGNING_SECRET": "whsec_" + "c" * 32,
    "ALLOWED_HOSTS": "partners.example.com",
    "EMAIL_URL": "smtp+tls://smtp.example.com:587",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "DJANGO_SETTINGS_MODULE": "config.settings",
}


def _production_setting(name: str, **env_changes: str | None) -> subprocess.CompletedProcess:
    env = {
        k: v for k, v in os.environ.items() if k not in ("EMAIL_URL", "REDIS_URL", "CACHE_URL", "TRUSTED_PROXY_COUNT")
    }
    env.update(_PRODUCTION)
    for key, value in env_changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    script = f"import django; django.setup(); from django.conf import settings; print(repr(getattr(settings, {name!r}, None)))"
    return subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("email_url", [None, "consolemail://", "memorymail://", "filemail:///tmp/mails"])
def test_production_refuses_to_start_with_an_email_backend_that_delivers_nothing(email_url):
    result = _production_setting("EMAIL_BACKEND", EMAIL_URL=email_url)
    assert result.returncode != 0
    assert "EMAIL_URL" in result.stderr


def test_production_starts_with_smtp_email():
    result = _production_setting("EMAIL_BACKEND")
    assert result.returncode == 0, result.stderr
    assert "smtp.EmailBackend" in result.stdout


def test_production_refuses_to_start_without_a_shared_cache_for_the_throttles():
    result = _production_setting("CACHES", REDIS_URL=None)
    assert result.returncode != 0
    assert "REDIS_URL" in result.stderr and "CACHE_URL" in result.stderr


def test_production_accepts_the_database_cache_for_the_throttles():
    result = _production_setting("CACHES", REDIS_URL=None, CACHE_URL="dbcache://partner_panel_cache")
    assert result.returncode == 0, result.stderr
    assert "DatabaseCache" in result.stdout


def test_production_ignores_x_forwarded_proto_without_a_trusted_proxy():
    result = _production_setting("SECURE_PROXY_SSL_HEADER")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "None"


def test_production_reads_x_forwarded_proto_behind_a_trusted_proxy():
    result = _production_setting("SECURE_PROXY_SSL_HEADER", TRUSTED_PROXY_COUNT="1")
    assert result.returncode == 0, result.stderr
    assert "HTTP_X_FORWARDED_PROTO" in result.stdout


@pytest.mark.parametrize("variable", ["SECRET_KEY", "EVENTS_SIGNING_SECRET"])
def test_production_refuses_a_secret_shorter_than_32_characters(variable):
    env = {
        **os.environ,
        **_PRODUCTION,
        "SECRET_KEY": "s" * 50,
        "EVENTS_SIGNING_SECRET": "whsec_" + "e" * 40,
        variable: "x" * 31,
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert f"{variable} must be at least 32 characters" in result.stderr


def test_production_accepts_secrets_of_32_characters():
    env = {**os.environ, **_PRODUCTION, "SECRET_KEY": "s" * 32, "EVENTS_SIGNING_SECRET": "e" * 32}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
