"""The click redirect and the Resources pages."""

from __future__ import annotations

import functools
import logging
import re
import time
from http.cookies import Morsel
from urllib.parse import parse_qsl, urlencode

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.db import DatabaseError
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import http_date, url_has_allowed_host_and_scheme
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from commissions.money import money_str
from config.clientip import client_ip
from partners.decorators import partner_required
from tracking import linkcache
from tracking.bots import is_bot
from tracking.click_writes import ClickData
from tracking.clicks import record_click
from tracking.embed import creative_image_url, embed_html, link_url
from tracking.forms import LinkBuilderForm
from tracking.ids import new_click_id
from tracking.link_performance import LinkSeries, link_series
from tracking.models import Creative, Link
from tracking.performance import column_titles, row_numbers
from tracking.promo_views import promo_codes_context
from tracking.qr import QR_SUB1, qr_png, qr_svg
from tracking.reports import DateRangeError, parse_date_range
from tracking.selectors import creative_get, creative_list, default_link_get, link_get, link_list
from tracking.services import LinkError, link_create, link_delete, link_set_active
from tracking.sources import request_country
from tracking.validators import SUB_ID_PARAMETERS, SUB_ID_RE, TRACKING_PARAMETER, clean_sub_id
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
LINKS_PER_PAGE = 20


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


# --- Resources -------------------------------------------------------------------------------


def _creatives_data(creatives: list[Creative]) -> list[dict]:
    """What the link builder's live preview needs to draw each creative (rendered with
    ``json_script``: a JSON data block, escaped, not a script)."""
    return [
        {
            "id": c.pk,
            "kind": c.kind,
            "title": c.title,
            "text": c.text,
            "image": bool(c.is_image and c.image),
            "image_path": reverse("tracking:creative_image", args=[c.pk]) if c.is_image and c.image else "",
            "image_url": creative_image_url(c) if c.is_image and c.image else "",
            "width": c.width,
            "height": c.height,
        }
        for c in creatives
    ]


@partner_required
@require_http_methods(["GET", "POST"])
def resources_view(request: HttpRequest) -> HttpResponse:
    partner = request.partner
    if request.method == "POST":
        form = LinkBuilderForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                link = link_create(
                    partner=partner,
                    destination=data["destination"],
                    trial_days=data["trial_days"],
                    description=data["description"],
                    creative=data["creative"],
                    code=data["code"],
                    pass_sub_ids=data["pass_sub_ids"],
                )
            except LinkError as exc:
                form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            else:
                messages.success(request, "Your link is ready: copy it or its HTML code below.")
                return redirect(reverse("tracking:link_detail", args=[link.pk]) + "#share")
    else:
        initial = {"trial_days": 14}
        creative_param = request.GET.get("creative", "")
        if creative_param.isdigit():
            initial["creative"] = creative_param
        form = LinkBuilderForm(initial=initial)

    kind = request.GET.get("kind", "")
    if kind not in Creative.Kind.values:
        kind = ""
    all_creatives = list(creative_list())
    shown_creatives = [c for c in all_creatives if not kind or c.kind == kind]
    page = Paginator(link_list(partner=partner), LINKS_PER_PAGE).get_page(request.GET.get("page"))
    default_link = default_link_get(partner=partner)
    return render(
        request,
        "tracking/resources.html",
        {
            "default_link": default_link,
            "default_link_url": link_url(default_link) if default_link else "",
            "form": form,
            "page_obj": page,
            "links": [(link, link_url(link)) for link in page.object_list],
            "query_string": urlencode({"kind": kind}) if kind else "",
            "kinds": Creative.Kind.choices,
            "kind": kind,
            "creatives": shown_creatives,
            "creatives_data": _creatives_data(all_creatives),
            "site_url": settings.SITE_URL,
            "default_landing_url": settings.DEFAULT_LANDING_URL,
            **promo_codes_context(request, partner),
        },
    )


def _link_chart_data(stats: LinkSeries) -> dict:
    """The link's daily series for static/js/link.js (a JSON data block, not a script)."""
    return {
        "currency": settings.PROGRAM_CURRENCY,
        "days": [day.isoformat() for day in stats.days],
        "metrics": {
            "clicks": stats.clicks,
            "unique_clicks": stats.unique_clicks,
            "trials": stats.trials,
            "subscriptions": stats.subscriptions,
            "commission": [money_str(value) for value in stats.commission],
        },
    }


