"""docs/integration.md's examples work: they are run as written against a live server."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from commissions.models import Referral
from commissions.signing import signature_header as our_signature_header
from tests.factories import ClickFactory

GUIDE = Path(settings.BASE_DIR) / "docs" / "integration.md"


def _block(language: str, marker: str) -> str:
    blocks = re.findall(rf"```{language}\n(.*?)```", GUIDE.read_text(), flags=re.S)
    matching = [b for b in blocks if marker in b]
    assert len(matching) == 1, f"expected one {language} block containing {marker!r}"
    return matching[0]


@pytest.fixture
def guide_python() -> dict:
    namespace: dict = {"__name__": "integration_guide"}
    exec(compile(_block("python", "def signature_header"), str(GUIDE), "exec"), namespace)  # noqa: S102
    return namespace


def test_the_guides_python_signature_equals_the_servers(guide_python):
    body = b'{"id":"evt_1","type":"subscription.cancelled","created":"2025-01-01T00:00:00Z","data":{"customer_id":"c"}}'
    for secret in ("whsec_demo_signing_secret", "s3cr3t-ü"):
        assert guide_python["signature_header"](secret, body, 1700000000) == our_signature_header(
            secret=secret, body=body, timestamp=1700000000
        )


@pytest.mark.django_db(transaction=True)
def test_the_guides_python_example_sends_a_sign_up_that_is_attributed(guide_python, live_server):
    click = ClickFactory(created_at=timezone.now() - timedelta(minutes=5))
    guide_python["PANEL_URL"] = live_server.url
    guide_python["SIGNING_SECRET"] = settings.EVENTS_SIGNING_SECRET
    event = {
        "id": "evt_guide_py",
        "type": "customer.signed_up",
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "data": {"customer_id": "cus_guide", "click_id": str(click.id), "email": "jane@example.com"},
    }
    status, answer = guide_python["send_event"](event)
    assert status == 201
    assert answer["referral"]["partner"] == click.link.partner.referral_code
    assert guide_python["send_event"](event) == (200, answer)
    status, error = guide_python["send_event"]({**event, "type": "customer.deleted"})
    assert (status, error["error"]["field"]) == (400, "type")


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    not (shutil.which("bash") and shutil.which("openssl") and shutil.which("curl")),
    reason="needs bash, openssl and curl",
)
def test_the_guides_curl_example_sends_a_sign_up_that_is_attributed(live_server):
    click = ClickFactory(created_at=timezone.now() - timedelta(minutes=5))
    env = {
        **os.environ,
        "PANEL_URL": live_server.url,
        "EVENTS_SIGNING_SECRET": settings.EVENTS_SIGNING_SECRET,
        "CLICK_ID": str(click.id),
    }
    result = subprocess.run(
        ["bash", "-c", _block("sh", "openssl dgst")], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    body, status = result.stdout.strip().rsplit("\n", 1)
    assert status == "HTTP 201", result.stdout
    assert json.loads(body)["referral"]["partner"] == click.link.partner.referral_code
    assert Referral.objects.get().customer_id == "cus_curl_1"
