""".env.example names every variable the settings read, and works as it stands."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = (ROOT / ".env.example").read_text()


def test_every_variable_the_settings_read_is_in_env_example():
    source = "".join((ROOT / "config" / name).read_text() for name in ("settings.py", "program.py"))
    read = set(re.findall(r'env(?:\.\w+)?\(\s*"([A-Z][A-Z0-9_]+)"', source))
    listed = set(re.findall(r"^#?([A-Z][A-Z0-9_]+)=", EXAMPLE, flags=re.MULTILINE))
    assert len(read) > 30
    assert read - listed == set()


def test_the_example_with_its_required_values_filled_in_passes_the_production_checks():
    values = dict(re.findall(r"^([A-Z][A-Z0-9_]+)=(.*)$", EXAMPLE, flags=re.MULTILINE))
    values.update(
        SECRET_KEY="a-long-and-random-production-secret-" + "abcdefgh" * 4,
        EVENTS_SIGNING_SECRET="whsec_" + "e" * 40,
        ALLOWED_HOSTS="partners.example.com",
        # Also required in production: a mail backend that delivers, and a shared cache.
        EMAIL_URL="smtp+tls://smtp.example.com:587",
        REDIS_URL="redis://127.0.0.1:6379/0",
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", **values},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_example_without_secrets_is_refused_naming_the_variable():
    values = dict(re.findall(r"^([A-Z][A-Z0-9_]+)=(.*)$", EXAMPLE, flags=re.MULTILINE))
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", **values},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "SECRET_KEY must be at least 32 characters" in result.stderr


def _installed_apps(**env) -> list[str]:
    script = "import django; django.setup(); from django.conf import settings; print(','.join(settings.INSTALLED_APPS))"
    base = {"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "config.settings"}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env={**base, **env}, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().split(",")


def test_the_developer_tools_are_absent_from_production_and_present_in_debug():
    secrets = {
        "SECRET_KEY": "s" * 50,
        "EVENTS_SIGNING_SECRET": "e" * 40,
        "EMAIL_URL": "smtp+tls://smtp.example.com:587",
        "REDIS_URL": "redis://127.0.0.1:6379/0",
    }
    assert "devtools" not in _installed_apps(DEBUG="false", **secrets)
    assert "devtools" in _installed_apps(DEBUG="true")
    assert "devtools" in _installed_apps(DEBUG="false", DEVTOOLS="true", **secrets)
