"""Reads of referrals, payments and the commission ledger for pages, CSV exports and APIs.

None of them depends on ``expire_trials_task`` having run: an *active trial* is a referral in
``trial`` whose ``trial_ends_at`` is still ahead; one whose trial is over reads as ``expired``
("Trial ended") whether or not the task has flipped its stored status yet.
"""

from __future__ import annotations

import itertools
import zoneinfo
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import Case, CharField, Count, DecimalField, F, IntegerField, Q, QuerySet, Sum, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from commissions import ledgerdays, referraldays
from commissions.display import format_date, format_money, mask_email
from commissions.models import (
    CommissionEntry,
    LedgerDay,
    MerchantEvent,
    Payment,
    Referral,
    ReferralCount,
    ReferralDay,
    Refund,
)
from commissions.money import ZERO, cents
from partners.models import Partner
from tracking.models import PromoCode

Status = Referral.Status
_MONEY = DecimalField(max_digits=12, decimal_places=2)

# The statuses a partner can filter by, in the words the panel uses.
STATUS_LABELS = {
    Status.TRIAL: "Trial",
    Status.EXPIRED: "Trial ended",
    Status.PAYING: "Paying",
    Status.CANCELLED: "Cancelled",
}

REFERRAL_SORTS = {
    "signed_up": ("signed_up_at", "id"),
    "-signed_up": ("-signed_up_at", "-id"),
    "status": ("current_status", "-signed_up_at", "-id"),
    "-status": ("-current_status", "-signed_up_at", "-id"),
    "paid": ("total_paid", "-signed_up_at", "-id"),
    "-paid": ("-total_paid", "-signed_up_at", "-id"),
    "commission": ("total_commission", "-signed_up_at", "-id"),
    "-commission": ("-total_commission", "-signed_up_at", "-id"),
}
DEFAULT_REFERRAL_SORT = "-signed_up"


def _day_bounds(start: date | None, end: date | None, field_name: str = "earned_at") -> Q:
    """``field_name`` within the program-time-zone days ``start``..``end`` (inclusive)."""
    q = Q()
    tz = timezone.get_current_timezone()
    if start is not None:
        q &= Q(**{f"{field_name}__gte": datetime.combine(start, time.min, tzinfo=tz)})
    if end is not None:
        q &= Q(**{f"{field_name}__lt": datetime.combine(end + timedelta(days=1), time.min, tzinfo=tz)})
    return q


# --- trials ------------------------------------------------------------------------------


def active_trials_q(*, now: datetime | None = None) -> Q:
    """The contract's *active trial*: status ``trial`` and the trial has not ended."""
    return Q(status=Status.TRIAL, trial_ends_at__gt=now or timezone.now())


def ended_trials_q(*, now: datetime | None = None) -> Q:
    """Trials over with no payment, whether or not ``expire_trials_task`` has marked them."""
    return Q(status=Status.EXPIRED) | Q(status=Status.TRIAL, trial_ends_at__lte=now or timezone.now())


def active_trials(queryset: QuerySet[Referral] | None = None, *, now: datetime | None = None) -> QuerySet[Referral]:
    queryset = Referral.objects.all() if queryset is None else queryset
    return queryset.filter(active_trials_q(now=now))


def referral_status(referral: Referral, *, now: datetime | None = None) -> str:
    """The status as of ``now`` (an ended trial reads ``expired`` before the task marks it)."""
    if referral.status == Status.TRIAL and referral.trial_ends_at <= (now or timezone.now()):
        return Status.EXPIRED
    return referral.status


def referral_counts(*, partner: Partner, now: datetime | None = None) -> dict[str, int]:
    """Active trials and active subscriptions (status ``paying``) of a partner, in one query."""
    now = now or timezone.now()
    row = Referral.objects.filter(partner=partner).aggregate(
        active_trials=Count("id", filter=active_trials_q(now=now)),
        active_subscriptions=Count("id", filter=Q(status=Status.PAYING)),
    )
    return {"active_trials": row["active_trials"] or 0, "active_subscriptions": row["active_subscriptions"] or 0}


