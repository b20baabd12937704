"""GET /r/<code>: docs/reference.md "Tracking links"."""

from __future__ import annotations

import uuid
from email.utils import parsedate_to_datetime
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import LinkFactory, PartnerFactory
from tests.tracking.conftest import BROWSER_UA, OTHER_BROWSER_UA
from tracking.models import Click, DailyLinkStats, UniqueVisitor
from tracking.services import link_create, link_disable
from tracking.visitors import visitor_cookie_value

pytestmark = pytest.mark.django_db

NINETY_DAYS = 90 * 86400


def _query(location: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(location).query, keep_blank_values=True)


def test_a_click_redirects_to_the_destination_with_the_click_id_added(visit):
    link = LinkFactory(destination="https://crazycall.com/pricing")
    response = visit(link.code)
    assert response.status_code == 302
    click = Click.objects.get()
    assert response["Location"] == f"https://crazycall.com/pricing?aff_click={click.id}"


def test_the_destination_query_and_fragment_are_kept(visit):
    link = LinkFactory(destination="https://app.crazycall.com/signup?plan=b&lang=en#form")
    response = visit(link.code)
    click = Click.objects.get()
    parts = urlsplit(response["Location"])
    assert (parts.scheme, parts.netloc, parts.path, parts.fragment) == ("https", "app.crazycall.com", "/signup", "form")
    assert parts.query == f"plan=b&lang=en&aff_click={click.id}"


def test_an_empty_destination_sends_the_visitor_to_the_default_landing_page(visit, settings):
    settings.DEFAULT_LANDING_URL = "https://crazycall.com/welcome"
    partner = PartnerFactory()
    response = visit(partner.referral_code)
    click = Click.objects.get()
    assert response["Location"] == f"https://crazycall.com/welcome?aff_click={click.id}"
    assert click.link.is_default


def test_the_click_cookie_carries_the_click_id_for_the_attribution_window(visit):
    link = LinkFactory()
    response = visit(link.code)
    cookie = response.cookies["aff_click"]
    assert cookie.value == str(Click.objects.get().id)
    assert cookie["max-age"] == NINETY_DAYS
    assert cookie["path"] == "/"
    assert cookie["samesite"] == "Lax"
    assert cookie["httponly"] is True
    assert cookie["secure"] is True
    assert cookie["domain"] == ""


def test_the_click_cookie_follows_the_attribution_window_setting(visit, settings):
    settings.ATTRIBUTION_WINDOW_DAYS = 30
    response = visit(LinkFactory().code)
    assert response.cookies["aff_click"]["max-age"] == 30 * 86400


def test_the_click_cookie_is_not_secure_in_debug_mode(visit, settings):
    settings.DEBUG = True
    response = visit(LinkFactory().code)
    assert response.cookies["aff_click"]["secure"] == ""
    assert response.cookies["aff_vid"]["secure"] == ""


def test_the_cookie_domain_comes_from_tracking_cookie_domain(visit, settings):
    settings.TRACKING_COOKIE_DOMAIN = ".crazycall.com"
    response = visit(LinkFactory().code)
    assert response.cookies["aff_click"]["domain"] == ".crazycall.com"
    assert response.cookies["aff_vid"]["domain"] == ".crazycall.com"


def test_a_long_lived_visitor_cookie_is_set(visit):
    response = visit(LinkFactory().code)
    cookie = response.cookies["aff_vid"]
    visitor_id = Click.objects.get().visitor_id
    assert cookie.value == visitor_cookie_value(visitor_id)
    assert cookie["max-age"] >= 365 * 86400
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"


def test_every_answer_of_the_redirect_is_not_cacheable(visit, client):
    client.handler.enforce_csrf_checks = True
    link = LinkFactory()
    disabled = LinkFactory(is_active=False)
    answers = [
        visit(link.code),
        visit("no-such-code"),
        visit(disabled.code),
        visit("x"),
        visit(link.code, user_agent="Googlebot/2.1 (+http://www.google.com/bot.html)"),
        client.head(f"/r/{link.code}", HTTP_USER_AGENT=BROWSER_UA),
        client.post(f"/r/{link.code}", HTTP_USER_AGENT=BROWSER_UA),
    ]
    assert [a["Cache-Control"] for a in answers] == ["no-store"] * len(answers)
    assert answers[-1].status_code == 405


