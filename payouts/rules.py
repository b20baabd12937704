"""Can withdraw (docs/reference.md): balance ≥ minimum, no payout pending/approved/processing, and a
PayPal email set. The same rule decides the button on the dashboard and on /payouts/, and is
checked again under the partner lock when a request is made."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings

from commissions.balance import partner_balance
from partners.models import Partner
from partners.terms import terms_outdated
from payouts.models import Payout


@dataclass(frozen=True)
class WithdrawalStatus:
    can_withdraw: bool
    balance: Decimal
    reason_code: str = ""  # "", "no_paypal_email", "in_progress", "below_minimum", "terms_not_accepted"
    reason: str = ""  # shown to the partner when the button is disabled
    missing: Decimal = Decimal("0.00")


def withdrawal_status(
    *, partner: Partner, balance: Decimal | None = None, open_payout: bool | None = None
) -> WithdrawalStatus:
    """Why the partner can or cannot withdraw now. ``balance`` defaults to the ledger balance;
    ``open_payout`` (whether a payout is pending/approved/processing) is looked up unless given."""
    if balance is None:
        balance = partner_balance(partner=partner)
    minimum = settings.PAYOUT_MINIMUM
    currency = settings.PROGRAM_CURRENCY
    if open_payout is None:
        open_payout = Payout.objects.filter(partner=partner, status__in=Payout.OPEN_STATUSES).exists()
    if open_payout:
        return WithdrawalStatus(
            False, balance, "in_progress", "Your previous withdrawal request is still being processed."
        )
    if balance < minimum:
        missing = minimum - balance
        return WithdrawalStatus(
            False,
            balance,
            "below_minimum",
            f"Your balance must reach {minimum} {currency} to withdraw: {missing} {currency} to go.",
            missing,
        )
    if not partner.paypal_email:
        return WithdrawalStatus(False, balance, "no_paypal_email", "Set your PayPal email in Settings to withdraw.")
    # Issue 22: the current program terms must be accepted before any withdrawal.
    terms = terms_outdated(partner)
    if terms is not None:
        return WithdrawalStatus(
            False, balance, "terms_not_accepted", f"Accept version {terms.version} of the program terms to withdraw."
        )
    return WithdrawalStatus(True, balance)
