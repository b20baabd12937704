"""Run the reliability suite and write docs/reliability.md — ``make reliability``.

Runs ``tests/reliability`` (plus the ``check --deploy`` test that lives with the configuration
tests) with JUnit XML output, then turns each test case into a table row: the case, what it
tried (the ``tried`` property each test records) and whether it held. Exits with pytest's code,
so a failing case fails the command after the report is written.

Meant for PostgreSQL and Redis (what CI runs): ``DATABASE_URL=postgres://… REDIS_URL=redis://…
make reliability``. On SQLite the PostgreSQL-only cases are reported as skipped.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUTPUT = ROOT / "docs" / "reliability.md"
EXTRA_TESTS = [
    "tests/partners/test_configuration.py::test_production_settings_pass_check_deploy",
    # Issue 16: referrals behind a click-buffer backlog, the spool read once, edge input, rates.
    "tests/commissions/test_awaiting_click.py",
    "tests/tracking/test_click_spool.py::test_the_flusher_reads_each_line_once_across_rotations",
    "tests/commissions/test_event_inputs.py",
    "tests/commissions/test_partner_rates.py",
]
# What the tests outside this folder try (they record no ``tried`` property themselves).
TRIED = {
    "test_production_settings_pass_check_deploy": "`manage.py check --deploy --fail-level WARNING` with DEBUG=false "
    "(subprocess; the test lives in tests/partners/test_configuration.py)",
    "test_sign_ups_behind_100000_spooled_clicks_are_referred_when_the_flusher_reaches_their_clicks": "100,000 clicks "
    "spooled ahead of two sign-ups' clicks (one per event path), a payment each while they wait; then the flusher",
    "test_sign_ups_behind_100000_clicks_in_the_redis_stream_are_referred_when_the_flusher_reaches_their_clicks": "100,000 "
    "entries in the Redis stream ahead of two sign-ups' clicks (one per event path), a payment each; then the flusher",
    "test_a_sign_up_while_another_flusher_holds_the_spool_for_10_seconds_is_referred_when_it_lets_go": "a sign-up and "
    "a payment while another flusher holds the spool's lock for 10 s",
    "test_the_flusher_reads_each_line_once_across_rotations": "40 random rounds of appends, rotations and small "
    "flushes: lines read vs clicks written",
}

# Module → section of the report, in the order.
AREAS = {
    "test_faults": "1. Faults",
    "test_load": "2. Concurrency",
    "test_hostile_input": "3. Hostile input",
    "test_access_control": "4. Access control",
    "test_secrets": "5. Secrets and data",
    "test_configuration": "5. Secrets and data",
    "test_audit": "6. Audit",
    "test_awaiting_click": "7. Money events: buffer lag, edge input, rates (issue 16)",
    "test_click_spool": "7. Money events: buffer lag, edge input, rates (issue 16)",
    "test_event_inputs": "7. Money events: buffer lag, edge input, rates (issue 16)",
    "test_partner_rates": "7. Money events: buffer lag, edge input, rates (issue 16)",
    "test_differential": "8. Differential: the SQL fast path against the general path",
    "test_payout_lifecycle": "9. Payout lifecycle: the state machine against the strict fake PayPal",
}

# What the suite found in the product and how each was fixed (kept with the generator so the
# report always carries it).
FINDINGS = [
    (
        "Redis (the cache) down: the password reset form answered 500",
        "partners/views.py: the throttle fails closed with a clear 503 and message",
    ),
    (
        "Celery broker down: a withdrawal request was saved but answered 500 (on-commit task publish raised)",
        "payouts/services/common.py: notification and balance-refresh hooks are `robust` on-commit callbacks",
    ),
    (
        "A tampered withdrawal `next` (not a path) answered 500: `redirect()` reversed it as a view name",
        "payouts/views.py: only local paths are followed, as URLs",
    ),
    (
        "/api/v1/docs served django-ninja's CDN page with an inline script (blocked by the CSP)",
        "config/settings.py: `ninja` in INSTALLED_APPS, so the vendored CSP-friendly page is used",
    ),
    (
        "Concurrent redirects through the Redis buffer answered 500 ('I/O operation on closed file'): two threads "
        "created the Redis client at once and the orphan's garbage collection closed the shared pool",
        "tracking/click_stream.py: clients are created under a lock",
    ),
    (
        "A signed event with NUL in an id answered 500 on PostgreSQL (text/jsonb cannot hold NUL)",
        "commissions/schemas.py: ids with NUL are a 400 `invalid_value`",
    ),
    (
        "A signed event whose `created` had an offset beyond ±15:59 (e.g. -23:03) answered 500 on PostgreSQL",
        "commissions/schemas.py: `created` is normalised to UTC; dates UTC cannot hold are a 400",
    ),
    (
        "Broker down: a staff approval (and 'Retry sending') was committed but the admin answered 500, and the "
        "payout then waited in `approved`",
        "payouts/services/withdrawals.py + tasks.py: the send is a `robust` on-commit hook and the periodic poll re-sends "
        "approved payouts that never reached PayPal (test_paypal.py)",
    ),
    (
        "django-axes logged every successful login with its IP address in clear",
        "config/settings.py: `AXES_DISABLE_ACCESS_LOG = True` (failed attempts are kept: they are the throttle)",
    ),
    (
        "The password-reset throttle put the raw email in its cache key (InvalidCacheKey on memcached)",
        "partners/views.py: the key holds a SHA-256 of the email",
    ),
    (
        "django-axes kept failed-login IP addresses in clear in AccessAttempt (the lockout needs a per-address key)",
        "config/clientip.py: axes is given a keyed hash of the address, shaped as an IPv6 address in fd00::/8",
    ),
    (
        "Django's own admin changelist passed list-filter and search values to the database unchecked: "
        "`?status=%00` was a PostgreSQL DataError (500) for staff",
        "config/middleware.py: `AdminNulMiddleware` answers a NUL in an admin query string with 400",
    ),
    # Issue 17: an outside tester's findings.
    (
        "Admin login lockout bypassed by changing the email's case (axes keyed on the email as typed, the lookup "
        "ignored case); on PostgreSQL `prıya@` logged in as a locked `priya@` (UPPER() folds ı)",
        "partners/emails.py: one normalisation (NFKC + casefold) for the lookup (exact, on stored normalised "
        "emails), the axes lockout key, sign-up and reset; migration partners 0002 normalises stored emails",
    ),
    (
        "Production fell back to the console email backend: password reset links in the server log",
        "config/settings.py: DEBUG off refuses console, locmem and file backends, naming EMAIL_URL",
    ),
    (
        "No per-address login limit: 90 failures for different emails from one address never locked",
        "partners/lockout.py: an address rule beside the per-account one (LOGIN_ADDRESS_FAILURE_LIMIT)",
    ),
    (
        "Sign-up told whether an email had an account, unthrottled (100 answers in 0.8 s)",
        "partners/views.py + services.py: one answer for taken and free emails (the owner is emailed), a "
        "per-address limit, and a confirmation link needed before the first withdrawal",
    ),
    (
        "Throttles counted per worker on the local-memory cache (10 reset emails against a limit of 5 with 4 workers)",
        "config/settings.py: production requires a shared cache (REDIS_URL or CACHE_URL)",
    ),
    (
        "end=9999-12-31 answered 500 on four pages and their CSVs (the payouts CSV stopped mid-stream) and an "
        "HTML 500 on /api/v1/partner/links",
        "tracking/reports.py `check_day`, used by the API's range parser and the pages' date form; CSVs refuse "
        "a bad filter with 400",
    ),
    (
        "No Cache-Control on authenticated pages and the partner API",
        "config/middleware.py: `PrivateCacheMiddleware` sends `private, no-store`",
    ),
    (
        "The settings page's current-password check was an unthrottled password oracle",
        "partners/forms.py: checked through authenticate(), under the login lockout",
    ),
    (
        "Line breaks in a partner's name reached the staff payout email as lines of their own",
        "partners/validators.py on names and billing fields; the staff email renders them with `one_line`",
    ),
    (
        "X-Forwarded-Proto trusted with no proxy: a client chose the scheme of reset links",
        "config/settings.py: SECURE_PROXY_SSL_HEADER only when TRUSTED_PROXY_COUNT > 0; reset links on SITE_URL",
    ),
]

FINDINGS += [
    (
        "A sign-up naming a click still in the spool or the Redis stream (behind a backlog, or while another "
        "flusher held the spool's lock) was stored as not referred, and its replays answered null (issue 16, 3)",
        "tracking/ids.py signs click ids; commissions `AwaitingClick`: the sign-up waits for its click, the "
        "customer's events are held and applied when the flusher stores it (tracking/click_writes.py `clicks_stored`)",
    ),
    (
        "Rotated spool files were read (and written) again: read positions were kept under the `.open` name "
        "(issue 16, 4)",
        "tracking/spool.py: positions are kept under the name without its suffix",
    ),
    (
        "A sign-up `created` in late 9999 answered 500 on the fast path (OverflowError adding the trial) (issue 16, 5)",
        "commissions/fastpath.py, services.py: no trial length that ends after 9999 is answered by SQL; the general "
        "path refuses such a sign-up with 400; the window is checked as a difference",
    ),
    (
        "Amounts in non-ASCII digits (`١٢.٣٤`, `４９.００`) were accepted (issue 16, 6)",
        "commissions/schemas.py: `[0-9]`, not `\\d`",
    ),
    (
        "A partial refund after the rate changed reversed at today's rate, not the payment's (issue 16, 8)",
        "commissions: every ledger entry records its rate; a reversal uses its payment's",
    ),
    (
        "The differential test: the refund of a payment never recorded answered 500 once a stranger's payment "
        "was logged (held payments were looked for among all logged payments)",
        "commissions/services.py: held payments are those with a waiting sign-up only",
    ),
]

# Found and left to the owners (design decisions or outside the project's code).
OPEN_FINDINGS: list[str] = [
    "/admin/ has no second factor yet (the program-operations work brings it); until then README documents an "
    "IP allowlist at the proxy, and staff sessions last 12 hours",
]


@dataclass
class Case:
    module: str
    name: str
    tried: str
    outcome: str  # "held", "FAILED", "skipped"
    detail: str
    seconds: float

    @property
    def title(self) -> str:
        base, _, params = self.name.partition("[")
        words = base.removeprefix("test_").replace("_", " ")
        text = words[:1].upper() + words[1:]
        return f"{text} [{params}" if params else text


def _run(junit: Path) -> tuple[int, float]:
    command = [
        sys.executable,
        "-m",
        "pytest",
        "tests/reliability",
        *EXTRA_TESTS,
        f"--junitxml={junit}",
        "-o",
        "junit_family=xunit1",
        "-q",
        "-p",
        "no:cacheprovider",
    ]
    started = time.monotonic()
    env = {
        **os.environ,
        "DEBUG": os.environ.get("DEBUG", "true"),
        # The property tests search longer than in CI: the differential test's long profile
        # (tests/reliability/test_differential.py) and the payout state machine's.
        "DIFFERENTIAL_PROFILE": os.environ.get("DIFFERENTIAL_PROFILE", "differential-long"),
        "RELIABILITY_LONG": "1",
    }
    code = subprocess.run(command, cwd=ROOT, env=env).returncode
    return code, time.monotonic() - started


def _cases(junit: Path) -> list[Case]:
    cases = []
    for element in ET.parse(junit).getroot().iter("testcase"):  # noqa: S314 - the JUnit file our pytest wrote
        module = element.get("classname", "").rsplit(".", 1)[-1]
        properties = {p.get("name"): p.get("value") for p in element.iter("property")}
        outcome, detail = "held", ""
        for tag, label in (("failure", "FAILED"), ("error", "FAILED"), ("skipped", "skipped")):
            found = element.find(tag)
            if found is not None:
                outcome = label
                detail = (found.get("message") or "").splitlines()[0][:140] if found.get("message") else ""
                break
        cases.append(
            Case(
                module=module,
                name=element.get("name", ""),
                tried=properties.get("tried") or TRIED.get(element.get("name", ""), ""),
                outcome=outcome,
                detail=detail,
                seconds=float(element.get("time") or 0),
            )
        )
    return cases


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _environment() -> str:
    database = os.environ.get("DATABASE_URL", "")
    vendor = "PostgreSQL" if database.startswith(("postgres://", "postgresql://")) else "SQLite"
    redis = "Redis" if os.environ.get("REDIS_URL") else "no REDIS_URL (Redis cases use the local server on 6379)"
    return f"{vendor}, {redis}"


def render(cases: list[Case], *, seconds: float, code: int) -> str:
    held = sum(c.outcome == "held" for c in cases)
    failed = sum(c.outcome == "FAILED" for c in cases)
    skipped = sum(c.outcome == "skipped" for c in cases)
    lines = [
        "# Reliability and security: what was tried and what held",
        "",
        "Generated by `make reliability` (`tests/reliability/report.py`); do not edit by hand. Each row is one",
        "test of `tests/reliability/` (and the `check --deploy` test in `tests/partners/test_configuration.py`):",
        '"Tried" is what it sent or broke, "Result" whether every invariant held.',
        "",
        f"Last run: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {_environment()} — **{len(cases)} cases: {held} held, "
        f"{failed} failed, {skipped} skipped** in {seconds:.0f} s (pytest exit code {code}).",
        "",
    ]
    if skipped and "SQLite" in _environment():
        lines += [
            "> Run on SQLite: the PostgreSQL-only cases (races, the killed connection, the real worker) were",
            "> skipped. Run it as CI does: `DATABASE_URL=postgres://… REDIS_URL=redis://… make reliability`.",
            "",
        ]
    for area in dict.fromkeys(AREAS.values()):
        rows = [c for c in cases if AREAS.get(c.module) == area]
        if not rows:
            continue
        lines += [f"## {area}", "", "| Case | Tried | Result |", "|---|---|---|"]
        for case in rows:
            result = case.outcome if not case.detail else f"{case.outcome}: {case.detail}"
            lines.append(
                f"| {_cell(case.title)} | {_cell(case.tried) or '—'} | {_cell(result)} ({case.seconds:.1f} s) |"
            )
        lines.append("")
    others = [c for c in cases if c.module not in AREAS]
    if others:
        lines += ["## Other", "", "| Case | Tried | Result |", "|---|---|---|"]
        lines += [f"| {_cell(c.title)} | {_cell(c.tried) or '—'} | {c.outcome} |" for c in others]
        lines.append("")
    lines += ["## Defects these tests found, and the fixes", "", "| Found | Fixed in |", "|---|---|"]
    lines += [f"| {_cell(found)} | {_cell(fixed)} |" for found, fixed in FINDINGS]
    lines += ["", "## Found and reported, not changed here", ""]
    lines += [f"- {finding}" for finding in OPEN_FINDINGS] or ["None open."]
    lines.append("")
    return "\n".join(lines)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="pp-reliability-") as tmp:
        junit = Path(tmp) / "junit.xml"
        code, seconds = _run(junit)
        if not junit.exists():
            print("pytest wrote no JUnit report; docs/reliability.md left as it was", file=sys.stderr)
            return code or 1
        cases = _cases(junit)
    OUTPUT.write_text(render(cases, seconds=seconds, code=code))
    print(f"wrote {OUTPUT.relative_to(ROOT)}: {len(cases)} cases")
    return code


if __name__ == "__main__":
    sys.exit(main())
