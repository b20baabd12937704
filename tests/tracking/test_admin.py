from __future__ import annotations

import io
import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from partners.models import User
from tests.factories import ClickFactory, LinkFactory, PartnerFactory
from tracking.click_writes import ClickData, record_click_direct
from tracking.models import Click, Creative, DailyLinkStats, Link

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    user = User.objects.create_superuser(email="root@example.com", password="x")
    client.force_login(user)
    return client


def test_links_are_searchable_by_code_and_partner_email(admin_client):
    partner = PartnerFactory(user__email="findme@example.com")
    link = LinkFactory(partner=partner, code="needle-code")
    LinkFactory(code="haystack")
    by_code = admin_client.get(reverse("admin:tracking_link_changelist"), {"q": "needle"}).content.decode()
    assert "needle-code" in by_code and "haystack" not in by_code
    by_email = admin_client.get(reverse("admin:tracking_link_changelist"), {"q": "findme@"}).content.decode()
    assert link.code in by_email and "haystack" not in by_email


def test_the_admin_refuses_an_unsafe_link_destination(admin_client):
    link = LinkFactory()
    response = admin_client.post(
        reverse("admin:tracking_link_change", args=[link.pk]),
        {
            "partner": link.partner_id,
            "code": link.code,
            "destination": "https://crazycall.com@evil.io/",
            "trial_days": 14,
            "description": "",
            "creative": "",
            "is_active": "on",
        },
    )
    assert response.status_code == 200
    assert "must not contain a user name" in response.content.decode()
    link.refresh_from_db()
    assert link.destination == "https://crazycall.com/pricing"


def test_clicks_are_browsable_and_read_only(admin_client, django_assert_max_num_queries):
    click = ClickFactory()
    for _ in range(10):
        ClickFactory()
    with django_assert_max_num_queries(8):
        listing = admin_client.get(reverse("admin:tracking_click_changelist"))
    assert listing.status_code == 200
    assert click.link.code in listing.content.decode()
    detail = admin_client.get(reverse("admin:tracking_click_change", args=[click.pk]))
    assert detail.status_code == 200
    assert 'name="visitor_id"' not in detail.content.decode()  # shown, not editable
    assert admin_client.get(reverse("admin:tracking_click_add")).status_code == 403
    assert (
        admin_client.post(reverse("admin:tracking_click_delete", args=[click.pk]), {"post": "yes"}).status_code == 403
    )
    assert Click.objects.filter(pk=click.pk).exists()


def test_daily_stats_are_read_only(admin_client):
    link = LinkFactory()
    record_click_direct(
        ClickData(
            id=uuid.uuid4(), link_id=link.pk, partner_id=link.partner_id, visitor_id="v", created_at=timezone.now()
        )
    )
    stats = DailyLinkStats.objects.get()
    assert admin_client.get(reverse("admin:tracking_dailylinkstats_changelist")).status_code == 200
    assert admin_client.get(reverse("admin:tracking_dailylinkstats_add")).status_code == 403
    response = admin_client.post(reverse("admin:tracking_dailylinkstats_change", args=[stats.pk]), {"clicks": 999})
    assert response.status_code == 403
    stats.refresh_from_db()
    assert stats.clicks == 1


def test_staff_add_a_banner_and_its_dimensions_are_recorded(admin_client, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    buffer = io.BytesIO()
    Image.new("RGB", (728, 90), "white").save(buffer, format="PNG")
    response = admin_client.post(
        reverse("admin:tracking_creative_add"),
        {
            "kind": "banner",
            "title": "Leaderboard",
            "image": SimpleUploadedFile("lb.png", buffer.getvalue(), content_type="image/png"),
            "text": "",
            "is_active": "on",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    creative = Creative.objects.get(title="Leaderboard")
    assert (creative.width, creative.height) == (728, 90)
    listing = admin_client.get(reverse("admin:tracking_creative_changelist")).content.decode()
    assert "728 × 90" in listing


def test_a_banner_without_an_image_is_refused(admin_client):
    response = admin_client.post(
        reverse("admin:tracking_creative_add"), {"kind": "banner", "title": "No image", "text": "", "is_active": "on"}
    )
    assert response.status_code == 200
    assert not Creative.objects.exists()


def test_a_link_disabled_in_the_admin_stops_redirecting_at_once(admin_client, visit):
    link = LinkFactory()
    visit(link.code)  # cached by the redirect
    response = admin_client.post(
        reverse("admin:tracking_link_change", args=[link.pk]),
        {
            "partner": link.partner_id,
            "code": link.code,
            "destination": link.destination,
            "trial_days": 14,
            "description": "",
            "creative": "",
        },
    )
    assert response.status_code == 302
    assert Link.objects.get(pk=link.pk).is_active is False
    assert visit(link.code)["Location"] == "https://crazycall.com/"
