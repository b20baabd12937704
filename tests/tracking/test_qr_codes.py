"""QR codes of a partner's links: SVG and PNG downloads pointing at the link with sub1=qr."""

from __future__ import annotations

import io

import pytest
import segno
from django.urls import reverse
from PIL import Image

from tests.factories import LinkFactory
from tracking.qr import qr_target

pytestmark = pytest.mark.django_db


def _url(link, kind: str) -> str:
    return reverse("tracking:link_qr", args=[link.pk, kind])


def test_a_qr_code_opens_the_link_with_sub1_qr(settings):
    settings.SITE_URL = "https://partners.example.com"
    link = LinkFactory(code="spring-promo")
    assert qr_target(link) == "https://partners.example.com/r/spring-promo?sub1=qr"


def test_the_svg_download_is_an_svg_attachment_named_after_the_link(partner_client):
    link = LinkFactory(partner=partner_client.partner, code="poster-1")
    response = partner_client.get(_url(link, "svg"))
    assert response.status_code == 200
    assert response["Content-Type"] == "image/svg+xml"
    assert response["Content-Disposition"] == 'attachment; filename="poster-1-qr.svg"'
    assert response.content.startswith(b"<svg")


def test_the_png_download_is_a_square_png(partner_client):
    link = LinkFactory(partner=partner_client.partner)
    response = partner_client.get(_url(link, "png"))
    assert response["Content-Type"] == "image/png"
    image = Image.open(io.BytesIO(response.content))
    assert image.format == "PNG" and image.width == image.height and image.width > 100


def test_the_png_encodes_exactly_the_link_with_sub1_qr(partner_client):
    link = LinkFactory(partner=partner_client.partner, code="decode-me")
    # A QR matrix is a function of its payload: the same payload at the same settings gives the
    # same PNG, and a payload without sub1=qr a different one.
    expected, plain = io.BytesIO(), io.BytesIO()
    segno.make(qr_target(link), error="m", micro=False).save(expected, kind="png", scale=10, border=4)
    segno.make(qr_target(link, sub1=""), error="m", micro=False).save(plain, kind="png", scale=10, border=4)
    body = partner_client.get(_url(link, "png")).content
    assert body == expected.getvalue() and body != plain.getvalue()


def test_another_sub1_can_be_chosen_and_a_bad_one_is_refused(partner_client):
    link = LinkFactory(partner=partner_client.partner)
    assert partner_client.get(_url(link, "svg") + "?sub1=flyer-2026").status_code == 200
    assert partner_client.get(_url(link, "svg") + "?sub1=<script>").status_code == 400


def test_another_partners_link_has_no_qr_code(partner_client):
    other = LinkFactory()
    assert partner_client.get(_url(other, "svg")).status_code == 404


def test_an_unknown_format_is_a_404(partner_client):
    link = LinkFactory(partner=partner_client.partner)
    assert partner_client.get(_url(link, "gif")).status_code == 404


def test_the_link_page_shows_the_qr_code_and_both_downloads(partner_client):
    link = LinkFactory(partner=partner_client.partner)
    page = partner_client.get(reverse("tracking:link_detail", args=[link.pk])).content.decode()
    assert _url(link, "svg") in page and _url(link, "png") in page


def test_the_default_link_has_a_qr_code_too(partner_client):
    default = partner_client.partner.links.get(is_default=True)
    assert partner_client.get(_url(default, "svg")).status_code == 200