@partner_required
def link_detail_view(request: HttpRequest, link_id: int) -> HttpResponse:
    link = link_get(partner=request.partner, link_id=link_id)
    if link is None:
        raise Http404("No such link.")
    range_error = ""
    try:
        start, end = parse_date_range(request.GET.get("start"), request.GET.get("end"))
    except DateRangeError as exc:
        # The error is shown with no numbers: other dates' numbers would read as these dates'.
        range_error, (start, end) = exc.message, (None, None)
    stats = link_series(link, start, end) if start is not None else None
    return render(
        request,
        "tracking/link_detail.html",
        {
            "link": link,
            "start": start,
            "end": end,
            "start_value": request.GET.get("start", start.isoformat() if start else "")[:10],
            "end_value": request.GET.get("end", end.isoformat() if end else "")[:10],
            "range_error": range_error,
            "stats": stats,
            "numbers": row_numbers(stats.totals) if stats else None,
            "titles": column_titles(),
            "stats_data": _link_chart_data(stats) if stats else None,
            "url": link_url(link),
            "embed": embed_html(link),
            "embed_preview": embed_html(link, for_preview=True),
            "destination": link.destination or settings.DEFAULT_LANDING_URL,
        },
    )


@partner_required
@require_POST
def link_toggle_view(request: HttpRequest, link_id: int) -> HttpResponse:
    action = request.POST.get("action")
    if action not in ("enable", "disable"):
        return HttpResponse("Unknown action.", status=400)
    try:
        link = link_set_active(partner=request.partner, link_id=link_id, active=action == "enable")
    except Link.DoesNotExist:
        raise Http404("No such link.") from None
    except LinkError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Link {link.code} {'enabled' if link.is_active else 'disabled'}.")
    return redirect(_back(request))


@partner_required
@require_POST
def link_delete_view(request: HttpRequest, link_id: int) -> HttpResponse:
    try:
        link_delete(partner=request.partner, link_id=link_id)
    except Link.DoesNotExist:
        raise Http404("No such link.") from None
    except LinkError as exc:
        messages.error(request, exc.message)
        return redirect(_back(request))
    messages.success(request, "Link deleted.")
    return redirect(reverse("tracking:resources") + "#links")


def _back(request: HttpRequest) -> str:
    """Where a link action returns: the page the partner came from (our own path only)."""
    nxt = request.POST.get("next", "")
    if nxt.startswith("/") and url_has_allowed_host_and_scheme(nxt, allowed_hosts=None):
        return nxt
    return reverse("tracking:resources") + "#links"


def _creative_file(creative_id: int) -> Creative:
    creative = creative_get(creative_id=creative_id)
    if creative is None or not creative.is_image or not creative.image:
        raise Http404("No such image.")
    return creative


@partner_required
def creative_download_view(request: HttpRequest, creative_id: int) -> FileResponse:
    creative = _creative_file(creative_id)
    name = creative.image.name.rsplit("/", 1)[-1]
    return FileResponse(creative.image.open("rb"), as_attachment=True, filename=name)


@require_http_methods(["GET", "HEAD"])
def creative_image_view(request: HttpRequest, creative_id: int) -> FileResponse:
    """Public: the image of an active creative, as embedded on partners' web pages."""
    creative = _creative_file(creative_id)
    response = FileResponse(creative.image.open("rb"))
    response["Cache-Control"] = "public, max-age=86400"
    return response


# --- QR codes --------------------------------------------------------------------------------

_QR_KINDS = {"svg": ("image/svg+xml", qr_svg), "png": ("image/png", qr_png)}


@partner_required
def link_qr_view(request: HttpRequest, link_id: int, kind: str) -> HttpResponse:
    """The QR code of one of the partner's own links, as an SVG or PNG download (``?inline=1``:
    shown in the page instead). ``sub1`` defaults to ``qr``; ``?sub1=`` names another placement."""
    link = link_get(partner=request.partner, link_id=link_id)
    if link is None or kind not in _QR_KINDS:
        raise Http404("No such link.")
    sub1 = request.GET.get("sub1", QR_SUB1).strip()
    if not SUB_ID_RE.match(sub1):
        return HttpResponse(
            "sub1 is at most 100 letters, digits, and . _ - characters.", status=400, content_type="text/plain"
        )
    content_type, render_qr = _QR_KINDS[kind]
    response = HttpResponse(render_qr(link, sub1=sub1), content_type=content_type)
    if not request.GET.get("inline"):
        response["Content-Disposition"] = f'attachment; filename="{link.code}-qr.{kind}"'
    response["Cache-Control"] = "private, max-age=3600"
    return response
