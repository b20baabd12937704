"""Where a click came from, derived when the click is written (the flusher, or the direct path
after the redirect's own work), never parsed in the redirect itself:

* the referring site: the host of the ``Referer`` (lower-cased, ``www.`` kept apart from nothing:
  ``www.youtube.com`` and ``youtube.com`` are the same site, so ``www.`` is dropped);
* the device type: ``desktop``, ``mobile`` or ``tablet`` from the user agent, read with
  ``ua-parser`` (the maintained uap-core rules; its Rust matcher when installed);
* the country: the two-letter code a trusted proxy put in ``COUNTRY_HEADER`` (read in the
  redirect: a header look-up, no parsing, no outside service, no IP kept).

Parsing is cached per distinct string: a site's clicks repeat a few hundred user agents.
"""

from __future__ import annotations

import functools
import re
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest

DESKTOP, MOBILE, TABLET = "desktop", "mobile", "tablet"
DEVICE_LABELS = {DESKTOP: "Desktop", MOBILE: "Mobile", TABLET: "Tablet"}
_COUNTRY_RE = re.compile(r"^[A-Z]{2}$")
# Not countries: Cloudflare's unknown (XX) and Tor (T1) markers.
_NOT_COUNTRIES = frozenset({"XX", "T1"})
_MOBILE_OS = frozenset({"iOS", "Android", "Windows Phone", "BlackBerry OS", "KaiOS", "Firefox OS", "Symbian OS"})
_TABLET_FAMILIES = re.compile(r"ipad|kindle|tablet|nexus (7|9|10)|sm-t|sm-x|galaxy tab|playbook|silk", re.IGNORECASE)


@functools.lru_cache(maxsize=4096)
def device_type(user_agent: str) -> str:
    """``desktop``, ``mobile`` or ``tablet``; ``""`` for an empty or unreadable user agent."""
    if not user_agent:
        return ""
    from ua_parser import parse  # loads its rules on first use: keep it off the redirect's import

    result = parse(user_agent[:512])
    device = result.device
    family = device.family if device is not None else ""
    brand = (device.brand or "") if device is not None else ""
    os_family = result.os.family if result.os is not None else ""
    if "tablet" in brand.lower() or _TABLET_FAMILIES.search(family) or _TABLET_FAMILIES.search(user_agent):
        return TABLET
    if os_family == "Android" and "Mobile" not in user_agent:
        # Android browsers on tablets leave out "Mobile" (Google's guidance to browser makers).
        return TABLET
    if os_family in _MOBILE_OS or (device is not None and family not in ("Other", "Mac") and "Mobi" in user_agent):
        return MOBILE
    if result.os is None and result.user_agent is None and device is None:
        return ""
    return DESKTOP


@functools.lru_cache(maxsize=4096)
def referrer_host(referer: str) -> str:
    """The host of a Referer URL (``youtube.com`` for ``https://www.youtube.com/watch?v=…``);
    ``""`` when there is none or it is not an http(s) URL."""
    if not referer:
        return ""
    try:
        parts = urlsplit(referer.strip())
        host = (parts.hostname or "") if parts.scheme in ("http", "https") else ""
    except ValueError:
        return ""
    host = host.rstrip(".")
    return host.removeprefix("www.")[:255]


@functools.lru_cache(maxsize=8)
def _country_meta_key(header: str) -> str:
    return "HTTP_" + header.strip().upper().replace("-", "_")


def request_country(request: HttpRequest) -> str:
    """The visitor's country from the trusted proxy's header (``COUNTRY_HEADER``), or ``""``."""
    header = settings.COUNTRY_HEADER
    if not header:
        return ""
    value = request.META.get(_country_meta_key(header), "")
    value = value.strip().upper() if isinstance(value, str) else ""
    return value if _COUNTRY_RE.match(value) and value not in _NOT_COUNTRIES else ""