def test_click_url_parameters_are_passed_on_and_never_followed(visit):
    link = LinkFactory(destination="https://crazycall.com/pricing")
    response = visit(link.code, "utm_source=blog&utm_campaign=spring&next=https://evil.io/&url=//evil.io&redirect_to=x")
    parts = urlsplit(response["Location"])
    assert parts.netloc == "crazycall.com"
    assert parts.path == "/pricing"
    query = _query(response["Location"])
    assert query["utm_source"] == ["blog"]
    assert query["utm_campaign"] == ["spring"]
    assert query["next"] == ["https://evil.io/"]
    assert query["url"] == ["//evil.io"]
    assert query["aff_click"] == [str(Click.objects.get().id)]


def test_an_aff_click_in_the_click_url_cannot_replace_the_real_one(visit):
    link = LinkFactory()
    response = visit(link.code, f"aff_click={uuid.uuid4()}")
    assert _query(response["Location"])["aff_click"] == [str(Click.objects.get().id)]


def test_an_unknown_code_goes_to_the_default_landing_page_without_cookie_or_click(visit):
    response = visit("unknown-code", "utm_source=x")
    assert response.status_code == 302
    assert response["Location"] == "https://crazycall.com/"
    assert not response.cookies
    assert not Click.objects.exists()


def test_a_code_of_the_wrong_shape_goes_to_the_default_landing_page(visit):
    for code in ("ab", "a" * 41, "bad.code", "bad%20code"):
        response = visit(code)
        assert response.status_code == 302
        assert response["Location"] == "https://crazycall.com/"
    assert not Click.objects.exists()


def test_a_disabled_link_goes_to_the_default_landing_page_without_cookie_or_click(visit):
    link = LinkFactory(is_active=False)
    response = visit(link.code)
    assert response["Location"] == "https://crazycall.com/"
    assert not response.cookies
    assert not Click.objects.exists()


def test_disabling_a_link_takes_effect_at_once_despite_the_link_cache(visit):
    link = LinkFactory()
    visit(link.code)  # now cached in this process
    link_disable(partner=link.partner, link_id=link.pk)
    response = visit(link.code)
    assert response["Location"] == "https://crazycall.com/"
    assert Click.objects.count() == 1


def test_a_head_request_is_redirected_but_not_counted(client):
    link = LinkFactory()
    response = client.head(f"/r/{link.code}", HTTP_USER_AGENT=BROWSER_UA)
    assert response.status_code == 302
    assert response["Location"] == link.destination
    assert "aff_click" not in response.cookies
    assert not Click.objects.exists()
    assert not DailyLinkStats.objects.exists()


@pytest.mark.parametrize(
    "user_agent",
    [
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
        "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
        "curl/8.5.0",
        "python-requests/2.32.3",
        "",
        "   ",
    ],
)
def test_bots_are_redirected_but_not_counted(visit, user_agent):
    link = LinkFactory()
    response = visit(link.code, "utm_source=x", user_agent=user_agent)
    assert response.status_code == 302
    assert response["Location"] == f"{link.destination}?utm_source=x"
    assert "aff_click" not in response.cookies
    assert not Click.objects.exists()
    assert not UniqueVisitor.objects.exists()


def test_a_repeat_click_adds_a_click_but_no_unique_click(visit):
    link = LinkFactory()
    first = visit(link.code)
    visit(link.code, HTTP_COOKIE=f"aff_vid={first.cookies['aff_vid'].value}", ip="198.51.100.9")
    assert Click.objects.count() == 2
    assert Click.objects.filter(is_unique=True).count() == 1
    stats = DailyLinkStats.objects.get(link=link)
    assert (stats.clicks, stats.unique_clicks) == (2, 1)


def test_two_visitors_make_two_unique_clicks(visit, client):
    link = LinkFactory()
    visit(link.code, ip="203.0.113.1")
    client.cookies.clear()
    visit(link.code, ip="203.0.113.2")
    assert Click.objects.filter(is_unique=True).count() == 2
    stats = DailyLinkStats.objects.get(link=link)
    assert (stats.clicks, stats.unique_clicks) == (2, 2)


