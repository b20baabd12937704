"""Everything that writes payouts: the partner's request, staff decisions, sending through the
gateway, reconciling lost answers and settling what PayPal reports. Status changes go through
``payouts.states.move`` (the state machine, audited); this module decides which one.

Locking: a service that changes a payout locks the partner row first, then the payout row
(``_lock``), always in that order, so a request, an approval and a settlement for the same
partner run one after the other and never deadlock. Money decisions read the ledger
(``commissions.balance.partner_balance``) after the partner lock is held.

Every write path is safe to run twice: the status it starts from is checked under the lock, and
anything that talks to PayPal reuses the payout's stable ``sender_batch_id``.

Never paying twice: once any attempt's answer is lost (``outcome_unknown``), the payout is never
failed or returned to the balance by the code. It is reconciled: sent again with the same
``sender_batch_id`` inside PayPal's 30-day window (PayPal answers with the batch it already
has, which is adopted only if it pays this payout's amount, currency and receiver), looked up
when its batch id is known, or handed to staff (``attention``) with the reason.

The services are split by what they do: ``withdrawals`` (the request, staff's decision),
``sending`` (an attempt), ``reconciling`` (polling and settling PayPal's word) and ``staff``
(check now, mark failed); ``common`` holds the errors, the locks and the hooks. Import them from
here: ``from payouts.services import payout_request``.
"""

from payouts.services.common import PayoutError, PayoutPermissionError, can_decide_payouts
from payouts.services.reconciling import payout_poll, payout_reconcile
from payouts.services.sending import SendResult, payout_send, payout_send_gave_up, stale_attempt_after
from payouts.services.staff import payout_check_now, payout_staff_mark_failed
from payouts.services.withdrawals import payout_approve, payout_reject, payout_request

__all__ = [
    "PayoutError",
    "PayoutPermissionError",
    "SendResult",
    "can_decide_payouts",
    "payout_approve",
    "payout_check_now",
    "payout_poll",
    "payout_reconcile",
    "payout_reject",
    "payout_request",
    "payout_send",
    "payout_send_gave_up",
    "payout_staff_mark_failed",
    "stale_attempt_after",
]
