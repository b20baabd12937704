"""Reads for the Resources page and the link pages."""

from __future__ import annotations

from django.db.models import Exists, OuterRef, QuerySet

from partners.models import Partner
from tracking.models import Click, Creative, DailyLinkStats, Link, PromoCode


def link_list(*, partner: Partner) -> QuerySet[Link]:
    """The partner's links, default first, each with its creative and whether it has clicks
    (links with clicks cannot be deleted)."""
    return (
        Link.objects.filter(partner=partner)
        .select_related("creative")
        .annotate(
            has_clicks=Exists(Click.objects.filter(link_id=OuterRef("pk")))
            | Exists(DailyLinkStats.objects.filter(link_id=OuterRef("pk"), clicks__gt=0))  # clicks since pruned
        )
        .order_by("-is_default", "-created_at", "-pk")
    )


def link_get(*, partner: Partner, link_id: int) -> Link | None:
    """One of the partner's own links; None for a link of anyone else."""
    return link_list(partner=partner).filter(pk=link_id).first()


def default_link_get(*, partner: Partner) -> Link | None:
    return Link.objects.filter(partner=partner, is_default=True).first()


def creative_list(*, kind: str | None = None) -> QuerySet[Creative]:
    """Active creatives, optionally of one kind."""
    creatives = Creative.objects.filter(is_active=True).order_by("kind", "title", "pk")
    if kind:
        creatives = creatives.filter(kind=kind)
    return creatives


def creative_get(*, creative_id: int) -> Creative | None:
    return Creative.objects.filter(pk=creative_id, is_active=True).first()


def promo_code_list(*, partner: Partner) -> QuerySet[PromoCode]:
    """The partner's promo codes, active and requested alike, newest first."""
    return PromoCode.objects.filter(partner=partner).order_by("-created_at", "-pk")
