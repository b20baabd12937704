"""The ready link and the HTML embed code a partner pastes into a web page.

Every value is escaped (``format_html``): a creative title, text or the URL can never inject
markup, whatever staff or partners typed. The description is the partner's private note and
is never part of the embed code.
"""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from tracking.models import Creative, Link


def link_url(link: Link | str) -> str:
    """The public tracking URL of a link (or of a code)."""
    code = link if isinstance(link, str) else link.code
    return f"{settings.SITE_URL}/r/{code}"


def creative_image_url(creative: Creative) -> str:
    """The public, absolute URL of a creative's image (served by the app, so embed codes on
    partners' sites work whatever serves media files)."""
    return settings.SITE_URL + reverse("tracking:creative_image", args=[creative.pk])


def embed_html(link: Link, creative: Creative | None = None, *, for_preview: bool = False) -> SafeString:
    """The HTML snippet for ``link`` made for ``creative`` (default: the link's own).
    ``for_preview``: the image from this site's own path, for rendering inside the panel (its
    Content-Security-Policy allows images from 'self' only, and SITE_URL may name another host)."""
    creative = creative if creative is not None else link.creative
    url = link_url(link)
    if creative is not None and creative.is_image and creative.image:
        image = reverse("tracking:creative_image", args=[creative.pk]) if for_preview else creative_image_url(creative)
        return format_html(
            '<a href="{}" rel="sponsored"><img src="{}" width="{}" height="{}" alt="{}"></a>',
            url,
            image,
            creative.width or "",
            creative.height or "",
            creative.title,
        )
    if creative is not None and creative.kind == Creative.Kind.TEXT and creative.text:
        text = creative.text
    elif creative is not None:
        text = creative.title
    else:
        text = f"Try {settings.MERCHANT_NAME} free"
    return format_html('<a href="{}" rel="sponsored">{}</a>', url, text)
