"""`make up`'s stack (Procfile, honcho) on PostgreSQL and Redis, end to end, then SIGTERM.

The four production processes run as they would on a host (DEBUG off, the click spool): a click
goes through the spool and the flusher into the database; a signed sign-up and payment earn a
commission; an approved payout goes from the worker to a fake PayPal and beat's poll marks it
paid; /healthz sees the flusher, beat and the worker. Then SIGTERM: every process stops by
itself (nothing needs SIGKILL) and every click sent is either in the database or still in the
spool, where the next flusher takes it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission
from django.db import connection

from commissions.signing import signature_header
from config.celery_app import app as celery_app
from devtools.fake_paypal import FakePayPal
from payouts.models import Payout
from payouts.services import payout_approve, payout_request
from tests.factories import PartnerFactory, StaffFactory
from tracking.models import Click

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
SECRET = "whsec_stack_test_" + "s" * 32
BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _request(url: str, *, data: bytes | None = None, headers: dict | None = None):
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with _opener.open(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def _wait(what: str, check, *, seconds: float = 90.0):
    deadline = time.monotonic() + seconds
    last = None
    while time.monotonic() < deadline:
        try:
            result = check()
        except (OSError, ValueError) as exc:  # not listening yet, or not JSON yet
            last = exc
        else:
            if result:
                return result
            last = result
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def _now() -> str:
    # With microseconds: a sign-up stamped with the click's own second, truncated, would come
    # before the click and rightly not be attributed to it.
    return datetime.now(UTC).isoformat()


def _event(base: str, body: dict) -> tuple[int, dict]:
    raw = json.dumps(body).encode()
    header = signature_header(secret=SECRET, body=raw)
    status, _, answer = _request(
        f"{base}/api/v1/events",
        data=raw,
        headers={"Content-Type": "application/json", "X-Partner-Signature": header},
    )
    return status, json.loads(answer)


def _click(base: str, code: str, visitor: int) -> str:
    status, headers, _ = _request(
        f"{base}/r/{code}", headers={"User-Agent": BROWSER, "X-Forwarded-For": f"198.51.100.{visitor}"}
    )
    assert status == 302, status
    return headers["Location"].split("aff_click=")[1].split("&")[0]


class Honcho:
    """``make up``: the Procfile under honcho, from this checkout's .venv."""

    name = "honcho"
    ready_seconds = 90.0

    def __init__(self, env: dict, tmp_path: Path) -> None:
        self.env = {**env, "PATH": f"{ROOT / '.venv' / 'bin'}:{os.environ.get('PATH', '')}"}
        self.env["CLICK_SPOOL_DIR"] = str(tmp_path / "spool")
        self.env["CELERY_BEAT_SCHEDULE_FILENAME"] = str(tmp_path / "celerybeat-schedule")
        self.log = (tmp_path / "honcho.log").open("w+")
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [str(ROOT / ".venv" / "bin" / "honcho"), "start", "--port", self.env["PORT"], "--no-colour"],
            cwd=ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def stop(self) -> dict[str, int | None]:
        """SIGTERM, as systemd or Ctrl+C would; the exit code of each process (None: killed)."""
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)
        output = self.output()
        assert "SIGKILL" not in output, output[-3000:]
        codes = {}
        for name in ("web", "worker", "beat", "flusher"):
            found = re.search(rf"{name}\.1 stopped \(rc=(-?\d+)\)", output)
            codes[name] = int(found.group(1)) if found else None
        return codes

    def flush_once(self) -> str:
        run = [str(ROOT / ".venv" / "bin" / "python"), "manage.py", "flush_clicks"]
        return subprocess.run(
            run, cwd=ROOT, env=self.env, check=True, capture_output=True, text=True, timeout=60
        ).stdout

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.log.close()