def test_a_visitor_refusing_cookies_is_recognised_by_ip_and_user_agent(visit, client):
    link = LinkFactory()
    for _ in range(3):
        client.cookies.clear()
        visit(link.code, ip="203.0.113.5")
    client.cookies.clear()
    visit(link.code, ip="203.0.113.5", user_agent=OTHER_BROWSER_UA)
    assert Click.objects.count() == 4
    assert Click.objects.filter(is_unique=True).count() == 2


def test_the_visitor_cookie_keeps_one_visitor_across_networks(visit, client):
    link = LinkFactory()
    first = visit(link.code, ip="203.0.113.5")
    visit(link.code, ip="192.0.2.44", user_agent=OTHER_BROWSER_UA)  # the client resends aff_vid
    assert Click.objects.filter(is_unique=True).count() == 1
    assert set(Click.objects.values_list("visitor_id", flat=True)) == {first.cookies["aff_vid"].value.split(".")[0]}


def test_a_forged_visitor_cookie_is_ignored(visit, client):
    link = LinkFactory()
    visit(link.code)
    for n in range(3):
        client.cookies["aff_vid"] = f"{n:032x}.{'0' * 16}"
        visit(link.code)
    assert Click.objects.filter(is_unique=True).count() == 1


def test_the_ip_address_is_stored_only_as_a_keyed_hash(visit):
    visit(LinkFactory().code, ip="203.0.113.77")
    click = Click.objects.get()
    assert "203.0.113.77" not in click.ip_hash
    assert len(click.ip_hash) == 64
    assert click.ip_hash != __import__("hashlib").sha256(b"203.0.113.77").hexdigest()


def test_user_agent_and_referer_are_truncated_to_the_column_lengths(visit):
    long_ua = BROWSER_UA + " x" * 600
    visit(LinkFactory().code, user_agent=long_ua, HTTP_REFERER="https://blog.example/" + "p" * 2000)
    click = Click.objects.get()
    assert click.user_agent == long_ua[:512]
    assert len(click.referer) == 1024


def test_a_thirty_day_link_redirects_and_counts_like_any_other(visit, partner):
    link = link_create(partner=partner, destination="https://crazycall.com/pricing", trial_days=30, description="Blog")
    response = visit(link.code)
    assert response.status_code == 302
    click = Click.objects.select_related("link").get()
    assert click.link.trial_days == 30
    assert response["Location"] == f"https://crazycall.com/pricing?aff_click={click.id}"


def _data_statements(queries: list[dict]) -> list[str]:
    skip = ("SAVEPOINT", "RELEASE SAVEPOINT", "BEGIN", "COMMIT")
    return [q["sql"] for q in queries if not q["sql"].upper().startswith(skip)]


def test_the_redirect_writes_a_click_in_two_statements_on_postgresql(visit, django_assert_num_queries):
    link = LinkFactory()
    # PostgreSQL: the (link, visitor) pair, then the click with every rollup it moves (the link's
    # day, the click's device per link and partner-wide) in one statement. SQLite, without
    # writable CTEs: the click, the link rollup and the two dimension rollups one by one.
    writes = 2 if connection.vendor == "postgresql" else 5
    # Cold: link lookup + savepoint + the writes + release (inside the test's transaction).
    with django_assert_num_queries(writes + 3) as cold:
        visit(link.code)
    with django_assert_num_queries(writes + 2) as warm:
        visit(link.code)
    cold_sql, warm_sql = _data_statements(cold.captured_queries), _data_statements(warm.captured_queries)
    assert len(cold_sql) == writes + 1 and cold_sql[0].startswith("SELECT")
    assert len(warm_sql) == writes
    assert warm_sql[0].startswith('INSERT INTO "tracking_uniquevisitor"')
    rest = " ".join(warm_sql[1:])
    for table in ("tracking_click", "tracking_dailylinkstats", "tracking_dailydimensionstats"):
        assert f'INSERT INTO "{table}"' in rest
    assert 'INTO "tracking_partnerdailydimensionstats"' in rest


