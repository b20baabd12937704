"""Where a tracking link may send a visitor (docs/reference.md "Tracking links").

One strict check, used when a link is saved (services, forms, admin) and again for every
redirect: a stored destination that was written around the services (a bulk update, a SQL
fix, an older rule) is still never followed.

Accepted: ``http``/``https`` URLs whose host is exactly an allowed merchant host or one of
its subdomains, on the scheme's default port. Everything that browsers and URL parsers read
differently is refused rather than normalised: user info (``https://crazycall.com@evil.io``),
backslashes, whitespace or control characters, non-ASCII anywhere (IDN look-alikes such as a
Cyrillic ``а``), percent-encoded or IP-literal hosts, scheme-relative URLs (``//evil.io``).
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError

MAX_DESTINATION_LENGTH = 2000
TRACKING_PARAMETER = "aff_click"
# Sub-IDs: where the partner placed the link (``/r/<code>?sub1=youtube&sub2=video-12``).
SUB_ID_PARAMETERS = ("sub1", "sub2", "sub3")
SUB_ID_MAX_LENGTH = 100
# What a partner may type as a sub-ID in the panel (a QR code's sub1). Values arriving on a
# click are kept whatever they are, cleaned by ``clean_sub_id``.
SUB_ID_RE = re.compile(r"^[A-Za-z0-9._~-]{0,100}$")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_DEFAULT_PORTS = {"http": 80, "https": 443}
# ASCII letters, digits and hyphens in dot-separated labels: no "%", no "[", no empty label.
_HOST_RE = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)(?:\.(?!-)[a-z0-9-]{1,63}(?<!-))*$")
# What may appear in a URL at all once percent-encoding is used (RFC 3986 characters);
# excludes whitespace, control characters, backslash, quotes, angle brackets and non-ASCII.
_URL_CHARS_RE = re.compile(r"^[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+$")


def _refuse(message: str) -> ValidationError:
    return ValidationError(message, code="destination")


def host_is_allowed(host: str, allowed_hosts: tuple[str, ...] | list[str]) -> bool:
    """``host`` (lower-case ASCII) equals an allowed host or is a subdomain of one."""
    return any(host == allowed or host.endswith("." + allowed) for allowed in allowed_hosts)


def validate_destination(value: str) -> str:
    """Return ``value`` when it is a safe destination on an allowed host; raise
    ``ValidationError`` (with a message for the partner) otherwise. An empty value is not a
    destination: callers treat empty as "the default landing page" before calling this."""
    allowed_hosts = settings.MERCHANT_ALLOWED_HOSTS
    names = ", ".join(allowed_hosts)
    if not value:
        raise _refuse("Enter a URL.")
    if len(value) > MAX_DESTINATION_LENGTH:
        raise _refuse(f"The URL is longer than {MAX_DESTINATION_LENGTH} characters.")
    if "\\" in value:
        raise _refuse("The URL must not contain backslashes.")
    if not value.isascii():
        raise _refuse("The URL must contain only ASCII characters (percent-encode anything else).")
    if not _URL_CHARS_RE.match(value):
        raise _refuse("The URL contains characters that are not allowed (spaces, quotes or control characters).")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        raise _refuse("This is not a valid URL.") from None
    if parts.scheme.lower() not in _DEFAULT_PORTS:
        raise _refuse("The URL must start with https:// or http://.")
    if not parts.netloc:
        raise _refuse("The URL must name a host, e.g. https://crazycall.com/pricing.")
    if "@" in parts.netloc:
        raise _refuse("The URL must not contain a user name or password.")
    host = parts.netloc.rsplit(":", 1)[0] if port is not None or parts.netloc.endswith(":") else parts.netloc
    host = host.lower()
    if not _HOST_RE.match(host):
        raise _refuse("The URL's host name is not valid.")
    if port is not None and port != _DEFAULT_PORTS[parts.scheme.lower()]:
        raise _refuse("The URL must not name a port.")
    if not host_is_allowed(host, allowed_hosts):
        raise _refuse(f"Links may only point to {names} or its subdomains.")
    if any(name == TRACKING_PARAMETER for name, _ in parse_qsl(parts.query, keep_blank_values=True)):
        # The redirect adds the click's own aff_click; a fixed one would misattribute.
        raise _refuse(f"The URL must not contain the {TRACKING_PARAMETER} parameter.")
    return value


def is_allowed_destination(value: str) -> bool:
    """The redirect-time check: True only for destinations ``validate_destination`` accepts."""
    try:
        validate_destination(value)
    except ValidationError:
        return False
    return True


def clean_sub_id(value: str) -> str:
    """A sub-ID from a click URL as stored: control characters dropped, surrounding spaces
    stripped, at most ``SUB_ID_MAX_LENGTH`` characters (longer values are cut, not refused: the
    visitor is redirected whatever the partner wrote)."""
    return _CONTROL_RE.sub("", value).strip()[:SUB_ID_MAX_LENGTH]
