"""Report selectors: the date ranges every report takes, the dashboard KPIs, the trend series, and
how links are named in them (the per-link performance rows: ``tracking.link_performance``).

Everything here reads the daily rollups (``DailyLinkStats``), never raw clicks, and each report
is one aggregate query whatever the size of the data (plus the referral status counts and the
balance for the summary). Definitions are docs/reference.md's.
"""

from __future__ import annotations

import calendar
import functools
import re
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection
from django.db.models import (
    Count,
    DecimalField,
    Exists,
    IntegerField,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from commissions import referraldays
from commissions.models import CommissionEntry, Referral, ReferralCount
from commissions.money import ZERO, cents
from config.errors import PortalError
from partners.models import Partner
from payouts.models import Payout
from payouts.rules import WithdrawalStatus, withdrawal_status
from tracking.models import DailyLinkStats, Link, LinkMonthlyStats
from tracking.rollups import program_today

# "A range over 2 years" is refused: at most 731 days, both ends included.
MAX_RANGE_DAYS = 731
DEFAULT_RANGE_DAYS = 30
_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)

# Sums of money columns (a partner's all-time commission can outgrow a single amount's 12 digits).
MONEY_SUM = DecimalField(max_digits=14, decimal_places=2)
_INT_ZERO = Value(0, output_field=IntegerField())
_MONEY_SUM_ZERO = Value(ZERO, output_field=MONEY_SUM)


# --- Date ranges ----------------------------------------------------------------------------


class DateRangeError(PortalError):
    code = "invalid_date_range"


# Every date filter (pages, CSVs, the API) takes days in this window: the program's data starts
# after 2000, and a day far ahead (9999-12-31) overflowed `day + 1` in the queries (500s).
EARLIEST_DAY = date(2000, 1, 1)
MAX_DAYS_AHEAD = 366


def check_day(day: date, field: str, *, today: date | None = None) -> date:
    """``day`` when it lies between EARLIEST_DAY and a year from today; else ``DateRangeError``
    naming ``field``. The one bound of every date filter (the API here, the page forms through
    ``commissions.forms.DateRangeForm``)."""
    latest = (today or program_today()) + timedelta(days=MAX_DAYS_AHEAD)
    if not EARLIEST_DAY <= day <= latest:
        raise DateRangeError(
            f"{field} must be a day between {EARLIEST_DAY.isoformat()} and {latest.isoformat()}.",
            code="invalid_date",
            field=field,
        )
    return day


def default_range(today: date | None = None) -> tuple[date, date]:
    """The last 30 days, today included (program time zone)."""
    today = today or program_today()
    return today - timedelta(days=DEFAULT_RANGE_DAYS - 1), today


def parse_date_range(start: str | None, end: str | None, *, today: date | None = None) -> tuple[date, date]:
    """Inclusive ``YYYY-MM-DD`` bounds from a query string; missing ones default to the last 30
    days. Raises ``DateRangeError`` (with the offending ``field``) for a bad date, a start after
    the end, or a range longer than two years."""

    def parse(value: str | None, name: str) -> date | None:
        if value is None or value.strip() == "":
            return None
        value = value.strip()
        try:
            # Exactly YYYY-MM-DD: Python's fromisoformat alone would also take "20250101".
            if not _ISO_DAY.fullmatch(value):
                raise ValueError(value)
            day = date.fromisoformat(value)
        except ValueError:
            raise DateRangeError(
                f"{name} must be a date written YYYY-MM-DD.", code="invalid_date", field=name
            ) from None
        return check_day(day, name, today=today)

    start_day, end_day = parse(start, "start"), parse(end, "end")
    end_day = end_day or default_range(today)[1]
    # A start left out means the 30 days up to the end.
    start_day = start_day or end_day - timedelta(days=DEFAULT_RANGE_DAYS - 1)
    if start_day > end_day:
        raise DateRangeError("start must be on or before end.", field="start")
    if (end_day - start_day).days + 1 > MAX_RANGE_DAYS:
        raise DateRangeError(f"A date range can cover at most {MAX_RANGE_DAYS} days (2 years).", field="end")
    return start_day, end_day


