"""GET /r/<code>: the click redirect, the hot path (counts the click, sets the visitor and click
cookies, answers with the destination). Kept lean: no template, no session, the link from the
link cache, the click handed to ``tracking.clicks.record_click`` (a spool line in production)."""

from __future__ import annotations

import functools
import logging
import re
import time
from http.cookies import Morsel
from urllib.parse import parse_qsl, urlencode

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.utils import timezone
from django.utils.http import http_date
from django.views.decorators.csrf import csrf_exempt

from config.clientip import client_ip
from tracking import linkcache
from tracking.bots import is_bot
from tracking.click_writes import ClickData
from tracking.clicks import record_click
from tracking.ids import new_click_id
from tracking.sources import request_country
from tracking.validators import SUB_ID_PARAMETERS, TRACKING_PARAMETER, clean_sub_id
from tracking.visitors import (
    VISITOR_COOKIE,
    VISITOR_COOKIE_MAX_AGE,
    hash_ip,
    visitor_cookie_value,
    visitor_from_cookie,
    visitor_from_request,
)

logger = logging.getLogger(__name__)

CLICK_COOKIE = "aff_click"
_CODE_RE = re.compile(r"^[A-Za-z0-9_-]{3,40}$")
# Click-URL query strings longer than this (or with more fields) are not passed on.
_MAX_PASSTHROUGH_CHARS = 2048
_MAX_PASSTHROUGH_FIELDS = 50


# --- GET /r/<code> ---------------------------------------------------------------------------


_NO_SUB_IDS = ("", "", "")


def _query_pairs(query_string: str) -> list[tuple[str, str]]:
    """The click URL's query parameters, or none when it is too long or has too many fields."""
    if not query_string or len(query_string) > _MAX_PASSTHROUGH_CHARS:
        return []
    try:
        return parse_qsl(query_string, keep_blank_values=True, max_num_fields=_MAX_PASSTHROUGH_FIELDS)
    except ValueError:
        return []


def _sub_ids(pairs: list[tuple[str, str]]) -> tuple[str, str, str]:
    """sub1, sub2, sub3 of the click URL (the first of each), cleaned; empty when absent."""
    found = dict.fromkeys(SUB_ID_PARAMETERS, "")
    for name, value in pairs:
        if name in found and not found[name]:
            found[name] = clean_sub_id(value)
    return found["sub1"], found["sub2"], found["sub3"]


def _location(link: linkcache.CachedLink, pairs: list[tuple[str, str]], click_id: str | None) -> str:
    """The link's destination with the click URL's own query parameters (passed on as ordinary
    parameters, never followed; sub-IDs only when the link passes them on) and ``aff_click``
    appended; its query and fragment kept."""
    extra = ""
    if pairs:
        dropped = (TRACKING_PARAMETER,) if link.pass_sub_ids else (TRACKING_PARAMETER, *SUB_ID_PARAMETERS)
        extra = urlencode([(name, value) for name, value in pairs if name not in dropped])
    if click_id is not None:
        # A UUID: nothing in it to encode.
        extra = f"{extra}&{TRACKING_PARAMETER}={click_id}" if extra else f"{TRACKING_PARAMETER}={click_id}"
    if not extra:
        return link.location_head + link.location_fragment
    return f"{link.location_head}{link.location_separator}{extra}{link.location_fragment}"


class _ClickRedirect(HttpResponseRedirect):
    """A 302 to a Location built from a cached link: the destination was validated when the
    link was saved and again when it was cached, and it is already a URI, so Django's
    per-response checks (scheme, IRI-to-URI) are not repeated on the hottest path."""

    def __init__(self, location: str) -> None:
        HttpResponse.__init__(self, status=302)
        self["Location"] = location
        self["Cache-Control"] = "no-store"


def _redirect(location: str) -> HttpResponse:
    response = HttpResponseRedirect(location)
    response["Cache-Control"] = "no-store"
    return response


class _Cookie(Morsel):
    """A Set-Cookie of the redirect: what ``HttpResponse.set_cookie`` writes (value, Max-Age,
    Expires, Path, Domain, Secure, HttpOnly, SameSite=Lax), its fixed attributes formatted once
    per (name, lifetime, settings) instead of on every click. Values are click and visitor ids
    (hex digits, dashes, a dot): nothing in them needs quoting."""

    tail = ""

    def OutputString(self, attrs=None) -> str:
        return f"{self.key}={self.coded_value}; expires={self['expires']}{self.tail}"


