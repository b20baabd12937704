"""QR codes of a partner's links (``segno``: pure Python, SVG and PNG without Pillow).

A QR code points at the link with ``sub1=qr`` by default, so the Performance report's sub-ID
breakdown shows the traffic that came from print, posters and screens apart from the rest."""

from __future__ import annotations

import io
from urllib.parse import urlencode

import segno

from tracking.embed import link_url
from tracking.models import Link

QR_SUB1 = "qr"
# Medium error correction: survives a small logo or a scuff, keeps the code small.
_ERROR = "m"
_PNG_SCALE = 10
_SVG_SCALE = 8
_BORDER = 4


def qr_target(link: Link, *, sub1: str = QR_SUB1) -> str:
    """The URL the QR code encodes."""
    url = link_url(link)
    return f"{url}?{urlencode({'sub1': sub1})}" if sub1 else url


def qr_svg(link: Link, *, sub1: str = QR_SUB1) -> bytes:
    buffer = io.BytesIO()
    segno.make(qr_target(link, sub1=sub1), error=_ERROR, micro=False).save(
        buffer, kind="svg", scale=_SVG_SCALE, border=_BORDER, xmldecl=False, title=f"QR code of /r/{link.code}"
    )
    return buffer.getvalue()


def qr_png(link: Link, *, sub1: str = QR_SUB1) -> bytes:
    buffer = io.BytesIO()
    segno.make(qr_target(link, sub1=sub1), error=_ERROR, micro=False).save(
        buffer, kind="png", scale=_PNG_SCALE, border=_BORDER
    )
    return buffer.getvalue()
