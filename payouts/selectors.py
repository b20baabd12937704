"""Reads of payouts for the partner's pages and exports."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.db.models import DecimalField, Exists, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from commissions import ledgerdays
from commissions.display import format_date, format_money
from commissions.models import CommissionEntry, LedgerDay
from commissions.money import ZERO, cents
from partners.models import Partner
from payouts.models import Payout
from payouts.rules import WithdrawalStatus, withdrawal_status

_MONEY = DecimalField(max_digits=14, decimal_places=2)

# The payouts page's column titles (its "PayPal batch / transaction" split in two).
CSV_HEADER = (
    "Requested",
    "Amount",
    "Currency",
    "PayPal email",
    "Status",
    "Paid",
    "PayPal batch",
    "PayPal transaction",
    "Note",
)


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def payout_list(*, partner: Partner, start: date | None = None, end: date | None = None) -> QuerySet[Payout]:
    """The partner's own payouts, newest first; ``start``/``end`` (inclusive days in the program's
    time zone) filter on the request date."""
    payouts = Payout.objects.filter(partner=partner).order_by("-requested_at", "-id")
    if start:
        payouts = payouts.filter(requested_at__gte=_day_start(start))
    if end:
        payouts = payouts.filter(requested_at__lt=_day_start(end + timedelta(days=1)))
    return payouts


def _summed(queryset, field: str) -> Coalesce:
    total = queryset.order_by().values("partner").annotate(total=Sum(field)).values("total")
    return Coalesce(Subquery(total, output_field=_MONEY), Value(ZERO, output_field=_MONEY), output_field=_MONEY)


def payout_page_withdrawal(*, partner: Partner) -> WithdrawalStatus:
    """The withdrawal button of /payouts/: ``withdrawal_status`` with the ledger balance read in
    one statement that does not grow with the ledger (PostgreSQL): every entry's sum from the
    ledger's day rows (``LedgerDay``, kept by triggers with each entry), less commissions still in
    the hold (the newest entries only) and the payouts holding money. Elsewhere the balance is
    summed from the ledger. A request recomputes it from the ledger under the partner lock."""
    if not ledgerdays.kept():
        return withdrawal_status(partner=partner)
    mine = {"partner_id": partner.pk}
    cutoff = timezone.now() - timedelta(days=settings.COMMISSION_HOLD_DAYS)
    row = (
        Partner.objects.filter(pk=partner.pk)
        .values(
            commission=_summed(LedgerDay.objects.filter(**mine), "commission"),
            held=_summed(
                CommissionEntry.objects.filter(**mine, kind=CommissionEntry.Kind.COMMISSION, earned_at__gt=cutoff),
                "amount",
            ),
            paid_out=_summed(Payout.objects.filter(**mine, status__in=Payout.COUNTED_STATUSES), "amount"),
            open_payout=Exists(Payout.objects.filter(**mine, status__in=Payout.OPEN_STATUSES)),
        )
        .get()
    )
    balance = cents(row["commission"] - row["held"] - row["paid_out"])
    return withdrawal_status(partner=partner, balance=balance, open_payout=row["open_payout"])


def partner_note(payout: Payout) -> str:
    """What the partner reads beside the status."""
    if payout.status == Payout.Status.REJECTED:
        return payout.rejection_reason
    if payout.status == Payout.Status.FAILED:
        reason = payout.failure_reason or "PayPal could not pay it."
        return f"{reason} The amount is back in your balance."
    if payout.status == Payout.Status.RETURNED:
        reason = payout.failure_reason or "PayPal returned it."
        return f"{reason} The amount is back in your balance."
    if payout.unclaimed:
        return f"Sent to {payout.paypal_email}: log in to PayPal with that address to claim it within 30 days."
    return ""


def _iso(value: datetime | None) -> str:
    return format_date(value, for_csv=True)


def payout_csv_rows(*, partner: Partner, start: date | None = None, end: date | None = None) -> Iterator[list]:
    """CSV rows, streamed from a server-side cursor so any number of rows keeps constant memory."""
    payouts = payout_list(partner=partner, start=start, end=end).only(
        "requested_at",
        "amount",
        "currency",
        "paypal_email",
        "status",
        "paid_at",
        "paypal_batch_id",
        "paypal_transaction_id",
        "rejection_reason",
        "failure_reason",
    )
    for payout in payouts.iterator(chunk_size=2000):
        yield [
            _iso(payout.requested_at),
            format_money(payout.amount, for_csv=True),
            payout.currency,
            payout.paypal_email,
            payout.partner_status,
            _iso(payout.paid_at),
            payout.paypal_batch_id,
            payout.paypal_transaction_id,
            partner_note(payout),
        ]
