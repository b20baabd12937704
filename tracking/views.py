"""The Resources pages: the link builder and the partner's links, a link's page, the creatives,
the QR codes (the click redirect itself: ``tracking.redirect``)."""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import Truncator
from django.views.decorators.http import require_http_methods, require_POST

from commissions.money import money_str
from config import rows as table_rows
from config.reverse import url_with_id
from partners.decorators import partner_required
from tracking.embed import creative_image_url, embed_html, link_url
from tracking.forms import LinkBuilderForm
from tracking.link_performance import LinkSeries, link_series
from tracking.models import Creative, Link
from tracking.performance import column_titles, row_numbers
from tracking.promo_views import promo_codes_context
from tracking.qr import QR_SUB1, qr_png, qr_svg
from tracking.reports import DateRangeError, parse_date_range
from tracking.selectors import creative_get, creative_list, default_link_get, link_get, link_list
from tracking.services import LinkError, link_create, link_delete, link_set_active
from tracking.validators import SUB_ID_RE

LINKS_PER_PAGE = 20


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


_LINK_ROW = (
    "<tr>"
    '<td class="link-cell" data-label="">'
    '<a href="{detail}">{code}</a>{default_badge}'
    '<div class="link-url"><code id="link-url-{pk}">{url}</code> '
    '<button type="button" class="button button-small" data-copy-target="link-url-{pk}" '
    'aria-label="Copy link {code}">Copy</button></div>'
    "</td>"
    '<td class="cell-wrap" data-label="Description"><span class="clamp">{description}</span></td>'
    '<td class="cell-wrap" data-label="Lands on"><code class="clamp" title="{lands_on}">{lands_on_short}</code></td>'
    '<td data-label="Trial">{trial_days} days</td>'
    '<td class="cell-wrap" data-label="Creative">{creative}</td>'
    '<td data-label="Status">{status}</td>'
    '<td class="actions-cell" data-label="">'
    '<a class="button button-small button-secondary" href="{detail}" aria-label="Details of link {code}">Details</a>'
    "{actions}</td>"
    "</tr>\n"
)
_ACTIVE = mark_safe('<span class="badge badge-paying">Active</span>')
_DISABLED = mark_safe('<span class="badge badge-cancelled">Disabled</span>')
_DEFAULT = mark_safe(' <span class="badge">Default</span>')
_TOGGLE = (
    ' <form method="post" action="{action}" class="inline-form"{confirm}>'
    '<input type="hidden" name="csrfmiddlewaretoken" value="{csrf}">'
    '<input type="hidden" name="next" value="{next}"> '
    '<input type="hidden" name="action" value="{verb}">'
    '<button type="submit" class="button button-small{danger}" aria-label="{label} link {code}">{label}</button>'
    "</form>"
)
_CONFIRM_DISABLE = (
    ' data-confirm="Disable link {code}? Visitors will go to the homepage and no clicks will be counted."'
)
_DELETE = (
    ' <form method="post" action="{action}" class="inline-form" data-confirm="Delete link {code}? This cannot be undone.">'
    '<input type="hidden" name="csrfmiddlewaretoken" value="{csrf}">'
    '<button type="submit" class="button button-small button-secondary" aria-label="Delete link {code}">Delete</button>'
    "</form>"
)


def _link_rows(request: HttpRequest, links: list[Link]) -> list[SafeString]:
    """The links table's rows, a ``<tr>`` each (``config.rows``): with its four ``{% url %}`` tags,
    two CSRF fields and some 40 lookups, the template took ~0.5 ms a row."""
    detail, toggle, delete = (url_with_id(f"tracking:{name}") for name in ("link_detail", "link_toggle", "link_delete"))
    csrf, back = get_token(request), f"{request.get_full_path()}#links"
    rows = []
    for link in links:
        code = link.code
        actions = ""
        if not link.is_default:
            active = link.is_active
            actions = table_rows.row(
                _TOGGLE,
                action=toggle(link.pk),
                confirm=table_rows.row(_CONFIRM_DISABLE, code=code) if active else "",
                csrf=csrf,
                next=back,
                verb="disable" if active else "enable",
                danger=" button-danger" if active else "",
                label="Disable" if active else "Enable",
                code=code,
            )
            if not link.has_clicks:
                actions += table_rows.row(_DELETE, action=delete(link.pk), csrf=csrf, code=code)
        lands_on = link.destination or settings.DEFAULT_LANDING_URL
        creative = link.creative
        rows.append(
            table_rows.row(
                _LINK_ROW,
                detail=detail(link.pk),
                code=code,
                default_badge=_DEFAULT if link.is_default else "",
                pk=link.pk,
                url=link_url(link),
                description=link.description or "—",
                lands_on=lands_on,
                lands_on_short=Truncator(lands_on).chars(120),
                trial_days=link.trial_days,
                creative=f"{creative.get_kind_display()}: {creative.title}" if creative else "—",
                status=_ACTIVE if link.is_active else _DISABLED,
                actions=actions,
            )
        )
    return rows


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
            "links": _link_rows(request, list(page.object_list)),
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