def test_unknown_codes_and_bots_cost_at_most_one_query(visit, django_assert_max_num_queries):
    link = LinkFactory()
    visit(link.code, user_agent="curl/8")  # cache the link
    with django_assert_max_num_queries(0):
        visit(link.code, user_agent="curl/8")
    with CaptureQueriesContext(connection) as ctx:
        visit("unknown-code")
    assert len(ctx.captured_queries) == 1


def test_behind_a_trusted_proxy_visitors_are_told_apart_by_their_own_address(visit, client, settings):
    # Every request arrives from the proxy; without TRUSTED_PROXY_COUNT all cookieless visitors
    # with the same browser would be one visitor.
    settings.TRUSTED_PROXY_COUNT = 1
    link = LinkFactory()
    for address in ("198.51.100.1", "198.51.100.2", "198.51.100.2"):
        client.cookies.clear()
        visit(link.code, ip="10.0.0.1", HTTP_X_FORWARDED_FOR=f"6.6.6.6, {address}")
    assert Click.objects.count() == 3
    assert Click.objects.filter(is_unique=True).count() == 2


@pytest.mark.parametrize(
    ("destination", "query", "expected"),
    [
        (
            "https://crazycall.com/prices/%C3%BF?q=%C3%A4#part",
            "",
            "https://crazycall.com/prices/%C3%BF?q=%C3%A4&aff_click={id}#part",
        ),
        ("https://crazycall.com/signup?", "utm_source=x", "https://crazycall.com/signup?utm_source=x&aff_click={id}"),
        ("https://crazycall.com/signup?plan=a&", "", "https://crazycall.com/signup?plan=a&aff_click={id}"),
        ("https://crazycall.com", "a=1&aff_click=forged", "https://crazycall.com?a=1&aff_click={id}"),
    ],
)
def test_the_parameters_are_added_to_the_query_once_before_the_fragment(visit, destination, query, expected):
    link = LinkFactory(destination=destination)
    response = visit(link.code, query)
    assert response["Location"] == expected.format(id=Click.objects.get().id)


def test_a_bot_is_sent_to_the_destination_with_its_parameters_and_no_click_id(visit):
    link = LinkFactory(destination="https://crazycall.com/prices/%C3%BF#top")
    assert visit(link.code, user_agent="Googlebot/2.1")["Location"] == "https://crazycall.com/prices/%C3%BF#top"
    response = visit(link.code, "utm_medium=x y", user_agent="Googlebot/2.1")
    assert response["Location"] == "https://crazycall.com/prices/%C3%BF?utm_medium=x+y#top"
    assert not Click.objects.exists()


@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize("domain", [None, ".crazycall.com"])
def test_the_cookies_are_written_as_set_cookie_writes_them(visit, settings, debug, domain):
    from django.http import HttpResponse

    settings.DEBUG, settings.TRACKING_COOKIE_DOMAIN = debug, domain
    response = visit(LinkFactory().code)
    for name, max_age in (("aff_click", NINETY_DAYS), ("aff_vid", 2 * 365 * 86400)):
        reference = HttpResponse()
        value = response.cookies[name].value
        reference.set_cookie(
            name, value, max_age=max_age, domain=domain, secure=not debug, httponly=True, samesite="Lax"
        )
        expected = reference.cookies[name].output(header="").strip()
        written = response.cookies[name].output(header="").strip()
        # Expires is computed from the clock: compare everything else, then the date loosely.
        drop_expires = lambda header: sorted(p for p in header.split("; ") if not p.startswith("expires="))  # noqa: E731
        assert drop_expires(written) == drop_expires(expected)
        gap = parsedate_to_datetime(response.cookies[name]["expires"]) - parsedate_to_datetime(
            reference.cookies[name]["expires"]
        )
        assert abs(gap.total_seconds()) <= 2
        assert dict(response.cookies[name]) == {
            **dict(reference.cookies[name]),
            "expires": response.cookies[name]["expires"],
        }


def test_a_returning_visitor_gets_the_same_visitor_cookie_back_with_a_fresh_lifetime(visit, client):
    link = LinkFactory()
    first = visit(link.code).cookies["aff_vid"]
    again = visit(link.code, ip="192.0.2.99").cookies["aff_vid"]  # the client resends aff_vid
    assert again.value == first.value
    assert again["max-age"] == 2 * 365 * 86400
