from __future__ import annotations

import pytest

from tracking import clicks

BROWSER_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
)
OTHER_BROWSER_UA = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Every factory partner gets a password; the production hasher costs ~0.3 s each.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fresh_click_buffer_state():
    clicks.reset_buffer_state()
    yield
    clicks.reset_buffer_state()


@pytest.fixture
def visit(client):
    """GET /r/<code> as a browser (the test client sends no user agent by default, which
    counts as a bot)."""

    def _visit(code: str, query: str = "", *, user_agent: str = BROWSER_UA, ip: str = "203.0.113.7", **extra):
        path = f"/r/{code}" + (f"?{query}" if query else "")
        return client.get(path, HTTP_USER_AGENT=user_agent, REMOTE_ADDR=ip, **extra)

    return _visit


def rollup_totals(link) -> tuple[int, int]:
    """(clicks, unique clicks) of a link summed over its daily rollup rows."""
    from tracking.models import DailyLinkStats

    rows = DailyLinkStats.objects.filter(link=link)
    return sum(r.clicks for r in rows), sum(r.unique_clicks for r in rows)