def period_presets(today: date | None = None) -> dict[str, tuple[date, date]]:
    """The dashboard's selectable periods, in the program's calendar."""
    today = today or program_today()
    first_this_month = today.replace(day=1)
    last_month_end = first_this_month - timedelta(days=1)
    return {
        "7d": (today - timedelta(days=6), today),
        "30d": (today - timedelta(days=29), today),
        "90d": (today - timedelta(days=89), today),
        "this_month": (first_this_month, today),
        "last_month": (
            last_month_end.replace(day=1),
            last_month_end.replace(day=calendar.monthrange(last_month_end.year, last_month_end.month)[1]),
        ),
    }


# --- Summary (dashboard KPIs, GET summary) ---------------------------------------------------


@dataclass(frozen=True)
class PartnerSummary:
    currency: str
    commission: Decimal
    unique_clicks_30d: int
    active_trials: int
    active_subscriptions: int
    balance: Decimal
    withdrawal: WithdrawalStatus
    # The balance's neighbours (issue 22): positive commission still inside the hold, and the
    # payouts that hold money and are not paid yet.
    pending_commission: Decimal = Decimal("0.00")
    in_payouts: Decimal = Decimal("0.00")

    @property
    def can_withdraw(self) -> bool:
        return self.withdrawal.can_withdraw


def _total(queryset, field: str, output_field) -> Coalesce:
    """``SUM(field)`` of ``queryset`` (correlated on the partner) as a scalar subquery, 0 when empty."""
    summed = queryset.order_by().values("partner").annotate(total=Sum(field)).values("total")
    zero = _MONEY_SUM_ZERO if isinstance(output_field, DecimalField) else _INT_ZERO
    return Coalesce(Subquery(summed, output_field=output_field), zero, output_field=output_field)


def _count(queryset) -> Coalesce:
    counted = queryset.order_by().values("partner").annotate(n=Count("pk")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), _INT_ZERO, output_field=IntegerField())


def _summary_row(mine: dict, *, since: date, today: date, now, cutoff) -> dict:
    """The summary's sums and counts in one ORM statement (SQLite: the demo and tests)."""
    return (
        Partner.objects.filter(pk=mine["partner_id"])
        .values(
            # Commission = every commission entry, reversals included. The rollups hold their sum
            # per link and day (written in the same transaction as each entry), the month rows
            # the same sums per link and month: so this is the ledger's sum, read from a row per
            # link and month (and no partner-wide row every event would have to lock).
            commission=_total(LinkMonthlyStats.objects.filter(**mine), "commission", MONEY_SUM),
            # Unique clicks are additive across days and links: the last 30 days, today included.
            unique_clicks_30d=_total(
                DailyLinkStats.objects.filter(**mine, day__gte=since, day__lte=today), "unique_clicks", IntegerField()
            ),
            # Counted from the referrals (PostgreSQL reads ReferralCount, _summary_sql): "active
            # trial" depends on the time now. Each count is a range of the (partner, status,
            # trial_ends_at) index alone.
            active_trials=_count(Referral.objects.filter(**mine, status=Referral.Status.TRIAL, trial_ends_at__gt=now)),
            active_subscriptions=_count(Referral.objects.filter(**mine, status=Referral.Status.PAYING)),
            # The balance, see below: commission still in the hold, and payouts that hold money.
            held=_total(
                CommissionEntry.objects.filter(**mine, kind=CommissionEntry.Kind.COMMISSION, earned_at__gt=cutoff),
                "amount",
                MONEY_SUM,
            ),
            paid_out=_total(Payout.objects.filter(**mine, status__in=Payout.COUNTED_STATUSES), "amount", MONEY_SUM),
            open_payout=Exists(Payout.objects.filter(**mine, status__in=Payout.OPEN_STATUSES)),
            in_payouts=_total(Payout.objects.filter(**mine, status__in=Payout.OPEN_STATUSES), "amount", MONEY_SUM),
        )
        .get()
    )


