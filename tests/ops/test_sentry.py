"""Sentry: on with SENTRY_DSN, off without it; no personal data sent."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = (
    "import django, json, sentry_sdk; django.setup(); client = sentry_sdk.get_client(); "
    "print(json.dumps([client.is_active(), client.options.get('send_default_pii'), client.options.get('environment')]))"
)


def _sentry(**env) -> list:
    base = {"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "config.settings", "DEBUG": "true"}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, env={**base, **env}, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_sentry_is_off_without_a_dsn():
    assert _sentry()[0] is False


def test_sentry_reports_with_a_dsn_and_without_personal_data():
    # A DSN on loopback: nothing is sent while the process only starts.
    active, pii, environment = _sentry(SENTRY_DSN="http://public@127.0.0.1:9/1", SENTRY_ENVIRONMENT="staging")
    assert (active, pii, environment) == (True, False, "staging")