class Compose:
    """compose.yaml's app roles from the built image (make container-test), on the host's network
    (deploy/container/compose.test.yaml), with docker-compose v1 or ``docker compose`` v2."""

    name = "compose"
    ready_seconds = 600.0  # vfs copies every layer: a container takes half a minute or more to start
    roles = ("web", "worker", "beat", "flusher")

    def __init__(self, env: dict, tmp_path: Path) -> None:
        # What compose.yaml does not name goes through its env_file, as an operator's .env would.
        env_file = tmp_path / "app.env"
        env_file.write_text("PAYPAL_POLL_SECONDS=1\n")
        # The postgres service is not started here (the host's is used), but compose.yaml needs it named.
        self.env = {**env, "ENV_FILE": str(env_file), "WEB_PORT": env["PORT"], "POSTGRES_PASSWORD": "unused"}
        command = os.environ.get("COMPOSE", "docker-compose").split()
        self.compose = [
            *command,
            "-p",
            "pp-container-test",
            "-f",
            "compose.yaml",
            "-f",
            "deploy/container/compose.test.yaml",
        ]

    def _run(self, *args: str, timeout: float = 300) -> str:
        done = subprocess.run(
            [*self.compose, *args], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=timeout
        )
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        return done.stdout

    def start(self) -> None:
        self._run("run", "--rm", "--no-deps", "migrate")  # the one-off service
        # web through `run`: docker-compose v1 refuses web's published port on the host network
        # (`run` publishes none); its volumes, environment and image command are the service's.
        self.web = self._run("run", "-d", "--no-deps", "web").strip().splitlines()[-1]
        self._run("up", "-d", "--no-deps", *self.roles[1:])

    def _containers(self) -> dict[str, str]:
        return {"web": self.web, **{role: self._run("ps", "-q", role).strip() for role in self.roles[1:]}}

    def stop(self) -> dict[str, int | None]:
        subprocess.run(["docker", "stop", "-t", "30", self.web], check=True, capture_output=True, timeout=120)
        self._run("stop", "-t", "30", *self.roles[1:], timeout=120)
        codes = {}
        for role, container in self._containers().items():
            state = subprocess.run(
                ["docker", "inspect", "-f", "{{.State.ExitCode}}", container],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.split()
            codes[role] = int(state[0])
        return codes

    def flush_once(self) -> str:
        return self._run("run", "--rm", "--no-deps", "flusher", "python", "manage.py", "flush_clicks")

    def output(self) -> str:
        web = subprocess.run(["docker", "logs", self.web], capture_output=True, text=True, timeout=60)
        return web.stdout + web.stderr + self._run("logs", "--no-color")

    def close(self) -> None:
        if getattr(self, "web", None):
            subprocess.run(["docker", "rm", "-f", self.web], capture_output=True, timeout=120)
        subprocess.run([*self.compose, "down", "-v"], cwd=ROOT, env=self.env, capture_output=True, timeout=180)


LAUNCHERS = [
    pytest.param(Honcho, id="honcho"),
    pytest.param(
        Compose,
        id="compose",
        marks=pytest.mark.skipif(
            os.environ.get("CONTAINER_TEST") != "1", reason="make container-test (needs dockerd and the image)"
        ),
    ),
]


@pytest.fixture(params=LAUNCHERS)
def stack(request, transactional_db, tmp_path, settings):
    if not settings.REDIS_URL:
        pytest.skip("needs REDIS_URL (the broker of the stack)")
    fake = FakePayPal(settle_after=0.5)
    paypal = fake.start()
    db = connection.settings_dict
    database_url = (
        f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    )
    port = str(_free_port())
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST_"))},
        "DEBUG": "false",
        "SECRET_KEY": "stack-test-secret-key-" + "k" * 40,
        "EVENTS_SIGNING_SECRET": SECRET,
        "ALLOWED_HOSTS": "127.0.0.1",
        # Production needs a delivering mail backend: nothing listens there, the worker retries.
        "EMAIL_URL": "smtp://127.0.0.1:1",
        "SECURE_SSL_REDIRECT": "false",
        "TRUSTED_PROXY_COUNT": "1",
        "DATABASE_URL": database_url,
        "REDIS_URL": settings.REDIS_URL,
        "CLICK_BUFFER": "spool",
        "PAYPAL_API_BASE": paypal,
        "PAYPAL_CLIENT_ID": fake.client_id,
        "PAYPAL_CLIENT_SECRET": fake.client_secret,
        "PAYPAL_POLL_SECONDS": "1",
        "WEB_CONCURRENCY": "1",
        "WORKER_CONCURRENCY": "1",
        "LOG_FORMAT": "json",
        "HOST": "127.0.0.1",
        "PORT": port,
    }
    launcher = request.param(env, tmp_path)
    try:
        launcher.start()
        yield {"base": f"http://127.0.0.1:{port}", "launcher": launcher, "fake": fake}
    finally:
        launcher.close()
        fake.stop()