def _with_current_status(queryset: QuerySet[Referral], now: datetime) -> QuerySet[Referral]:
    return queryset.annotate(
        current_status=Case(
            When(status=Status.TRIAL, trial_ends_at__lte=now, then=Value(Status.EXPIRED.value)),
            default=F("status"),
            output_field=CharField(),
        )
    )


# --- referrals ---------------------------------------------------------------------------


def referral_list(
    *,
    partner: Partner,
    status: str | None = None,
    link_id: int | None = None,
    start: date | None = None,
    end: date | None = None,
    sort: str | None = None,
    now: datetime | None = None,
) -> QuerySet[Referral]:
    """The partner's referrals with their link, filtered (status, link, sign-up days
    ``start``..``end``) and sorted; ``current_status`` is annotated (see the module docstring).
    Each row needs no further query."""
    now = now or timezone.now()
    queryset = _with_current_status(Referral.objects.filter(partner=partner), now).select_related("link")
    queryset = queryset.filter(_day_bounds(start, end, "signed_up_at"))
    if status == Status.TRIAL:
        queryset = queryset.filter(active_trials_q(now=now))
    elif status == Status.EXPIRED:
        queryset = queryset.filter(ended_trials_q(now=now))
    elif status in (Status.PAYING, Status.CANCELLED):
        queryset = queryset.filter(status=status)
    if link_id is not None:
        queryset = queryset.filter(link_id=link_id)
    return queryset.order_by(*REFERRAL_SORTS.get(sort or DEFAULT_REFERRAL_SORT, REFERRAL_SORTS[DEFAULT_REFERRAL_SORT]))


# Sorted by status, the ordering is ``current_status`` (it depends on the time now), newest first
# within each: PostgreSQL would sort every referral of the partner by a CASE expression (10 ms for
# 25,000). Instead the page's keys are read status by status, each newest first from the
# (partner, signed_up_at) index, after the statuses' sizes: ReferralDay's sums per stored status
# and one count of the trials still running (the rest of the stored trials have ended).
_BY_STATUS = (Status.CANCELLED, Status.EXPIRED, Status.PAYING, Status.TRIAL)  # as the values sort


def _status_branch(status: str, now: datetime) -> Q:
    if status == Status.TRIAL:
        return active_trials_q(now=now)
    if status == Status.EXPIRED:
        return ended_trials_q(now=now)
    return Q(status=status)


def status_sort_keys(
    *,
    partner: Partner,
    sort: str | None,
    status: str | None = None,
    link_id: int | None = None,
    start: date | None = None,
    end: date | None = None,
    now: datetime | None = None,
) -> tuple[int, Callable[[int, int], list[int]]] | None:
    """For ``referral_list(..., sort="status"|"-status")`` without a status filter, on
    PostgreSQL: (the number of rows, a function reading the ids of rows ``bottom``..``top`` in
    that order, for ``SeekPaginator(keys=...)``); None otherwise (the queryset sorts itself)."""
    if sort not in ("status", "-status") or status or not referraldays.kept():
        return None
    now = now or timezone.now()
    mine = Referral.objects.filter(partner=partner).filter(_day_bounds(start, end, "signed_up_at"))
    if link_id is not None:
        mine = mine.filter(link_id=link_id)
    if link_id is None and start is None and end is None:
        sizes = _current_counts(partner, now)
    else:
        days = _referral_days(partner=partner, link_id=link_id, start=start, end=end)
        stored = dict(days.values_list("status").annotate(n=Sum("referrals")).order_by())
        sizes = _by_current_status(stored, running=mine.filter(active_trials_q(now=now)).count())
    order = _BY_STATUS if sort == "status" else _BY_STATUS[::-1]

    def keys(bottom: int, top: int) -> list[int]:
        # One statement whatever the page spans: a slice of each status it covers (UNION ALL).
        slices, offset = [], 0
        for n, branch in enumerate(order):
            size = max(sizes[branch], 0)
            low, high = max(bottom, offset) - offset, min(top, offset + size) - offset
            if high > low:
                ids = mine.filter(_status_branch(branch, now)).order_by("-signed_up_at", "-id")
                ids = ids.annotate(branch=Value(n, output_field=IntegerField()))
                slices.append(ids.values_list("branch", "signed_up_at", "pk")[low:high])
            offset += size
        if not slices:
            return []
        rows = list(slices[0].union(*slices[1:], all=True) if len(slices) > 1 else slices[0])
        # The slices' order, whatever order the database returned them in: newest first, by status.
        rows.sort(key=lambda row: (row[1], row[2]), reverse=True)
        rows.sort(key=lambda row: row[0])
        return [pk for _branch, _signed_up_at, pk in rows]

    return sum(max(size, 0) for size in sizes.values()), keys