@functools.lru_cache(maxsize=16)
def _cookie_template(name: str, max_age: int, domain: str, secure: bool) -> _Cookie:
    template = _Cookie()
    template.set(name, "", "")
    template.update({"max-age": max_age, "path": "/", "httponly": True, "samesite": "Lax"})
    if domain:
        template["domain"] = domain
    if secure:
        template["secure"] = True
    template.tail = "".join(
        f"; {part}"
        for part in (
            "HttpOnly",
            f"Max-Age={max_age}",
            f"Domain={domain}" if domain else "",
            "Path=/",
            "SameSite=Lax",
            "Secure" if secure else "",
        )
        if part
    )
    return template


_expires_at: dict[int, tuple[int, str]] = {}  # max_age -> (second, Expires value)


def _cookie(response: HttpResponse, name: str, value: str, max_age: int) -> None:
    now = int(time.time())
    second, expires = _expires_at.get(max_age, (-1, ""))
    if second != now:
        expires = http_date(now + max_age)
        _expires_at[max_age] = (now, expires)
    template = _cookie_template(name, max_age, settings.TRACKING_COOKIE_DOMAIN or "", not settings.DEBUG)
    cookie = _Cookie()  # Morsel.copy() would make a plain Morsel
    dict.update(cookie, template)
    cookie.__dict__.update(template.__dict__)
    cookie.set(name, value, value)
    cookie["expires"] = expires
    response.cookies[name] = cookie


@csrf_exempt  # changes nothing on POST (405), but every /r/ answer must carry no-store
def click_redirect_view(request: HttpRequest, code: str) -> HttpResponse:
    """The affiliate link (docs/reference.md "Tracking links"). The hottest path of the product:
    no session, no template, the link from the in-process cache, the click buffered in Redis
    or written with three statements. It redirects whatever fails behind it."""
    if request.method not in ("GET", "HEAD"):
        response = HttpResponseNotAllowed(["GET", "HEAD"])
        response["Cache-Control"] = "no-store"
        return response
    link = None
    if _CODE_RE.match(code):
        try:
            link = linkcache.get_link(code)
        except DatabaseError:
            logger.exception("Link lookup failed for /r/%s; sending the visitor to the default landing page.", code)
    if link is None or not link.is_active:
        return _redirect(settings.DEFAULT_LANDING_URL)
    if link.destination_refused:
        logger.warning("Link %s has a destination outside the allowed hosts; using the default landing page.", code)

    pairs = _query_pairs(request.META.get("QUERY_STRING", ""))
    user_agent = request.META.get("HTTP_USER_AGENT", "").replace("\x00", "")
    if request.method == "HEAD" or is_bot(user_agent[:1024]):
        return _ClickRedirect(_location(link, pairs, None))

    ip = client_ip(request)  # behind a proxy REMOTE_ADDR is the proxy: every visitor would share it
    visitor_cookie = request.COOKIES.get(VISITOR_COOKIE)
    visitor_id = visitor_from_cookie(visitor_cookie)
    if visitor_id is None:
        visitor_id = visitor_from_request(ip, user_agent)
        visitor_cookie = visitor_cookie_value(visitor_id)
    # else the incoming cookie is exactly the signed value: sent back as it is (a longer life).
    sub1, sub2, sub3 = _sub_ids(pairs) if pairs else _NO_SUB_IDS
    click = ClickData(
        id=new_click_id(),
        link_id=link.id,
        partner_id=link.partner_id,
        visitor_id=visitor_id,
        created_at=timezone.now(),
        ip_hash=hash_ip(ip),
        user_agent=user_agent[:512],
        referer=request.META.get("HTTP_REFERER", "").replace("\x00", "")[:1024],
        sub1=sub1,
        sub2=sub2,
        sub3=sub3,
        country=request_country(request),
    )
    try:
        record_click(click)
    except DatabaseError:
        # Neither Redis nor the database took the click: still redirect, without a click id
        # that names nothing (an older aff_click cookie keeps attributing).
        logger.exception("Click on /r/%s could not be recorded.", code)
        return _ClickRedirect(_location(link, pairs, None))

    click_id = str(click.id)
    response = _ClickRedirect(_location(link, pairs, click_id))
    _cookie(response, CLICK_COOKIE, click_id, settings.ATTRIBUTION_WINDOW_DAYS * 86400)
    _cookie(response, VISITOR_COOKIE, visitor_cookie, VISITOR_COOKIE_MAX_AGE)
    return response
