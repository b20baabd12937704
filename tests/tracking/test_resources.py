"""The Resources page: default link, link builder, embed code, links list, creatives."""

from __future__ import annotations

import html
import io
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from tests.factories import ClickFactory, CreativeFactory, LinkFactory
from tracking.embed import embed_html
from tracking.models import Creative, Link

pytestmark = pytest.mark.django_db

RESOURCES = "/resources/"
XSS = '"><script>alert(1)</script><img src=x onerror=alert(2)>'


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


def _png(width: int = 300, height: int = 250) -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (31, 95, 214)).save(buffer, format="PNG")
    return SimpleUploadedFile("banner.png", buffer.getvalue(), content_type="image/png")


def _banner(title: str = "Spring banner", **kwargs) -> Creative:
    return Creative.objects.create(kind=Creative.Kind.BANNER, title=title, image=_png(), **kwargs)


def _textarea(body: str, element_id: str) -> str:
    match = re.search(rf'<textarea[^>]*id="{element_id}"[^>]*>(.*?)</textarea>', body, re.S)
    assert match, f"no textarea #{element_id}"
    return html.unescape(match.group(1))


def _library(page: str) -> str:
    return page[page.index('id="creatives"') :]


def test_anonymous_visitors_are_sent_to_the_login_page(client):
    for url in (RESOURCES, "/resources/links/1/", "/resources/creatives/1/download/"):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("partners:login"))


def test_the_page_shows_the_default_link_ready_to_copy(partner_client):
    response = partner_client.get(RESOURCES)
    assert response.status_code == 200
    code = partner_client.partner.referral_code
    assert f'value="http://testserver/r/{code}"' in response.content.decode()
    assert 'data-copy-target="default-link-url"' in response.content.decode()


def test_building_a_thirty_day_deep_link_shows_its_url_and_html_code(partner_client):
    response = partner_client.post(
        RESOURCES,
        {
            "destination": "https://crazycall.com/pricing",
            "trial_days": "30",
            "description": "Newsletter, May",
            "code": "may-news",
        },
    )
    link = Link.objects.get(code="may-news")
    assert response.status_code == 302
    assert response["Location"] == reverse("tracking:link_detail", args=[link.pk]) + "#share"
    assert (link.partner, link.destination, link.trial_days, link.description) == (
        partner_client.partner,
        "https://crazycall.com/pricing",
        30,
        "Newsletter, May",
    )
    page = partner_client.get(response["Location"]).content.decode()
    assert 'value="http://testserver/r/may-news"' in page
    assert _textarea(page, "embed-code") == str(embed_html(link))
    assert "30 days" in page


def test_a_banner_link_gets_an_image_embed_with_its_dimensions(partner_client, media):
    banner = _banner()
    partner_client.post(RESOURCES, {"creative": banner.pk, "trial_days": "14", "code": "banner-1"})
    link = Link.objects.get(code="banner-1")
    image_url = "http://testserver" + reverse("tracking:creative_image", args=[banner.pk])
    assert str(embed_html(link)) == (
        f'<a href="http://testserver/r/banner-1" rel="sponsored"><img src="{image_url}" width="300" height="250" '
        f'alt="Spring banner"></a>'
    )


def test_an_unsafe_destination_is_refused_with_a_message(partner_client):
    response = partner_client.post(RESOURCES, {"destination": "https://crazycall.com.evil.io/", "trial_days": "14"})
    assert response.status_code == 200
    assert "Links may only point to crazycall.com" in response.content.decode()
    assert not Link.objects.filter(is_default=False).exists()


def test_a_taken_code_is_refused_with_a_message(partner_client):
    LinkFactory(code="taken")
    response = partner_client.post(RESOURCES, {"code": "taken", "trial_days": "14"})
    assert "already taken" in response.content.decode()


def test_a_trial_other_than_fourteen_or_thirty_days_is_refused(partner_client):
    response = partner_client.post(RESOURCES, {"trial_days": "60"})
    assert response.status_code == 200
    assert not Link.objects.filter(is_default=False).exists()


def test_embed_code_escapes_creative_titles_and_texts():
    link = LinkFactory(code="safe-code")
    for creative in (
        CreativeFactory(kind=Creative.Kind.LINK, title=XSS),
        CreativeFactory(kind=Creative.Kind.TEXT, title="t", text=XSS),
    ):
        code = str(embed_html(link, creative))
        assert "<script>" not in code and "<img" not in code
        assert code == f'<a href="http://testserver/r/safe-code" rel="sponsored">{html.escape(XSS)}</a>'


def test_embed_code_escapes_an_image_creatives_title_in_the_alt_text(media):
    link = LinkFactory(code="img-code")
    code = str(embed_html(link, _banner(title=XSS)))
    assert code.count("<img") == 1
    assert f'alt="{html.escape(XSS)}"' in code
    assert "<script>" not in code


def test_the_html_code_is_shown_as_text_and_no_user_value_becomes_markup(partner_client):
    creative = CreativeFactory(kind=Creative.Kind.TEXT, title=XSS, text="</textarea><script>alert(3)</script>")
    link = LinkFactory(partner=partner_client.partner, creative=creative, description=XSS)
    page = partner_client.get(reverse("tracking:link_detail", args=[link.pk])).content.decode()
    assert "<script>alert" not in page
    assert "<img src=x" not in page
    assert _textarea(page, "embed-code") == str(embed_html(link))
    resources = partner_client.get(RESOURCES).content.decode()
    assert "<script>alert" not in resources
    assert "<img src=x" not in resources