@functools.cache
def _summary_sql() -> str:
    """``_summary_row``'s statement written out for PostgreSQL: building and compiling the ORM's
    nine subqueries cost more than running them (3-5 of 8-15 ms a dashboard on the loadbench
    account). Same subqueries, same indexes; the partner and the moments are parameters, so the
    text is built once per process. The contract's summary tests run on both databases.

    The active trials and subscriptions come from ``ReferralCount`` (the referrals per stored
    status, kept by triggers): "active trial" also depends on the time now (a trial that ended
    without payment stops counting at once, whether or not the periodic expiry task has run
    yet), so the trials that ended but still read "trial" are subtracted, a range of the
    (partner, status, trial_ends_at) index holding only those few."""
    trial, paying = Referral.Status.TRIAL, Referral.Status.PAYING
    commission = CommissionEntry.Kind.COMMISSION
    monthly, daily = LinkMonthlyStats._meta.db_table, DailyLinkStats._meta.db_table
    referrals, counts = Referral._meta.db_table, ReferralCount._meta.db_table
    ledger, payouts = CommissionEntry._meta.db_table, Payout._meta.db_table
    counted = ", ".join(f"'{status}'" for status in Payout.COUNTED_STATUSES)
    open_ = ", ".join(f"'{status}'" for status in Payout.OPEN_STATUSES)
    return (
        f"SELECT COALESCE((SELECT SUM(commission) FROM {monthly} WHERE partner_id = %(p)s), 0), "
        f"COALESCE((SELECT SUM(unique_clicks) FROM {daily} WHERE partner_id = %(p)s "
        "AND day >= %(since)s AND day <= %(today)s), 0), "
        f"COALESCE((SELECT SUM(referrals) FROM {counts} WHERE partner_id = %(p)s AND status = '{trial}'), 0) "
        f"- (SELECT COUNT(*) FROM {referrals} WHERE partner_id = %(p)s AND status = '{trial}' "
        "AND trial_ends_at <= %(now)s), "
        f"COALESCE((SELECT SUM(referrals) FROM {counts} WHERE partner_id = %(p)s AND status = '{paying}'), 0), "
        f"COALESCE((SELECT SUM(amount) FROM {ledger} WHERE partner_id = %(p)s AND kind = '{commission}' "
        "AND earned_at > %(cutoff)s), 0), "
        f"COALESCE((SELECT SUM(amount) FROM {payouts} WHERE partner_id = %(p)s AND status IN ({counted})), 0), "
        f"EXISTS (SELECT 1 FROM {payouts} WHERE partner_id = %(p)s AND status IN ({open_})), "
        f"COALESCE((SELECT SUM(amount) FROM {payouts} WHERE partner_id = %(p)s AND status IN ({open_})), 0)"
    )


def _summary_row_postgres(partner_id: int, *, since: date, today: date, now, cutoff) -> dict:
    """``_summary_row`` on PostgreSQL (``_summary_sql``); its numeric sums arrive as ``Decimal``."""
    params = {"p": partner_id, "since": since, "today": today, "now": now, "cutoff": cutoff}
    with connection.cursor() as cursor:
        cursor.execute(_summary_sql(), params)
        values = cursor.fetchone()
    keys = (
        "commission",
        "unique_clicks_30d",
        "active_trials",
        "active_subscriptions",
        "held",
        "paid_out",
        "open_payout",
        "in_payouts",
    )
    return dict(zip(keys, values, strict=True))


