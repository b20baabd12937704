"""Reads of the program terms: the current version (cached) and its text rendered safely.

The current version is asked on every panel page (has the partner accepted it?), so it is kept
in the cache and dropped when a version is published.
"""

from __future__ import annotations

import markdown
import nh3
from django.utils.safestring import SafeString, mark_safe

from config.cache import cache_delete, cache_get, cache_set
from partners.models import Partner, ProgramTerms

_CACHE_KEY = "program-terms:current"
_CACHE_SECONDS = 300
# Nothing from the terms text runs or loads: no scripts, styles, images or forms; links keep
# only their href (nh3 drops javascript: and other unsafe schemes) and get rel="noopener noreferrer".
_ALLOWED_TAGS = {
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "b", "i", "u", "code", "pre",
    "blockquote", "ul", "ol", "li", "a", "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip


def current_terms() -> ProgramTerms | None:
    """The newest published version, or None when the program has no terms yet."""
    cached = cache_get(_CACHE_KEY)  # None with the cache down: the database still answers
    if cached is not None:
        return cached or None
    terms = ProgramTerms.objects.order_by("-version").first()
    # False marks "no terms" in the cache (None means "not cached"). A cache that is down only
    # costs the query next time.
    cache_set(_CACHE_KEY, terms or False, _CACHE_SECONDS)
    return terms


def forget_current_terms() -> None:
    # With the cache down the entry still expires within _CACHE_SECONDS.
    cache_delete(_CACHE_KEY)


def terms_outdated(partner: Partner) -> ProgramTerms | None:
    """The version the partner must accept before going on, or None when they are up to date."""
    terms = current_terms()
    if terms is None:
        return None
    if partner.accepted_terms_version is not None and partner.accepted_terms_version >= terms.version:
        return None
    return terms


def render_terms(text: str) -> SafeString:
    """Markdown to HTML, then sanitised: staff write the terms, but an admin account taken over
    must not be able to put a script in front of every partner."""
    html = markdown.markdown(text, extensions=["tables", "sane_lists"], output_format="html")
    return mark_safe(
        nh3.clean(html, tags=_ALLOWED_TAGS, attributes={"a": {"href", "title"}}, link_rel="noopener noreferrer")
    )