# Sorted by paid or by commission: PostgreSQL would sort every referral of the partner (a top-N
# sort of 20,000 rows: about 10 ms, the scan half of it; a full sort for a page deep in them), and
# an index on either total would make every payment's update of its referral touch all the
# table's indexes. Neither total is ever below 0.00 (check constraints), and most referrals have
# 0.00 (trials, trials that ended): those are a band of their own, newest first, which is a range
# of the (partner, signed_up_at) index, first when ascending and last when descending. The
# other band is sorted by the amount (ties newest first): fewer rows to sort. A page is read from
# the end of the list it lies nearer, as a page of the band at that end; a full page proves it
# lies inside that band. A page across the two (one in thousands) is the database's own sort.
_AMOUNT_SORTS = {
    "paid": "total_paid",
    "-paid": "total_paid",
    "commission": "total_commission",
    "-commission": "total_commission",
}
_NEWEST_FIRST = ("-signed_up_at", "-id")
_AMOUNT_SORT_AT_MOST = 100  # rows the database sorts itself faster than a band is read


def _reversed(ordering: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(key[1:] if key.startswith("-") else f"-{key}" for key in ordering)


def amount_sort_keys(
    *,
    partner: Partner,
    sort: str | None,
    status: str | None = None,
    link_id: int | None = None,
    start: date | None = None,
    end: date | None = None,
    now: datetime | None = None,
) -> tuple[int, Callable[[int, int], list[int]]] | None:
    """For ``referral_list(..., sort="paid"|"-paid"|"commission"|"-commission")``: (the number of
    rows, a function reading the ids of rows ``bottom``..``top`` in that order, for
    ``SeekPaginator(keys=...)``); None for the other sorts (the queryset sorts itself)."""
    field = _AMOUNT_SORTS.get(sort or "")
    if field is None:
        return None
    mine = referral_list(partner=partner, status=status, link_id=link_id, start=start, end=end, now=now).order_by()
    zero = (mine.filter(**{field: 0}), _NEWEST_FIRST)
    amounts = (mine.filter(**{f"{field}__gt": 0}), (f"-{field}" if sort.startswith("-") else field, *_NEWEST_FIRST))
    first, second = (amounts, zero) if sort.startswith("-") else (zero, amounts)
    count = referral_count(partner=partner, status=status, link_id=link_id, start=start, end=end)
    if count is None:
        count = mine.count()

    def head(band, low: int, high: int) -> list[int]:
        """Rows ``low``..``high`` of a band from its start."""
        rows, ordering = band
        return list(rows.order_by(*ordering).values_list("pk", flat=True)[low:high])

    def tail(band, low: int, high: int) -> list[int]:
        """Rows ``low``..``high`` of a band counted from its end, in the band's order."""
        rows, ordering = band
        return list(rows.order_by(*_reversed(ordering)).values_list("pk", flat=True)[low:high])[::-1]

    def keys(bottom: int, top: int) -> list[int]:
        if count > _AMOUNT_SORT_AT_MOST:
            # From the end the page lies nearer: a full page proves it lies inside that band.
            ids = head(first, bottom, top) if top <= count // 2 else tail(second, count - top, count - bottom)
            if len(ids) == top - bottom:
                return ids
        # A few rows, or a page across the two bands: the database's own sort.
        return list(mine.order_by(*REFERRAL_SORTS[sort]).values_list("pk", flat=True)[bottom:top])

    return count, keys


def referral_count(
    *,
    partner: Partner,
    status: str | None = None,
    link_id: int | None = None,
    start: date | None = None,
    end: date | None = None,
) -> int | None:
    """The number of ``referral_list(...)`` rows from ``ReferralCount`` (PostgreSQL, no link or
    date filter: a few rows per status) or ``ReferralDay`` (a few rows a day instead of every
    referral), or ``None`` where the rollups cannot say it: on SQLite, and for the trial filters
    of a link or dates, which depend on the time now (the paginator counts those)."""
    if not referraldays.kept():
        return None
    if link_id is None and start is None and end is None:
        counts = _current_counts(partner, timezone.now())
        return counts.get(status, 0) if status else sum(counts.values())
    if status in (Status.TRIAL, Status.EXPIRED):
        return None
    days = _referral_days(partner=partner, link_id=link_id, start=start, end=end)
    if status:
        days = days.filter(status=status)
    return int(days.aggregate(n=Coalesce(Sum("referrals"), 0))["n"])


def _by_current_status(stored: dict[str, int], *, running: int) -> dict[str, int]:
    """Referrals per stored status as the page shows them: of the trials, ``running`` are still
    on and the rest read "Trial ended" before the expiry task marks them."""
    return {
        Status.TRIAL: running,
        Status.EXPIRED: stored.get(Status.EXPIRED, 0) + stored.get(Status.TRIAL, 0) - running,
        Status.PAYING: stored.get(Status.PAYING, 0),
        Status.CANCELLED: stored.get(Status.CANCELLED, 0),
    }


def _current_counts(partner: Partner, now: datetime) -> dict[str, int]:
    """All the partner's referrals by current status, from ``ReferralCount`` (a few rows) less the
    trials that ended but still read "trial" (a range of the status index) (PostgreSQL)."""
    rows = ReferralCount.objects.filter(partner=partner).values_list("status").annotate(n=Sum("referrals"))
    stored = {status: int(n) for status, n in rows.order_by()}
    ended = Referral.objects.filter(partner=partner, status=Status.TRIAL, trial_ends_at__lte=now).count()
    return _by_current_status(stored, running=stored.get(Status.TRIAL, 0) - ended)


def _referral_days(*, partner: Partner, link_id: int | None, start: date | None, end: date | None):
    """The partner's ``ReferralDay`` rows for the Referrals page's link and sign-up-day filters."""
    days = ReferralDay.objects.filter(partner=partner)
    if link_id is not None:
        days = days.filter(link_id=link_id)
    if start is not None:
        days = days.filter(day__gte=start)
    if end is not None:
        days = days.filter(day__lte=end)
    return days


def referral_get(*, partner: Partner, pk: int, now: datetime | None = None) -> Referral:
    """One of the partner's referrals (``Referral.DoesNotExist`` for anyone else's)."""
    now = now or timezone.now()
    return _with_current_status(
        Referral.objects.filter(partner=partner).select_related("link", "click", "promo_code"), now
    ).get(pk=pk)


def referral_labels() -> dict[str, str]:
    """Column titles of the referrals table, shared by the page and its CSV (money columns name
    the program's currency)."""
    currency = settings.PROGRAM_CURRENCY
    return {
        "referral": "Referral",
        "customer": "Customer",
        "link": "Link",
        "signed_up": "Signed up",
        "status": "Status",
        "plan": "Plan now",
        "paid": f"Money brought ({currency})",
        "commission": f"Commission ({currency})",
    }


def referral_csv_header() -> list[str]:
    """The page's column titles, and after them what only the CSV carries."""
    labels = referral_labels()
    return [
        labels["referral"],
        labels["customer"],
        labels["link"],
        "Link code",
        labels["signed_up"],
        labels["status"],
        "Trial days",
        "Trial ends",
        labels["plan"],
        "Seats",
        labels["paid"],
        labels["commission"],
        "Self-referral",
    ]


def link_name(code: str, description: str, is_default: bool) -> str:
    """How the Referrals pages and CSV name a referral's link: its description, else "Default
    link" or its path."""
    return description or ("Default link" if is_default else f"/r/{code}")


def referral_csv_rows(queryset: QuerySet[Referral]) -> Iterator[list[object]]:
    """CSV rows for ``referral_list``'s queryset, streamed in chunks (constant memory)."""
    rows = queryset.values_list(
        "id",
        "email",
        "link__code",
        "link__description",
        "link__is_default",
        "signed_up_at",
        "current_status",
        "trial_days",
        "trial_ends_at",
        "plan",
        "seats",
        "total_paid",
        "total_commission",
        "is_self_referral",
    )
    for (
        pk,
        email,
        code,
        description,
        is_default,
        signed_up,
        status,
        trial_days,
        trial_end,
        plan,
        seats,
        paid,
        commission,
        self_ref,
    ) in rows.iterator(chunk_size=2000):
        yield [
            pk,
            mask_email(email),
            link_name(code, description, is_default),
            code,
            format_date(signed_up, for_csv=True),
            STATUS_LABELS.get(status, status),
            trial_days,
            format_date(trial_end, for_csv=True),
            f"Plan {plan}" if plan else "",
            seats if seats is not None else "",
            format_money(paid, for_csv=True),
            format_money(commission, for_csv=True),
            "yes" if self_ref else "no",
        ]


# --- the timeline of one referral --------------------------------------------------------


@dataclass
class TimelineItem:
    at: datetime
    kind: str  # click, signed_up, trial_ended, payment, refund, cancelled
    title: str
    detail: str = ""
    amount: Decimal | None = None  # money the customer paid (negative: refunded)
    commission: Decimal | None = None  # the ledger entry it made
    order: int = 0
    extra: dict = field(default_factory=dict)


def referral_timeline(*, referral: Referral, now: datetime | None = None) -> list[TimelineItem]:
    """Click, sign-up, end of trial, payments, refunds and cancellations, oldest first, each
    with the commission entry it made. A fixed number of queries whatever the history."""
    now = now or timezone.now()
    link = referral.link
    if referral.click is not None:
        first = TimelineItem(
            at=referral.click.created_at,
            kind="click",
            title="Clicked your link",
            detail=link.description or ("Your default link" if link.is_default else f"/r/{link.code}"),
            order=0,
        )
    else:  # referred by a promo code alone: the sign-up is the first thing we know of
        first = TimelineItem(
            at=referral.signed_up_at,
            kind="promo_code",
            title="Used your promo code",
            detail=referral.promo_code.code if referral.promo_code is not None else "",
            order=0,
        )
    items = [
        first,
        TimelineItem(
            at=referral.signed_up_at,
            kind="signed_up",
            title="Signed up",
            detail=f"{referral.trial_days}-day trial"
            + (" · self-referral, earns no commission" if referral.is_self_referral else ""),
            order=1,
        ),
    ]
    first_paid = referral.first_paid_at
    if referral.trial_ends_at <= now and (first_paid is None or first_paid > referral.trial_ends_at):
        # Said as it happened: "no payment" only while none has come; a payment after the end
        # of the trial (a late card, a plan bought a day later) is named, not contradicted.
        items.append(
            TimelineItem(
                at=referral.trial_ends_at,
                kind="trial_ended",
                title="Trial ended",
                detail="No payment during the trial"
                if first_paid is None
                else "The first payment came after the trial",
                order=2,
            )
        )

    entries = CommissionEntry.objects.filter(referral=referral).values_list("payment_id", "refund_id", "kind", "amount")
    commission_of_payment: dict[int, Decimal] = {}
    commission_of_refund: dict[int, Decimal] = {}
    for payment_id, refund_id, kind, amount in entries:
        if kind == CommissionEntry.Kind.COMMISSION:
            commission_of_payment[payment_id] = commission_of_payment.get(payment_id, ZERO) + amount
        elif refund_id is not None:
            commission_of_refund[refund_id] = amount

    # Tuples, not model instances: a referral may have hundreds of payments.
    payments = Payment.objects.filter(referral=referral).order_by("paid_at", "id")
    for pk, paid_at, plan, seats, amount in payments.values_list("pk", "paid_at", "plan", "seats", "amount"):
        items.append(
            TimelineItem(
                at=paid_at,
                kind="payment",
                title="Payment",
                detail=f"Plan {plan} · {seats} seat{'s' if seats != 1 else ''}",
                amount=amount,
                commission=commission_of_payment.get(pk),
                order=3,
            )
        )
    for refund in Refund.objects.filter(payment__referral=referral).order_by("refunded_at", "id"):
        items.append(
            TimelineItem(
                at=refund.refunded_at,
                kind="refund",
                title="Refund",
                detail="Part of a payment was refunded",
                amount=-refund.amount,
                commission=commission_of_refund.get(refund.pk),
                order=4,
            )
        )
    cancellations = MerchantEvent.objects.filter(
        referral=referral, type=MerchantEvent.Type.SUBSCRIPTION_CANCELLED, outcome=MerchantEvent.Outcome.APPLIED
    ).values_list("created", flat=True)
    items.extend(
        TimelineItem(at=moment, kind="cancelled", title="Subscription cancelled", order=5) for moment in cancellations
    )
    items.sort(key=lambda item: (item.at, item.order))
    return items


# --- the commission ledger ---------------------------------------------------------------


def commission_list(
    *, partner: Partner, start: date | None = None, end: date | None = None
) -> QuerySet[CommissionEntry]:
    """Ledger entries of the partner, newest first: one row per payment (its commission, 0.00
    for a self-referral) and one per refund (its reversal), with what each row needs joined."""
    return (
        CommissionEntry.objects.filter(_day_bounds(start, end), partner=partner)
        .select_related("payment", "refund", "referral")
        .order_by("-earned_at", "-id")
    )


def ledger_page_keys(entries: QuerySet[CommissionEntry], days: list[tuple]):
    """``SeekPaginator``'s ``keys`` for ``commission_list``: the ids of rows ``bottom``..``top``
    (newest first) read from the day that holds row ``bottom``, found from the ledger's rows per
    day, so a page deep in 100,000 entries skips at most that day's rows, not the whole ledger
    before it. ``entries`` is ``commission_list``'s and ``days`` its days (``ledger_days_in``)."""
    newest_first = [(day, n) for day, *_sums, n in reversed(days) if n > 0]
    tz = zoneinfo.ZoneInfo(settings.TIME_ZONE)  # the zone of LedgerDay's days (commissions_ledger_day)

    def keys(bottom: int, top: int) -> list[int]:
        skipped = 0
        for day, n in newest_first:
            if skipped + n > bottom:
                before = datetime.combine(day + timedelta(days=1), time.min, tzinfo=tz)
                page = entries.filter(earned_at__lt=before).values_list("pk", flat=True)
                return list(page[bottom - skipped : top - skipped])
            skipped += n
        return []

    return keys


# Within this many rows of the oldest end, the Reversed filter walks the ledger's index from that
# end (old commissions are the ones refunds reached); elsewhere, the two halves. Not from the newest
# end: there the walk passes every recent commission no refund reached yet (16,729 rows, 13 ms, for
# the first page on the loadbench account after make bench's event load; the halves: ~5 ms).
_REVERSED_NEAR_END = 200


def reversed_page_keys(entries: QuerySet[CommissionEntry], taken: Q, debits: Q, *, count: int):
    """``SeekPaginator``'s ``keys`` for ``commission_list`` filtered to the reversed state, given
    as its two disjoint halves (``PageStates.reversed_parts``). Deep pages read the halves in one
    statement, each from its own index, merged in the ledger's order: that costs the same on
    every page, where the walk along the ledger's index grows with the page's depth (page 50 of
    4,700 reversed rows on the loadbench account: 51 against 59 ms). Within
    ``_REVERSED_NEAR_END`` rows of the oldest end, None: the paginator's own walk from there."""
    halves = [entries.filter(half).order_by().values_list("earned_at", "id") for half in (taken, debits)]
    merged = halves[0].union(halves[1], all=True)

    def keys(bottom: int, top: int) -> list[int] | None:
        if count - top < _REVERSED_NEAR_END:
            return None
        if bottom > count - top:  # nearer the oldest: the sort keeps fewer rows
            return [pk for _at, pk in merged.order_by("earned_at", "id")[count - top : count - bottom]][::-1]
        return [pk for _at, pk in merged.order_by("-earned_at", "-id")[bottom:top]]

    return keys


@dataclass(frozen=True)
class CommissionTotals:
    payments: Decimal
    refunds: Decimal
    net: Decimal
    commission: Decimal
    rows: int


def ledger_days_in(days: list[tuple], start: date | None, end: date | None) -> list[tuple]:
    """The rows of ``PageStates.ledger_days`` (day, payments, refunds, commission, rows) within
    the program days ``start``..``end``."""
    return [row for row in days if (start is None or row[0] >= start) and (end is None or row[0] <= end)]


def commission_totals_of_days(days: list[tuple]) -> CommissionTotals:
    """The totals of ``ledger_days_in``'s rows: ``commission_totals`` without its query."""
    return _totals(
        {
            "payments": sum((row[1] for row in days), ZERO),
            "refunds": sum((row[2] for row in days), ZERO),
            "commission": sum((row[3] for row in days), ZERO),
            "rows": sum(row[4] for row in days),
        }
    )


def commission_totals(*, partner: Partner, start: date | None = None, end: date | None = None) -> CommissionTotals:
    """Totals of ``commission_list(partner=, start=, end=)`` and its row count, in one query.

    On PostgreSQL from ``LedgerDay`` (the ledger's sums per program day, kept by triggers in the
    same transaction as every entry; a few rows a day instead of every ledger row); elsewhere
    (SQLite: the demo and tests) from the ledger itself. Both give the same numbers."""
    if not ledgerdays.kept():
        return commission_totals_of(commission_list(partner=partner, start=start, end=end))
    zero = Value(ZERO, output_field=_MONEY)
    days = LedgerDay.objects.filter(partner=partner)
    if start is not None:
        days = days.filter(day__gte=start)
    if end is not None:
        days = days.filter(day__lte=end)
    row = days.aggregate(
        payments=Coalesce(Sum("payments"), zero, output_field=_MONEY),
        refunds=Coalesce(Sum("refunds"), zero, output_field=_MONEY),
        commission=Coalesce(Sum("commission"), zero, output_field=_MONEY),
        rows=Coalesce(Sum("entries"), 0),
    )
    return _totals(row)


def commission_totals_of(entries) -> CommissionTotals:
    """Totals of any selection of ledger entries (a state filter's), from the ledger rows."""
    return _totals(_sums(entries))


def commission_totals_in_state(
    entries, *, scanned: tuple[Decimal, Decimal, Decimal, int, Q | None]
) -> CommissionTotals:
    """Totals of a state filter's ``entries`` over all dates: ``scanned`` holds those of the
    entries its scan read (payments, refunds, commission, rows: kept with the state's runs,
    ``PageStates.scanned_totals``) and a filter for its other rows, summed here (if any)."""
    payments, refunds, commission, rows, rest = scanned
    if rest is None:
        row = {"payments": ZERO, "refunds": ZERO, "commission": ZERO, "rows": 0}
    else:
        row = _sums(entries.filter(rest))
    row["payments"] += payments
    row["refunds"] += refunds
    row["commission"] += commission
    row["rows"] += rows
    return _totals(row)


def _sums(entries) -> dict:
    zero = Value(ZERO, output_field=_MONEY)
    return entries.order_by().aggregate(
        payments=Coalesce(
            Sum("payment__amount", filter=Q(kind=CommissionEntry.Kind.COMMISSION)), zero, output_field=_MONEY
        ),
        refunds=Coalesce(
            Sum("refund__amount", filter=Q(kind=CommissionEntry.Kind.REVERSAL)), zero, output_field=_MONEY
        ),
        commission=Coalesce(Sum("amount"), zero, output_field=_MONEY),
        rows=Count("id"),
    )


def _totals(row: dict) -> CommissionTotals:
    payments, refunds = cents(row["payments"]), cents(row["refunds"])
    return CommissionTotals(
        payments=payments,
        refunds=refunds,
        net=payments - refunds,
        commission=cents(row["commission"]),
        rows=int(row["rows"]),
    )


def commission_labels() -> dict[str, str]:
    """Column titles of the commissions table, shared by the page and its CSV."""
    currency = settings.PROGRAM_CURRENCY
    return {
        "date": "Date",
        "type": "Type",
        "referral": "Referral",
        "customer": "Customer",
        "plan": "Plan",
        "seats": "Seats",
        "amount": f"Amount ({currency})",
        "commission": f"Commission ({currency})",
        "state": "State",
    }


# What the Type column says, on the page and in the CSV.
COMMISSION_TYPE_LABELS = {
    CommissionEntry.Kind.COMMISSION: "Payment",
    CommissionEntry.Kind.REVERSAL: "Refund",
    CommissionEntry.Kind.VOID: "Voided by staff",
}


def commission_csv_header() -> list[str]:
    return list(commission_labels().values())


def commission_csv_rows(
    queryset: QuerySet[CommissionEntry],
    *,
    states: Callable[[list[tuple[int, str, Decimal, datetime]]], dict[int, str]] | None = None,
) -> Iterator[list[object]]:
    """CSV rows for ``commission_list``'s queryset, streamed in chunks (constant memory);
    ``states``: each chunk's (id, kind, amount, earned_at) rows -> each entry's lifecycle state
    in words (``commissions.lifecycle.texts_of``), called once per chunk."""
    rows = queryset.values_list(
        "id",
        "earned_at",
        "kind",
        "referral_id",
        "referral__email",
        "payment__plan",
        "payment__seats",
        "payment__amount",
        "refund__amount",
        "amount",
    )
    stream = rows.iterator(chunk_size=_CSV_CHUNK)
    while chunk := list(itertools.islice(stream, _CSV_CHUNK)):
        texts = states([(row[0], row[2], row[9], row[1]) for row in chunk]) if states else {}
        yield from _commission_csv_chunk(chunk, texts)


_CSV_CHUNK = 2000


def _commission_csv_chunk(chunk: list[tuple], states: dict[int, str]) -> Iterator[list[object]]:
    for entry_id, earned_at, kind, referral_id, email, plan, seats, paid, refunded, amount in chunk:
        is_reversal = kind == CommissionEntry.Kind.REVERSAL
        yield [
            format_date(earned_at, for_csv=True),
            COMMISSION_TYPE_LABELS.get(kind, kind),
            referral_id,
            mask_email(email),
            f"Plan {plan}" if plan else "",
            seats,
            format_money(-refunded, for_csv=True) if is_reversal else format_money(paid, for_csv=True),
            format_money(amount, for_csv=True),
            states.get(entry_id, ""),
        ]


# --- promo codes -----------------------------------------------------------------------------


@dataclass
class PromoCodeStats:
    code: PromoCode
    sign_ups: int = 0
    subscriptions: int = 0
    commission: Decimal = ZERO


def promo_code_stats(
    *, partner: Partner, codes: list[PromoCode], start: date | None = None, end: date | None = None
) -> list[PromoCodeStats]:
    """Each of the partner's ``codes`` (a page of them) with the sign-ups it referred, the new
    subscriptions among them (first payment) and the commission they earned, inside the
    program-time-zone days ``start``..``end`` (each one bounded by its own moment; all time when
    unbounded). Three grouped queries, whatever the number of codes."""
    ids = [code.pk for code in codes if code.partner_id == partner.pk]
    mine = Referral.objects.filter(partner=partner, promo_code_id__in=ids)
    sign_ups = dict(
        mine.filter(_day_bounds(start, end, "signed_up_at"))
        .values_list("promo_code_id")
        .annotate(n=Count("pk"))
        .order_by()
    )
    subscriptions = dict(
        mine.filter(_day_bounds(start, end, "first_paid_at"), first_paid_at__isnull=False)
        .values_list("promo_code_id")
        .annotate(n=Count("pk"))
        .order_by()
    )
    commission = dict(
        CommissionEntry.objects.filter(_day_bounds(start, end), partner=partner, referral__promo_code_id__in=ids)
        .values_list("referral__promo_code_id")
        .annotate(total=Sum("amount"))
        .order_by()
    )
    return [
        PromoCodeStats(
            code=code,
            sign_ups=sign_ups.get(code.pk, 0),
            subscriptions=subscriptions.get(code.pk, 0),
            commission=commission.get(code.pk) or ZERO,
        )
        for code in codes
        if code.partner_id == partner.pk
    ]