def partner_summary(partner: Partner) -> PartnerSummary:
    """The five KPIs of the contract plus whether the partner can withdraw, in one statement
    whose every part reads a bounded number of index entries (a row per link and month, 30 days of
    rollups, a few counter rows per status, the newest ledger entries, the payouts)."""
    today = program_today()
    since = today - timedelta(days=29)
    now = timezone.now()
    # The partner as a constant, not OuterRef: each subquery is then planned for this partner
    # (with a correlated one the planner guesses a few rows and picks the wrong index).
    mine = {"partner_id": partner.pk}
    cutoff = now - timedelta(days=settings.COMMISSION_HOLD_DAYS)
    if referraldays.kept():
        row = _summary_row_postgres(partner.pk, since=since, today=today, now=now, cutoff=cutoff)
    else:
        row = _summary_row(mine, since=since, today=today, now=now, cutoff=cutoff)
    # Which balance: neither the denormalised Partner.balance (it lags the ledger by a Celery
    # round-trip, so the button here could disagree with /payouts/ or with what a request then
    # finds) nor a full ledger aggregate (hundreds of milliseconds for a partner with 100,000
    # payments). The contract's balance is "all entries − commissions still in the hold −
    # payouts pending/approved/processing/paid"; the first term is the commission KPI above,
    # the other two read only recent entries and the payouts. So it equals the ledger balance,
    # always current. Withdrawals themselves never use it: the payouts code recomputes the
    # balance from the ledger under the partner lock.
    commission = cents(row["commission"])
    balance = cents(row["commission"] - row["held"] - row["paid_out"])
    withdrawal = withdrawal_status(partner=partner, balance=balance, open_payout=row["open_payout"])
    return PartnerSummary(
        currency=settings.PROGRAM_CURRENCY,
        commission=commission,
        unique_clicks_30d=int(row["unique_clicks_30d"]),
        active_trials=int(row["active_trials"]),
        active_subscriptions=int(row["active_subscriptions"]),
        balance=balance,
        withdrawal=withdrawal,
        pending_commission=cents(row["held"]),
        in_payouts=cents(row["in_payouts"]),
    )


# --- Trends -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Trends:
    """One value per day of ``days`` in each series (zero on days without activity)."""

    days: list[date]
    commission: list[Decimal]
    new_trials: list[int]
    new_subscriptions: list[int]
    unique_clicks: list[int]

    @property
    def totals(self) -> dict[str, int | Decimal]:
        return {
            "commission": cents(sum(self.commission, ZERO)),
            "new_trials": sum(self.new_trials),
            "new_subscriptions": sum(self.new_subscriptions),
            "unique_clicks": sum(self.unique_clicks),
        }

    @property
    def is_empty(self) -> bool:
        totals = self.totals
        return not any(totals.values())


def partner_trends(partner: Partner, start: date, end: date) -> Trends:
    """Daily series for ``start``..``end`` inclusive: one query over the partner's rollups."""
    rows = (
        DailyLinkStats.objects.filter(partner=partner, day__gte=start, day__lte=end)
        .values("day")
        .annotate(
            commission=Sum("commission"),
            new_trials=Sum("new_trials"),
            new_subscriptions=Sum("new_subscriptions"),
            unique_clicks=Sum("unique_clicks"),
        )
        .order_by("day")
    )
    by_day = {row["day"]: row for row in rows}
    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    empty = {"commission": ZERO, "new_trials": 0, "new_subscriptions": 0, "unique_clicks": 0}
    series = [by_day.get(day, empty) for day in days]
    return Trends(
        days=days,
        commission=[cents(row["commission"] or ZERO) for row in series],
        new_trials=[int(row["new_trials"] or 0) for row in series],
        new_subscriptions=[int(row["new_subscriptions"] or 0) for row in series],
        unique_clicks=[int(row["unique_clicks"] or 0) for row in series],
    )


def link_label(link: Link) -> str:
    """How a link is named in reports: its description, else "Default link" or its code."""
    return link.description or ("Default link" if link.is_default else link.code)


def link_url(link: Link) -> str:
    return f"{settings.SITE_URL}/r/{link.code}"


def link_destination(link: Link) -> str:
    """Where the link sends visitors: an empty destination means the default landing page."""
    return link.destination or settings.DEFAULT_LANDING_URL


def percent(ratio: Decimal | None) -> str:
    """A conversion rate for people: ``12.5 %``; an em dash when it is undefined."""
    if ratio is None:
        return "—"
    return f"{(ratio * 100).quantize(Decimal('0.1'))} %"