def test_the_list_shows_only_the_partners_own_links(partner_client):
    mine = LinkFactory(partner=partner_client.partner, description="my campaign")
    theirs = LinkFactory(description="their campaign")
    page = partner_client.get(RESOURCES).content.decode()
    assert mine.code in page and "my campaign" in page
    assert theirs.code not in page and "their campaign" not in page


def test_another_partners_link_is_not_found(partner_client):
    theirs = LinkFactory()
    assert partner_client.get(reverse("tracking:link_detail", args=[theirs.pk])).status_code == 404
    assert (
        partner_client.post(reverse("tracking:link_toggle", args=[theirs.pk]), {"action": "disable"}).status_code == 404
    )
    assert partner_client.post(reverse("tracking:link_delete", args=[theirs.pk])).status_code == 404
    theirs.refresh_from_db()
    assert theirs.is_active


def test_a_partner_disables_and_enables_a_link(partner_client):
    link = LinkFactory(partner=partner_client.partner)
    url = reverse("tracking:link_toggle", args=[link.pk])
    partner_client.post(url, {"action": "disable"})
    link.refresh_from_db()
    assert link.is_active is False
    partner_client.post(url, {"action": "enable"})
    link.refresh_from_db()
    assert link.is_active is True


def test_the_toggle_never_returns_to_another_site(partner_client):
    link = LinkFactory(partner=partner_client.partner)
    url = reverse("tracking:link_toggle", args=[link.pk])
    for target in ("https://evil.io/", "//evil.io/", "/\\evil.io"):
        response = partner_client.post(url, {"action": "disable", "next": target})
        assert response["Location"] == "/resources/#links"


def test_a_partner_deletes_a_link_without_clicks_but_not_one_with_clicks(partner_client):
    unused = LinkFactory(partner=partner_client.partner)
    used = LinkFactory(partner=partner_client.partner)
    ClickFactory(link=used)
    partner_client.post(reverse("tracking:link_delete", args=[unused.pk]))
    partner_client.post(reverse("tracking:link_delete", args=[used.pk]))
    assert not Link.objects.filter(pk=unused.pk).exists()
    assert Link.objects.filter(pk=used.pk).exists()


def test_the_links_list_is_paginated(partner_client):
    for n in range(25):
        LinkFactory(partner=partner_client.partner, code=f"page-link-{n:02d}")
    first = partner_client.get(RESOURCES).content.decode()
    second = partner_client.get(RESOURCES + "?page=2").content.decode()
    assert "Page 1 of 2" in first
    assert first.count("page-link-") != 0 and second.count("page-link-") != 0
    assert "page-link-00" in second and "page-link-00" not in first


def test_the_page_makes_the_same_number_of_queries_whatever_the_number_of_links(
    partner_client, django_assert_max_num_queries, media
):
    _banner()
    LinkFactory(partner=partner_client.partner, creative=CreativeFactory())
    partner_client.get(RESOURCES)
    with django_assert_max_num_queries(12) as few:
        partner_client.get(RESOURCES)
    for _ in range(15):
        link = LinkFactory(partner=partner_client.partner, creative=CreativeFactory())
        ClickFactory(link=link)
    with django_assert_max_num_queries(len(few.captured_queries)):
        partner_client.get(RESOURCES)


def test_creatives_are_browsable_by_kind(partner_client, media):
    banner = _banner(title="Big banner")
    CreativeFactory(kind=Creative.Kind.TEXT, title="Ready text one", text="Call smarter.")
    CreativeFactory(kind=Creative.Kind.LOGO, title="Hidden logo", is_active=False)
    everything = _library(partner_client.get(RESOURCES).content.decode())
    assert "Big banner" in everything and "Ready text one" in everything and "Hidden logo" not in everything
    banners = _library(partner_client.get(RESOURCES + "?kind=banner").content.decode())
    assert "Big banner" in banners and "Ready text one" not in banners
    assert reverse("tracking:creative_download", args=[banner.pk]) in banners


def test_a_partner_downloads_a_creatives_image(partner_client, media):
    banner = _banner()
    response = partner_client.get(reverse("tracking:creative_download", args=[banner.pk]))
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment")
    assert b"".join(response.streaming_content).startswith(b"\x89PNG")


def test_the_public_creative_image_serves_active_creatives_only(client, media):
    banner = _banner()
    response = client.get(reverse("tracking:creative_image", args=[banner.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    Creative.objects.filter(pk=banner.pk).update(is_active=False)
    assert client.get(reverse("tracking:creative_image", args=[banner.pk])).status_code == 404


def test_the_builder_preselects_a_creative_from_the_library(partner_client):
    creative = CreativeFactory()
    page = partner_client.get(RESOURCES + f"?creative={creative.pk}").content.decode()
    assert f'<option value="{creative.pk}" selected>' in page


def test_the_page_has_no_inline_script(partner_client):
    page = partner_client.get(RESOURCES).content.decode()
    scripts = re.findall(r"<script([^>]*)>", page)
    assert scripts
    for attrs in scripts:
        assert "src=" in attrs or 'type="application/json"' in attrs
