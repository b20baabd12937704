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


@pytest.mark.parametrize("variable", ["SECRET_KEY", "EVENTS_SIGNING_SECRET"])
def test_production_refuses_a_secret_shorter_than_32_characters(variable):
    env = {
        **os.environ,
        "DEBUG": "false",
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
    env = {**os.environ, "DEBUG": "false", "SECRET_KEY": "s" * 32, "EVENTS_SIGNING_SECRET": "e" * 32}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
