"""The per-link reports: the Performance report, one row per link of the partner with the sums of its rollups over a
date range (whole months from ``LinkMonthlyStats``, the days around them from ``DailyLinkStats``,
in one statement), sortable by any column, and a totals row; and one link's daily series (its
page's chart). Definitions are docs/reference.md's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import Q, Sum

from commissions.money import ZERO, cents
from partners.models import Partner
from tracking.models import DailyLinkStats, Link, LinkMonthlyStats
from tracking.reports import link_label


def _ratio(numerator: Decimal | int, denominator: Decimal | int) -> Decimal | None:
    if not denominator:
        return None
    return Decimal(numerator) / Decimal(denominator)


@dataclass(frozen=True)
class LinkPerformance:
    """The numbers of one link (or of all links, ``link=None``) over a date range."""

    link: Link | None
    clicks: int
    unique_clicks: int
    trials: int
    subscriptions: int
    commission: Decimal

    @property
    def click_to_trial(self) -> Decimal | None:
        """Trials per unique click (None without unique clicks)."""
        return _ratio(self.trials, self.unique_clicks)

    @property
    def trial_to_paid(self) -> Decimal | None:
        """Subscriptions per trial (None without trials)."""
        return _ratio(self.subscriptions, self.trials)

    @property
    def earnings_per_click(self) -> Decimal | None:
        """Commission per click, rounded to the cent (None without clicks)."""
        ratio = _ratio(self.commission, self.clicks)
        return None if ratio is None else cents(ratio)


@dataclass(frozen=True)
class PerformanceReport:
    start: date
    end: date
    sort: str
    rows: list[LinkPerformance] = field(default_factory=list)
    totals: LinkPerformance | None = None


SORT_KEYS = {
    "description": lambda r: link_label(r.link).lower(),
    "destination": lambda r: (r.link.destination or settings.DEFAULT_LANDING_URL).lower(),
    "trial_days": lambda r: r.link.trial_days,
    "clicks": lambda r: r.clicks,
    "unique_clicks": lambda r: r.unique_clicks,
    "trials": lambda r: r.trials,
    "subscriptions": lambda r: r.subscriptions,
    "click_to_trial": lambda r: r.click_to_trial if r.click_to_trial is not None else Decimal(-1),
    "trial_to_paid": lambda r: r.trial_to_paid if r.trial_to_paid is not None else Decimal(-1),
    "commission": lambda r: r.commission,
    "earnings_per_click": lambda r: r.earnings_per_click if r.earnings_per_click is not None else Decimal(-1),
}


def normalise_sort(sort: str | None) -> str:
    """A known sort key with an optional leading ``-`` (descending); anything else → "" (the
    natural order: the default link first, then the newest links)."""
    key = (sort or "").removeprefix("-")
    return sort if key in SORT_KEYS else ""


_PER_LINK = {
    "clicks": "clicks",
    "unique_clicks": "unique_clicks",
    "trials": "new_trials",
    "subscriptions": "new_subscriptions",
    "commission": "commission",
}


def _whole_months(start: date, end: date) -> tuple[date, date]:
    """``(first, stop)``: the calendar months lying wholly inside ``start``..``end`` are those
    whose first day is in ``first`` ≤ month < ``stop`` (none when ``first >= stop``)."""
    first = start if start.day == 1 else (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    stop = (end + timedelta(days=1)).replace(day=1)
    return first, stop


def _sums_per_link(partner: Partner, start: date, end: date):
    """Rows of (link_id, sums) whose per-link totals are the sums of the rollups over
    ``start``..``end``: whole months from ``LinkMonthlyStats`` (a row per link and month), the
    days before and after them from ``DailyLinkStats``, both range scans of covering indexes,
    in one statement. A link's rollups carry its partner, so these are all of its rows."""
    first, stop = _whole_months(start, end)
    sums = {name: Sum(column) for name, column in _PER_LINK.items()}
    if first >= stop:
        return (
            DailyLinkStats.objects.filter(partner=partner, day__gte=start, day__lte=end)
            .values("link_id")
            .annotate(**sums)
            .order_by()
        )
    days = (
        DailyLinkStats.objects.filter(
            Q(day__lt=first) | Q(day__gte=stop), partner=partner, day__gte=start, day__lte=end
        )
        .values("link_id")
        .annotate(**sums)
        .order_by()
    )
    months = (
        LinkMonthlyStats.objects.filter(partner=partner, month__gte=first, month__lt=stop)
        .values("link_id")
        .annotate(**sums)
        .order_by()
    )
    return days.union(months, all=True)


