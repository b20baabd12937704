"""Money helpers. Every amount is a Decimal; rounding happens in ``cents`` and nowhere else."""

from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
ZERO = Decimal("0.00")


def cents(amount: Decimal) -> Decimal:
    """Round half-up to the cent: 9.995 -> 10.00, 0.005 -> 0.01, 0.004 -> 0.00."""
    return Decimal(amount).quantize(CENT, rounding=ROUND_HALF_UP)


def money_str(amount: Decimal | None) -> str:
    """Money in JSON and CSV: a decimal string with exactly two places."""
    return str(cents(amount if amount is not None else ZERO))


def commission_for(amount: Decimal, *, rate: Decimal | None = None) -> Decimal:
    """The commission on a payment of ``amount``: amount × rate (``COMMISSION_RATE`` unless the
    partner's own rate is given, ``commissions.rates``), half-up to the cent.

    The only place a rate is applied; refunds reverse through ``reversal_for``."""
    from django.conf import settings

    return cents(Decimal(amount) * (settings.COMMISSION_RATE if rate is None else rate))


def reversal_for(
    *, refunded: Decimal, commission_left: Decimal, completes_payment: bool, rate: Decimal | None = None
) -> Decimal:
    """The (negative or zero) ledger amount that reverses a refund of ``refunded``.

    ``rate`` is the rate the payment's commission used (not today's). A partial refund reverses
    ``commission_for(refunded, rate=rate)``, capped at what is left of the payment's commission
    (per-refund rounding could otherwise reverse more than was earned). The refund that
    completes the full amount reverses exactly what is left, so a fully refunded payment nets
    to 0.00."""
    left = max(Decimal(commission_left), ZERO)
    if completes_payment:
        return ZERO - cents(left)
    return ZERO - min(commission_for(refunded, rate=rate), left)
