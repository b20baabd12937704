"""Where the click path's time goes: py-spy samples the server's workers during a click run,
and each sample is put in one bucket by the innermost frame that names one (so time in hmac
under tracking/visitors.py counts as "visitor and IP hashing", a socket send under redis-py as
"Redis XADD")."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

# (bucket, substrings of a frame "function (path:line)"); the first bucket matching the
# innermost frame wins, walking outwards.
BUCKETS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("click spool (the line and its write)", ("tracking/spool.py",)),
    ("Redis XADD (redis-py and the round trip)", ("redis/",)),
    ("PostgreSQL (link cache misses, direct writes)", ("psycopg", "django/db/")),
    ("bot check (crawler list regex)", ("tracking/bots.py",)),
    ("visitor id, cookie signature and IP hashing (HMAC)", ("tracking/visitors.py",)),
    ("link cache lookup", ("tracking/linkcache.py",)),
    ("click record (building the entry, choosing the buffer)", ("tracking/clicks.py", "tracking/click_stream.py")),
    ("Location URL (query pass-through, aff_click)", ("_location (", "_ClickRedirect")),
    ("cookies (Set-Cookie headers)", ("set_cookie", "http/cookie", "http/cookies.py", "_cookie (", "_cookie_template")),
    ("the click view itself", ("tracking/redirect.py",)),
    ("bare view", ("bench/urls.py",)),
    (
        "middleware (security, WhiteNoise, sessions, CSRF, auth, messages, CSP, axes)",
        (
            "django/middleware/",
            "whitenoise/",
            "csp/",
            "axes/",
            "django/contrib/sessions/",
            "django/contrib/messages/",
            "django/contrib/auth/",
            "config/middleware.py",
            "django/utils/deprecation.py",
        ),
    ),
    (
        "Django request/response (WSGIHandler, URL resolving, HttpResponse)",
        ("django/core/handlers/", "django/urls/", "django/http/", "django/utils/", "django/dispatch/", "asgiref/"),
    ),
    ("WSGI server (accept, parse, write, close)", ("gunicorn/", "granian/")),
)


@dataclass(frozen=True)
class Profile:
    samples: int
    buckets: list[tuple[str, int]]
    top_self: list[tuple[str, int]]

    def as_dict(self) -> dict:
        return {"samples": self.samples, "buckets": self.buckets, "top_self": self.top_self}


def py_spy() -> str | None:
    candidate = Path(sys.executable).parent / "py-spy"
    return str(candidate) if candidate.exists() else shutil.which("py-spy")


def record(pid: int, seconds: float, out: Path, rate: int = 200) -> subprocess.Popen:
    """Start sampling ``pid`` and its worker processes; returns at once."""
    binary = py_spy()
    if binary is None:
        raise RuntimeError("py-spy is not installed")
    argv = [
        binary,
        "record",
        "--pid",
        str(pid),
        "--subprocesses",
        "--duration",
        str(int(seconds)),
        "--rate",
        str(rate),
        "--format",
        "raw",
        "--nonblocking",
        # Only samples holding the GIL: where the Python CPU goes, not time waiting on sockets.
        "--gil",
        "-o",
        str(out),
    ]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _bucket(frames: list[str]) -> str | None:
    for frame in reversed(frames):
        for name, needles in BUCKETS:
            if any(needle in frame for needle in needles):
                return name
    return None


def _is_idle(frames: list[str]) -> bool:
    # The arbiter (master) process and workers waiting for a connection are not request work.
    if len(frames) <= 2:  # a process or thread root with nothing running
        return True
    joined = ";".join(frames)
    return ("Arbiter.run" in joined and "spawn_worker" not in joined) or any(
        f.startswith(("SyncWorker.wait", "ThreadWorker.wait", "select ", "wait_for_signals")) for f in frames[-2:]
    )


def summarise(raw: Path, top: int = 12) -> Profile:
    buckets: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        if _is_idle(frames):
            continue
        n = int(count)
        total += n
        buckets[_bucket(frames) or "other (Python runtime, stdlib)"] += n
        own[frames[-1].split(" (")[0] + " (" + frames[-1].rsplit("/", 1)[-1]] += n
    return Profile(samples=total, buckets=buckets.most_common(), top_self=own.most_common(top))