def link_performance(partner: Partner, start: date, end: date, sort: str | None = None) -> PerformanceReport:
    """One row per link of the partner (disabled ones included: they keep their history) with
    the sums of its rollups over ``start``..``end``, sorted, plus a totals row. Two queries
    (the links, the sums per link) whatever the number of links and days."""
    sort = normalise_sort(sort)
    links = (
        Link.objects.filter(partner=partner).select_related("creative").order_by("-is_default", "-created_at", "-pk")
    )
    sums: dict[int, dict] = {}
    for row in _sums_per_link(partner, start, end):
        into = sums.setdefault(row["link_id"], dict.fromkeys(_PER_LINK, 0))
        for key in _PER_LINK:
            into[key] += row[key] or 0
    empty = {"clicks": 0, "unique_clicks": 0, "trials": 0, "subscriptions": 0, "commission": ZERO}
    rows = []
    for link in links:
        row = sums.get(link.pk, empty)
        rows.append(
            LinkPerformance(
                link=link,
                clicks=int(row["clicks"]),
                unique_clicks=int(row["unique_clicks"]),
                trials=int(row["trials"]),
                subscriptions=int(row["subscriptions"]),
                commission=cents(Decimal(row["commission"])),
            )
        )
    if sort:
        # Python's sort is stable (also reversed): ties keep the natural order above.
        rows.sort(key=SORT_KEYS[sort.removeprefix("-")], reverse=sort.startswith("-"))
    totals = LinkPerformance(
        link=None,
        clicks=sum(r.clicks for r in rows),
        unique_clicks=sum(r.unique_clicks for r in rows),
        trials=sum(r.trials for r in rows),
        subscriptions=sum(r.subscriptions for r in rows),
        commission=cents(sum((r.commission for r in rows), ZERO)),
    )
    return PerformanceReport(start=start, end=end, sort=sort, rows=rows, totals=totals)


@dataclass(frozen=True)
class LinkSeries:
    """One link's numbers per day over ``days`` (zero on days without activity), and totals."""

    days: list[date]
    clicks: list[int]
    unique_clicks: list[int]
    trials: list[int]
    subscriptions: list[int]
    commission: list[Decimal]
    totals: LinkPerformance


def link_series(link: Link, start: date, end: date) -> LinkSeries:
    """Daily series of one link for ``start``..``end`` inclusive: one query over its rollups
    (the ``(link, day)`` unique index), never raw clicks."""
    rows = DailyLinkStats.objects.filter(link=link, day__gte=start, day__lte=end).values(
        "day", "clicks", "unique_clicks", "new_trials", "new_subscriptions", "commission"
    )
    by_day = {row["day"]: row for row in rows}
    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    empty = {"clicks": 0, "unique_clicks": 0, "new_trials": 0, "new_subscriptions": 0, "commission": ZERO}
    series = [by_day.get(day, empty) for day in days]
    clicks = [int(row["clicks"]) for row in series]
    unique_clicks = [int(row["unique_clicks"]) for row in series]
    trials = [int(row["new_trials"]) for row in series]
    subscriptions = [int(row["new_subscriptions"]) for row in series]
    commission = [cents(row["commission"] or ZERO) for row in series]
    totals = LinkPerformance(
        link=link,
        clicks=sum(clicks),
        unique_clicks=sum(unique_clicks),
        trials=sum(trials),
        subscriptions=sum(subscriptions),
        commission=cents(sum(commission, ZERO)),
    )
    return LinkSeries(days, clicks, unique_clicks, trials, subscriptions, commission, totals)
