"""What every payout service shares: the errors, the permission, the locks (partner, then payout)
and the hooks after a change (notification, the dashboard balance), the backoff and the hand-over
to staff (``attention``).
"""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from config.errors import PortalError
from partners.models import Partner, User
from payouts import states
from payouts.models import Payout

S = Payout.Status

# Backoff between attempts after a lost or refused-for-now answer: 30 s, 60 s, … capped at 1 h.
RETRY_FIRST_SECONDS = 30
RETRY_MAX_SECONDS = 3600

# How often a payout that waits for staff is looked at again by the periodic job.
ATTENTION_RECHECK = timedelta(minutes=15)


class PayoutError(PortalError):
    """A payout action the rules forbid; the message is shown to the partner or to staff."""


class PayoutPermissionError(PayoutError):
    code = "forbidden"


def can_decide_payouts(user: User | None) -> bool:
    """Staff who may approve or reject payouts (the ``payouts.approve_payout`` permission)."""
    return bool(
        user is not None
        and user.is_authenticated
        and user.is_active
        and user.is_staff
        and user.has_perm("payouts.approve_payout")
    )


def _lock(payout_id: int) -> tuple[Partner, Payout]:
    """Lock the payout's partner, then the payout (the fixed order). Caller is in a transaction."""
    partner_id = Payout.objects.values_list("partner_id", flat=True).get(pk=payout_id)
    partner = Partner.objects.select_for_update().get(pk=partner_id)
    payout = Payout.objects.select_for_update().get(pk=payout_id)
    return partner, payout


def _notify(payout_id: int, kind: str) -> None:
    from payouts import tasks

    # robust: with the broker down the payout is committed all the same; a lost email must not
    # turn the partner's (or staff's) answer into a 500.
    transaction.on_commit(lambda: tasks.notify_payout_task.delay(payout_id, kind), robust=True)


def _refresh_dashboard_balance(partner_id: int) -> None:
    """The partner's denormalised balance (dashboard) follows every payout that changes it."""
    from commissions.tasks import recalculate_partner_balance_task

    # robust: the hourly recalculation of every balance catches up if the broker is down.
    transaction.on_commit(lambda: recalculate_partner_balance_task.delay(partner_id), robust=True)


def _backoff(attempt: int) -> float:
    return float(min(RETRY_FIRST_SECONDS * 2 ** max(attempt - 1, 0), RETRY_MAX_SECONDS))


def _attention(payout: Payout, reason: str, *, recheck: bool = True, fields: tuple[str, ...] = (), **detail) -> None:
    """Hand a locked payout to staff with ``reason``; the periodic job looks again unless nothing
    it can do would help (``recheck=False``)."""
    newly = payout.status != S.ATTENTION
    payout.attention_reason = reason[:2000]
    payout.attempt_started_at = None
    payout.next_action_at = timezone.now() + ATTENTION_RECHECK if recheck else None
    states.move(
        payout,
        S.ATTENTION,
        fields=("attention_reason", "attempt_started_at", "next_action_at", "outcome_unknown", *fields),
        reason=payout.attention_reason,
        **detail,
    )
    if newly:
        _notify(payout.pk, "attention")
