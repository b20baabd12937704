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
