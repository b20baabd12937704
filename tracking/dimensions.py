"""Reads of the click dimensions for the reports: a link broken down by sub-ID (clicks from the
dimension rollups, trials, subscriptions and commission from the referrals of its clicks), and
the Sources view (referring site, device, country) per partner or per link.

Clicks and unique clicks come from ``DailyDimensionStats``; the clicks without a value of the
dimension ("(none)") are the ``DailyLinkStats`` totals minus the values' sum, so the rows of a
breakdown always add up to the link's (or partner's) totals."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.db.models import Count, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce

from commissions.models import CommissionEntry, Referral
from commissions.money import ZERO
from partners.models import Partner
from tracking.link_performance import _ratio
from tracking.models import DailyDimensionStats, DailyLinkStats, Link, PartnerDailyDimensionStats
from tracking.reports import MONEY_SUM
from tracking.rollups import program_tz

SUB_ID_DIMENSIONS = ("sub1", "sub2", "sub3")
SOURCE_DIMENSIONS = ("referrer", "device", "country")
NONE = ""  # the value of the clicks without one ("(none)" on the page)


@dataclass(frozen=True)
class DimensionRow:
    value: str
    clicks: int
    unique_clicks: int
    trials: int = 0
    subscriptions: int = 0
    commission: Decimal = ZERO

    @property
    def click_to_trial(self) -> Decimal | None:
        return _ratio(self.trials, self.unique_clicks)


def _clicks_by_value(
    *, partner: Partner, dimension: str, start: date, end: date, link: Link | None
) -> tuple[list[tuple[str, int, int]], tuple[int, int]]:
    """([(value, clicks, unique clicks)], (total clicks, total unique clicks)) of the range."""
    # One link (the caller checked it is the partner's): by the link alone, so the planner takes
    # the (link, dimension, day, value) key whatever its statistics say about the partner's.
    scope = {"day__gte": start, "day__lte": end, **({"link": link} if link is not None else {"partner": partner})}
    # Partner-wide: the rows summed over the links already (a row per day and value).
    rollup = DailyDimensionStats if link is not None else PartnerDailyDimensionStats
    values = list(
        rollup.objects.filter(dimension=dimension, **scope)
        .values_list("value")
        .annotate(n=Sum("clicks"), u=Sum("unique_clicks"))
        .order_by()
    )
    totals = DailyLinkStats.objects.filter(**scope).aggregate(
        n=Coalesce(Sum("clicks"), 0), u=Coalesce(Sum("unique_clicks"), 0)
    )
    return values, (totals["n"], totals["u"])


def _with_none(values: list[tuple[str, int, int]], totals: tuple[int, int]) -> dict[str, tuple[int, int]]:
    rows = {value: (n, u) for value, n, u in values}
    rest = (totals[0] - sum(n for _, n, _ in values), totals[1] - sum(u for _, _, u in values))
    if rest != (0, 0):
        rows[NONE] = rest
    return rows


def source_breakdown(*, partner: Partner, dimension: str, start: date, end: date, link: Link | None = None):
    """Clicks and unique clicks per value of a source dimension (most clicks first; "(none)" last)."""
    if dimension not in SOURCE_DIMENSIONS:
        raise ValueError(dimension)
    values, totals = _clicks_by_value(partner=partner, dimension=dimension, start=start, end=end, link=link)
    rows = [DimensionRow(value, n, u) for value, (n, u) in _with_none(values, totals).items()]
    return sorted(rows, key=lambda row: (row.value == NONE, -row.clicks, row.value))


def _bounds(start: date, end: date, field: str) -> Q:
    tz = program_tz()
    return Q(
        **{
            f"{field}__gte": datetime.combine(start, time.min, tzinfo=tz),
            f"{field}__lt": datetime.combine(end + timedelta(days=1), time.min, tzinfo=tz),
        }
    )


def sub_id_breakdown(*, link: Link, dimension: str, start: date, end: date) -> list[DimensionRow]:
    """One link by the values of one sub-ID: clicks and unique clicks (rollups), trials and
    subscriptions (referrals of the link by the sub-ID of their click, signed up / first paid in
    the range) and commission (earned in the range). Referrals without a click (promo codes) and
    clicks without the sub-ID are "(none)". Three grouped queries, whatever the number of values."""
    if dimension not in SUB_ID_DIMENSIONS:
        raise ValueError(dimension)
    values, totals = _clicks_by_value(partner=link.partner, dimension=dimension, start=start, end=end, link=link)
    clicks = _with_none(values, totals)
    # One pass over the link's referrals: the trials and subscriptions in the range by their
    # click's sub-ID (the copy on the referral: commissions/referralsubs.py), and each referral's
    # commission in the range from the ledger's (referral, earned_at) index (an index-only probe
    # per referral), not a scan of the ledger.
    in_range = CommissionEntry.objects.filter(_bounds(start, end, "earned_at"), referral=OuterRef("pk"))
    commission_in_range = Subquery(
        in_range.values("referral").annotate(total=Sum("amount")).values("total"), output_field=MONEY_SUM
    )
    by_value = (
        Referral.objects.filter(link=link)
        .values_list(dimension)
        .annotate(
            trials=Count("pk", filter=_bounds(start, end, "signed_up_at")),
            subscriptions=Count("pk", filter=_bounds(start, end, "first_paid_at")),
            commission=Sum(commission_in_range, output_field=MONEY_SUM),
        )
        .order_by()
    )
    trials, subscriptions, commission = {}, {}, {}
    for value, n_trials, n_subscriptions, total in by_value:  # a value shows only with activity in the range
        if n_trials:
            trials[value] = n_trials
        if n_subscriptions:
            subscriptions[value] = n_subscriptions
        if total is not None:  # entries in the range (their sum may be 0.00)
            commission[value] = total

    def merged(counts: dict) -> dict[str, int | Decimal]:
        out: dict = {}
        for value, n in counts.items():
            value = value or NONE  # no click (a promo code: "") reads as no sub-ID
            out[value] = out.get(value, 0) + n
        return out

    trials, subscriptions, commission = merged(trials), merged(subscriptions), merged(commission)
    keys = set(clicks) | set(trials) | set(subscriptions) | set(commission)
    rows = [
        DimensionRow(
            value=value,
            clicks=clicks.get(value, (0, 0))[0],
            unique_clicks=clicks.get(value, (0, 0))[1],
            trials=trials.get(value, 0),
            subscriptions=subscriptions.get(value, 0),
            commission=commission.get(value) or ZERO,
        )
        for value in keys
    ]
    return sorted(rows, key=lambda row: (row.value == NONE, -row.clicks, -row.trials, row.value))
