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


def test_the_example_with_its_two_secrets_filled_in_passes_the_production_checks():
    values = dict(re.findall(r"^([A-Z][A-Z0-9_]+)=(.*)$", EXAMPLE, flags=re.MULTILINE))
    values.update(
        SECRET_KEY="a-long-and-random-production-secret-" + "abcdefgh" * 4,
        EVENTS_SIGNING_SECRET="whsec_" + "e" * 40,
        ALLOWED_HOSTS="partners.example.com",
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
