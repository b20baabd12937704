"""Open-redirect defences: a destination off the merchant's hosts is refused when the link is
saved and never redirected to, even if it reached the database another way."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from tests.factories import LinkFactory
from tracking.models import Link
from tracking.services import LinkError, link_create
from tracking.validators import validate_destination

pytestmark = pytest.mark.django_db

ATTACKS = [
    "https://crazycall.com.evil.io/",
    "https://evil.io/?x=crazycall.com",
    "evil.io/?x=crazycall.com",
    "//evil.io",
    "//crazycall.com",
    "///evil.io",
    "javascript:alert(document.cookie)",
    "javascript://crazycall.com/%0aalert(1)",
    "JavaScript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "ftp://crazycall.com/file",
    "https://crazycall.com@evil.io",
    "https://crazycall.com:pass@evil.io/",
    "https://user@crazycall.com/",
    "https://evil.io#@crazycall.com",
    "https://evil.io\\@crazycall.com",
    "https://crazycall.com\\@evil.io",
    "https:\\\\evil.io",
    "https:/\\evil.io",
    "https:evil.io",
    "https://crazycаll.com/",  # Cyrillic "а": an IDN look-alike
    "https://сrazycall.com/",  # Cyrillic "с"
    "https://xn--crazycll-7fg.com/",  # the punycode of a look-alike
    "https://crazycall.com．evil.io/",  # fullwidth full stop
    "https://crazycall.com/päth",
    "https://evil.io/crazycall.com",
    "https://evilcrazycall.com/",
    "https://crazycall.com%2eevil.io/",
    "https://crazycall.com%40evil.io/",
    "https://crazycall.com./",
    "https://127.0.0.1/",
    "https://[::1]/",
    "https://crazycall.com:8443/",
    "https://crazycall.com:notaport/",
    "https://crazycall.com/\tpath",
    "https://crazycall.com/ path",
    " https://evil.io",
    "https://cra\nzycall.com/",
    "https://crazycall.com/<script>",
    'https://crazycall.com/"onmouseover="x',
    "https://crazycall.com/?aff_click=00000000-0000-0000-0000-000000000000",
    "https://",
    "https:///",
    "https://" + "a" * 1990 + ".crazycall.com/",
]

ALLOWED = [
    "https://crazycall.com/",
    "https://crazycall.com",
    "http://crazycall.com/pricing",
    "https://CrazyCall.com/Pricing",
    "https://app.crazycall.com/signup?plan=b&utm_source=blog#form",
    "https://deep.sub.crazycall.com/a/b/c",
    "https://crazycall.com:443/pricing",
    "https://crazycall.com/search?q=caf%C3%A9",
]


@pytest.mark.parametrize("destination", ATTACKS)
def test_an_unsafe_destination_is_refused_by_the_validator(destination):
    with pytest.raises(ValidationError):
        validate_destination(destination)


@pytest.mark.parametrize("destination", ALLOWED)
def test_a_merchant_destination_is_accepted(destination):
    assert validate_destination(destination) == destination


@pytest.mark.parametrize("destination", ATTACKS)
def test_an_unsafe_destination_is_refused_when_a_link_is_created(partner, destination):
    if not destination.strip():
        pytest.skip("blank means the default landing page")
    with pytest.raises(LinkError) as exc:
        link_create(partner=partner, destination=destination)
    assert exc.value.field == "destination"
    assert not Link.objects.filter(partner=partner, is_default=False).exists()


@pytest.mark.parametrize(
    "destination", [d for d in ATTACKS if len(d) <= Link._meta.get_field("destination").max_length]
)
def test_a_stored_unsafe_destination_is_never_redirected_to(visit, destination):
    link = LinkFactory()
    # Written around the services (a bulk update, a SQL fix, an older rule).
    Link.objects.filter(pk=link.pk).update(destination=destination)
    response = visit(link.code, "next=https://evil.io/")
    assert response.status_code == 302
    location = response["Location"]
    assert location.startswith("https://crazycall.com/?"), location
    assert "evil" not in location.split("?", 1)[0]


def test_a_stored_unsafe_destination_still_credits_the_partner_at_the_default_landing_page(visit):
    link = LinkFactory()
    Link.objects.filter(pk=link.pk).update(destination="https://crazycall.com.evil.io/")
    response = visit(link.code)
    click = link.clicks.get()
    assert response["Location"] == f"https://crazycall.com/?aff_click={click.id}"


def test_subdomains_of_every_allowed_host_are_accepted(settings):
    settings.MERCHANT_ALLOWED_HOSTS = ("crazycall.com", "crazycall.io")
    assert validate_destination("https://go.crazycall.io/x")
    with pytest.raises(ValidationError):
        validate_destination("https://crazycall.io.evil.io/")


def test_a_destination_allowed_yesterday_is_refused_after_the_hosts_change(visit, settings):
    link = LinkFactory(destination="https://crazycall.com/pricing")
    visit(link.code)
    settings.MERCHANT_ALLOWED_HOSTS = ("crazycall.io",)
    settings.DEFAULT_LANDING_URL = "https://crazycall.io/"
    response = visit(link.code)
    assert response["Location"].startswith("https://crazycall.io/?aff_click=")
