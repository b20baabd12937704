"""An in-process cache of links for the click redirect.

The redirect runs for every visitor; looking the link up in the database each time would be
its most expensive part. Entries live ``LINK_CACHE_SECONDS`` and are dropped at once in this
process by the ``post_save``/``post_delete`` signals on ``Link`` (see ``tracking.signals``),
so a link disabled here stops immediately; other processes follow within the TTL. A link
counts only while its partner is approved (PARTNER_APPROVAL); a decision on an application
drops the partner's links the same way (``partners.services``).

Only existing links are cached (active or not): an unknown code always asks the database, so a
link created a moment ago in another process works at once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.utils.encoding import iri_to_uri

from tracking.models import Link
from tracking.validators import is_allowed_destination

LINK_CACHE_SECONDS = 10.0
LINK_CACHE_MAX_ENTRIES = 50_000


@dataclass(frozen=True, slots=True)
class CachedLink:
    id: int
    partner_id: int
    code: str
    is_active: bool
    # The URL the visitor is sent to: the link's destination, or the default landing page when
    # the link has none or its stored destination fails validation.
    destination: str
    destination_refused: bool
    # ``destination`` as the Location header carries it (IRI → URI), cut where the click URL's
    # parameters go: everything before the fragment, the separator to add ("?" or "&", "" when
    # the URL ends in one), and the fragment with its "#". Computed once per cached link
    # instead of splitting and joining the URL on every click.
    location_head: str
    location_separator: str
    location_fragment: str
    # Pass sub1..sub3 on to the destination (else they are recorded and removed).
    pass_sub_ids: bool = False


_entries: dict[str, tuple[float, CachedLink]] = {}


def _build(
    link_id: int, partner_id: int, code: str, is_active: bool, destination: str, pass_sub_ids: bool = False
) -> CachedLink:
    refused = bool(destination) and not is_allowed_destination(destination)
    target = destination if destination and not refused else settings.DEFAULT_LANDING_URL
    head, separator, fragment = split_location(target)
    return CachedLink(
        id=link_id,
        partner_id=partner_id,
        code=code,
        is_active=is_active,
        destination=target,
        destination_refused=refused,
        location_head=head,
        location_separator=separator,
        location_fragment=fragment,
        pass_sub_ids=pass_sub_ids,
    )


def split_location(url: str) -> tuple[str, str, str]:
    """(head, separator, fragment) of ``url`` as a Location header: ``head + separator +
    "a=b" + fragment`` is the URL with the parameter ``a=b`` added to its query."""
    uri = iri_to_uri(url)
    head, hash_, fragment = uri.partition("#")
    separator = "&" if urlsplit(head).query else "?"
    return head, "" if head.endswith(separator) else separator, hash_ + fragment


def get_link(code: str) -> CachedLink | None:
    """The link with this code (one indexed query on a miss), or None when there is none."""
    now = time.monotonic()
    entry = _entries.get(code)
    if entry is not None and entry[0] > now:
        return entry[1]
    row = (
        Link.objects.filter(code=code)
        .values_list("id", "partner_id", "code", "is_active", "destination", "pass_sub_ids", "partner__status")
        .first()
    )
    if row is None:
        _entries.pop(code, None)
        return None
    link_id, partner_id, link_code, is_active, destination, pass_sub_ids, partner_status = row
    # A partner whose application is pending or declined has links that behave like unknown
    # codes ("Partner approval", docs/reference.md): cached as inactive, dropped on a decision.
    link = _build(link_id, partner_id, link_code, is_active and partner_status == "approved", destination, pass_sub_ids)
    if len(_entries) >= LINK_CACHE_MAX_ENTRIES:
        _entries.clear()
    _entries[code] = (now + LINK_CACHE_SECONDS, link)
    return link


def forget(*, link_id: int, code: str) -> None:
    """Drop a link's entry (also under an older code, if the code was edited)."""
    _entries.pop(code, None)
    for key, (_, link) in list(_entries.items()):
        if link.id == link_id:
            _entries.pop(key, None)


def clear() -> None:
    _entries.clear()