def _health(base: str) -> dict:
    status, _, body = _request(f"{base}/healthz")
    return json.loads(body) if status == 200 else {}


def test_the_stack_tracks_pays_and_stops_cleanly(stack, tmp_path):
    base, launcher = stack["base"], stack["launcher"]
    staff = StaffFactory()
    staff.user_permissions.add(Permission.objects.get(codename="approve_payout", content_type__app_label="payouts"))
    partner = PartnerFactory(paypal_email="stack-partner@example.com")
    code = partner.links.get(is_default=True).code

    healthy = _wait(
        "every process healthy",
        lambda: (h := _health(base)).get("status") == "ok" and h,
        seconds=launcher.ready_seconds,
    )
    assert (healthy["beat"]["state"], healthy["workers"], healthy["click_backlog"]["state"]) == ("ok", "ok", "ok")

    # A click: spool -> flusher -> database.
    click_id = _click(base, code, 1)
    _wait("the flusher to store the click", lambda: Click.objects.filter(pk=click_id).exists())

    # A signed sign-up and a payment: a referral and its 20 % commission.
    status, answer = _event(
        base,
        {
            "id": "evt_stack_1",
            "type": "customer.signed_up",
            "created": _now(),
            "data": {"customer_id": "cus_stack", "click_id": click_id},
        },
    )
    assert status == 201, answer
    assert answer["referral"] is not None, (answer, launcher.output()[-4000:])
    assert answer["referral"]["partner"] == partner.referral_code
    status, answer = _event(
        base,
        {
            "id": "evt_stack_2",
            "type": "payment.succeeded",
            "created": _now(),
            "data": {
                "payment_id": "pay_stack",
                "customer_id": "cus_stack",
                "amount": "300.00",
                "currency": "USD",
                "plan": "B",
                "seats": 3,
            },
        },
    )
    assert status == 201, answer
    assert answer["commission"]["amount"] == "60.00"

    # A payout: requested, approved; the worker sends it to PayPal, beat's poll marks it paid.
    celery_app.conf.task_always_eager = False  # this process enqueues to the stack's worker
    payout = payout_request(partner=partner)
    assert payout.amount == Decimal("60.00")
    payout_approve(payout_id=payout.pk, actor=staff)
    _wait("the payout to be paid", lambda: Payout.objects.get(pk=payout.pk).status == Payout.Status.PAID, seconds=120)
    assert len(stack["fake"].batches) == 1

    # Clicks right before SIGTERM: none may be lost.
    last = [_click(base, code, n) for n in range(2, 12)]
    codes = launcher.stop()
    assert codes == {"web": 0, "worker": 0, "beat": 0, "flusher": 0}, launcher.output()[-3000:]
    assert "Traceback" not in launcher.output()

    # The flusher drained the spool on SIGTERM (after web had gone): every click is stored, and
    # a flusher started afterwards finds nothing left.
    assert Click.objects.filter(pk__in=last).count() == len(last)
    assert "Flushed 0 buffered clicks." in launcher.flush_once()
