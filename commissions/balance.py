"""The balance of docs/reference.md, computed from the ledger and the payouts.

Balance = commission entries older than the hold (reversals count at once, whatever their
age) minus every payout that is pending, approved, processing or paid. It may be negative.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import DecimalField, ExpressionWrapper, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from commissions.models import CommissionEntry
from partners.models import Partner
from payouts.models import Payout

_MONEY = DecimalField(max_digits=12, decimal_places=2)
_ZERO = Value(Decimal("0.00"), output_field=_MONEY)


def _sum_subquery(queryset, field: str = "amount") -> Coalesce:
    summed = queryset.order_by().values("partner").annotate(total=Sum(field)).values("total")
    return Coalesce(Subquery(summed, output_field=_MONEY), _ZERO, output_field=_MONEY)


def _ledger_expressions(now) -> tuple[Coalesce, Coalesce, Coalesce]:
    """(all commission, commission counted in the balance, payouts held) for ``OuterRef("pk")``."""
    cutoff = now - timedelta(days=settings.COMMISSION_HOLD_DAYS)
    entries = CommissionEntry.objects.filter(partner=OuterRef("pk"))
    # Reversals (and staff voids) count at once whatever their age; commissions only once past the hold.
    counted = entries.filter(~Q(kind=CommissionEntry.Kind.COMMISSION) | Q(earned_at__lte=cutoff))
    payouts = Payout.objects.filter(partner=OuterRef("pk"), status__in=Payout.COUNTED_STATUSES)
    return _sum_subquery(entries), _sum_subquery(counted), _sum_subquery(payouts)


def partners_with_balances(partner_ids: Iterable[int] | None = None, *, now=None):
    """Partners annotated with ``ledger_commission`` (all entries) and ``ledger_balance``: one
    set-based query for any number of partners."""
    now = now or timezone.now()
    commission, earned, paid_out = _ledger_expressions(now)
    queryset = Partner.objects.all()
    if partner_ids is not None:
        queryset = queryset.filter(pk__in=list(partner_ids))
    return queryset.annotate(
        ledger_commission=commission,
        ledger_earned=earned,
        ledger_paid_out=paid_out,
    ).annotate(ledger_balance=Coalesce("ledger_earned", _ZERO) - Coalesce("ledger_paid_out", _ZERO))


def partner_balances_refresh(*, partner_ids: Iterable[int] | None = None, now=None) -> int:
    """Write the ledger's commission total and balance onto ``Partner.commission_total`` /
    ``Partner.balance`` (the dashboard's denormalised copy) for the given partners, or for all.

    One UPDATE statement whatever the number of partners (correlated subqueries over the ledger
    and payouts, the same expressions as ``partners_with_balances``). Returns the rows updated."""
    now = now or timezone.now()
    commission, earned, paid_out = _ledger_expressions(now)
    queryset = Partner.objects.all()
    if partner_ids is not None:
        queryset = queryset.filter(pk__in=list(partner_ids))
    return queryset.update(
        commission_total=commission,
        balance=ExpressionWrapper(earned - paid_out, output_field=_MONEY),
        balance_updated_at=now,
    )


def partner_balance(*, partner: Partner, now=None) -> Decimal:
    """The balance of one partner from the ledger (what money decisions must use)."""
    row = partners_with_balances([partner.pk], now=now).values("ledger_balance").get()
    return Decimal(row["ledger_balance"]).quantize(Decimal("0.01"))


def partner_commission_total(*, partner: Partner) -> Decimal:
    row = partners_with_balances([partner.pk]).values("ledger_commission").get()
    return Decimal(row["ledger_commission"]).quantize(Decimal("0.01"))
