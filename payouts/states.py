"""The payout state machine: every status change of a payout happens here, and each one is
written to the audit trail with where it came from.

    requested (pending) ──approve──▶ approved ──▶ sending ──▶ sent ──▶ paid ──▶ returned
          │                                        │  ▲  │      │  └──▶ failed / returned
          └──reject──▶ rejected                     ▼  │  ▼      ▼
                                                 unknown ─▶ needs attention (attention)

* ``sending``: an attempt to hand the payout to PayPal is under way (``attempt_started_at``) or
  scheduled after an answer that proves PayPal did not take it (429, connection refused).
* ``unknown``: an attempt's answer was lost (timeout, 5xx, unreadable, a worker that died).
  ``outcome_unknown`` is set for good: from now on the payout is never failed or given back to
  the balance by the code; it is reconciled (sent again with the same ``sender_batch_id``,
  whose duplicate answer points at the batch PayPal already has) or handed to staff.
* ``attention``: staff must look; ``attention_reason`` says why. The periodic job still
  revisits it (PayPal may answer differently later); staff can check now or mark it failed.
* ``sent``: PayPal has the batch (``paypal_batch_id``); polled until the item is final.
* ``paid``: PayPal says SUCCESS; still watched for a while, because an item can be RETURNED,
  REVERSED, REFUNDED or BLOCKED after it succeeded.
* ``failed`` and ``returned`` give the amount back to the balance (they are not counted by
  ``commissions.balance``), exactly once: a payout reaches either at most once.
"""

from __future__ import annotations

from django.utils import timezone

from partners.models import User
from payouts.models import Payout, PayoutAudit

S = Payout.Status

TRANSITIONS: dict[str, frozenset[str]] = {
    S.PENDING: frozenset({S.APPROVED, S.REJECTED}),
    S.APPROVED: frozenset({S.SENDING}),
    S.SENDING: frozenset({S.SENDING, S.SENT, S.UNKNOWN, S.ATTENTION, S.FAILED}),
    S.UNKNOWN: frozenset({S.SENDING, S.SENT, S.ATTENTION, S.FAILED}),
    S.ATTENTION: frozenset({S.SENDING, S.SENT, S.ATTENTION, S.PAID, S.FAILED, S.RETURNED}),
    S.SENT: frozenset({S.PAID, S.FAILED, S.RETURNED, S.ATTENTION}),
    S.PAID: frozenset({S.RETURNED}),
    S.REJECTED: frozenset(),
    S.FAILED: frozenset(),
    S.RETURNED: frozenset(),
}


class InvalidTransition(Exception):
    """A status change the state machine does not allow (a bug or a race lost: nothing is written)."""


def audit(payout: Payout, action: str, *, actor: User | None = None, **detail) -> PayoutAudit:
    """An audit entry for something that happened without a status change (an attempt, a check)."""
    return PayoutAudit.objects.create(payout=payout, action=action, actor=actor, detail=detail)


def move(payout: Payout, to: str, *, actor: User | None = None, fields: tuple[str, ...] = (), **detail) -> Payout:
    """Move ``payout`` (locked by the caller) to ``to``, save ``status`` with ``fields`` and the
    timestamps that go with the new status, and audit it. Raises ``InvalidTransition``."""
    source = payout.status
    if to not in TRANSITIONS[source]:
        raise InvalidTransition(f"Payout #{payout.pk}: {source} -> {to} is not allowed.")
    now = timezone.now()
    changed = {"status", *fields}
    payout.status = to
    if to == S.FAILED:
        if payout.outcome_unknown and actor is None:
            raise InvalidTransition(f"Payout #{payout.pk}: PayPal may have it; only staff can fail it.")
        payout.outcome_unknown = False
        changed.add("outcome_unknown")
    if to == S.PAID:
        payout.paid_at = now
        changed.add("paid_at")
    if to == S.RETURNED:
        payout.returned_at = now
        changed.add("returned_at")
    if to in (S.PAID, S.RETURNED, S.FAILED, S.SENT):
        payout.attention_reason = ""
        changed.add("attention_reason")
    if to in (S.FAILED, S.RETURNED, S.REJECTED):
        payout.next_action_at = None
        payout.attempt_started_at = None
        changed |= {"next_action_at", "attempt_started_at"}
    payout.save(update_fields=sorted(changed))
    PayoutAudit.objects.create(
        payout=payout, action=to, actor=actor, detail={"from": source, "to": to, **_plain(detail)}
    )
    return payout


def _plain(detail: dict) -> dict:
    """JSON-safe audit detail (Decimals and datetimes as text)."""
    return {
        k: (v if isinstance(v, (str, int, float, bool, dict, list, type(None))) else str(v)) for k, v in detail.items()
    }
