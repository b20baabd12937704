"""Everything that writes referrals, payments, refunds and the commission ledger.

Incoming merchant events follow one path (``event_receive``): the raw event is stored first,
unique on the merchant's id, inside the same transaction that applies it, together with the
response it got; a replay finds the row and answers as before. Rows are locked in one fixed
order — referral, then payment, then the daily rollup row — so concurrent events cannot
deadlock.

Where the parts live: this module receives events (and re-applies the ones held for a click);
the handlers are in signups.py (``customer.signed_up``) and payments.py (payments, refunds,
cancellations); what they share (errors, answers, JSON shapes, the referral lock, the balance
refresh) in handling.py. The names other modules import are re-exported here (``__all__``).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from commissions.events import EventBodyError, ParsedEvent, parse_event
from commissions.handling import (
    BALANCE_REFRESH_KEY_TTL,
    AwaitedClick,
    EventConflict,
    EventRejected,
    EventResponse,
    Outcome,
    _Handled,
    _insert_unless_exists,
    balance_refresh_key,
    payment_json,
    referral_json,
    replay_answer,
    schedule_balance_refresh,
)
from commissions.models import AwaitingClick, MerchantEvent, Referral
from commissions.payments import (
    _payment_refunded,
    _payment_succeeded,
    _subscription_cancelled,
)
from commissions.signups import (
    _attributable_click,
    _signed_up,
    fold_email,
    in_window,
    self_referral,
    trial_end,
)
from tracking.clicks import click_stored
from tracking.models import Click

logger = logging.getLogger(__name__)

# How often a delivery that hit an IntegrityError is re-run. The event id, customer id and
# payment id are claimed with INSERT … ON CONFLICT DO NOTHING (a lost race waits for the
# winner and answers as a replay/duplicate without an error), so this is the last resort for
# a unique key some later change forgets to claim that way.
_ATTEMPTS = 3


# --- receiving an event ------------------------------------------------------------------


def event_receive(*, parsed: ParsedEvent) -> EventResponse:
    """Apply one validated, signed event exactly once.

    A replay of a known event id with the same body answers 200 with the stored response;
    with another body ``EventConflict``. A refused event raises ``EventRejected`` having
    written nothing. Concurrent deliveries of one event make one set of rows: the loser of
    the race on the unique event id waits on the index for the winner's commit, then finds
    its row and answers as a replay."""
    from commissions import fastpath  # it builds on this module

    event_id = parsed.event.id
    one_statement = fastpath.applies(parsed)
    for attempt in range(1, _ATTEMPTS + 1):
        if one_statement:
            # PostgreSQL, the plain case of the two everyday events: one statement.
            response = fastpath.apply(parsed)
            if response is not None:
                return response
        # Resolved before the transaction: the lookup may flush the click buffer, which
        # commits clicks on its own and should not hold the event's locks meanwhile.
        click = _attributable_click(parsed.event) if parsed.event.type == MerchantEvent.Type.SIGNED_UP else None
        try:
            return _event_apply(parsed, click=click)
        except IntegrityError:
            # Every unique key of the path is claimed with ON CONFLICT; this is the last line.
            if attempt == _ATTEMPTS:
                raise
            logger.info("event %s lost a race on a unique key; re-running as a replay (attempt %d)", event_id, attempt)
    raise AssertionError("unreachable")  # pragma: no cover


@transaction.atomic
def _event_apply(parsed: ParsedEvent, *, click: Click | None) -> EventResponse:
    event = parsed.event
    record = MerchantEvent(
        event_id=event.id,
        type=event.type,
        body=parsed.text,
        body_sha256=parsed.body_sha256,
        created=event.created,
        outcome=Outcome.APPLIED,
        response_status=201,
        response_body={},
    )
    # Stored first, and the idempotency check in the same statement: a concurrent delivery of
    # the same id blocks here on the unique index until the first one commits.
    if not _insert_unless_exists(record, unique="event_id"):
        stored = MerchantEvent.objects.filter(event_id=event.id).values_list("body_sha256", "response_body").get()
        return replay_answer(stored, parsed.body_sha256)
    handled = _HANDLERS[event.type](event, record, click)
    _record_handled(record, handled)
    return EventResponse(status=handled.status, body=handled.body)


def _record_handled(record: MerchantEvent, handled: _Handled) -> None:
    """Store what an event did on its log row (the answer a replay gets); caller holds a transaction."""
    fields: dict[str, Any] = {
        "outcome": handled.outcome,
        "response_status": handled.status,
        "response_body": handled.body,
        "referral": handled.referral,
    }
    if handled.awaiting is not None:
        fields["awaiting"] = handled.awaiting
    MerchantEvent.objects.filter(pk=record.pk).update(**fields)
    if handled.money_moved and handled.referral is not None:
        partner_id = handled.referral.partner_id
        transaction.on_commit(lambda: schedule_balance_refresh(partner_id), robust=True)


def awaiting_clicks_resolve(*, click_ids: Sequence[uuid.UUID] | None = None) -> int:
    """Resolve the sign-ups waiting for these clicks (None: every one whose click is stored now):
    each becomes the referral it would have been had its click been in the database, and the
    customer's events that came meanwhile are applied in order. Returns how many were resolved.
    Idempotent; each sign-up is resolved in its own transaction, under the lock of its row."""
    waiting = AwaitingClick.objects.filter(resolved_at__isnull=True)
    if click_ids is not None:
        if not waiting.exists():  # the common case after a flushed batch: one index probe
            return 0
        waiting = waiting.filter(click_id__in=list(click_ids))
    else:
        waiting = waiting.filter(click_id__in=Click.objects.values("pk"))
    return sum(_awaiting_click_resolve(pk=pk) for pk in list(waiting.values_list("pk", flat=True)))


@transaction.atomic
def _awaiting_click_resolve(*, pk: int) -> bool:
    waiting = AwaitingClick.objects.select_for_update().filter(pk=pk, resolved_at__isnull=True).first()
    if waiting is None:
        return False
    click = click_stored(waiting.click_id)
    if click is None:
        return False
    waiting.resolved_at = timezone.now()
    waiting.save(update_fields=["resolved_at"])
    record = MerchantEvent.objects.get(pk=waiting.event_id)
    event = _stored_event(record)
    if event is not None and not in_window(clicked_at=click.created_at, signed_up_at=event.created):
        click = None
    _apply_stored(record, event, click)
    for held in MerchantEvent.objects.filter(awaiting=waiting).order_by("received_at", "pk"):
        _apply_stored(held, _stored_event(held), None)
    return True


def _stored_event(record: MerchantEvent) -> Any | None:
    try:
        return parse_event(record.body.encode()).event
    except EventBodyError:  # valid when it came; the rules have changed since (another currency, say)
        return None


def _apply_stored(record: MerchantEvent, event: Any | None, click: Click | None) -> None:
    """Apply a logged event now (a held one, or the waiting sign-up itself) and store its new
    answer; one the rules refuse now (a refund above what is left, say) keeps its answer,
    without the waiting mark."""
    if event is not None:
        try:
            with transaction.atomic():
                handled = _HANDLERS[event.type](event, record, click)
        except EventRejected as exc:
            logger.warning("Held event %s refused when its click landed: %s", record.event_id, exc)
        else:
            _record_handled(record, handled)
            return
    body = {key: value for key, value in record.response_body.items() if key != "awaiting_click"}
    _record_handled(record, _Handled(Outcome.NOT_REFERRED, record.response_status, body))


# Each handler gets the validated event, its stored log row, and (sign-ups) the attributable click.
_HANDLERS: dict[str, Callable[[Any, MerchantEvent, Any], _Handled]] = {
    MerchantEvent.Type.SIGNED_UP: _signed_up,
    MerchantEvent.Type.PAYMENT_SUCCEEDED: _payment_succeeded,
    MerchantEvent.Type.PAYMENT_REFUNDED: _payment_refunded,
    MerchantEvent.Type.SUBSCRIPTION_CANCELLED: _subscription_cancelled,
}


# --- trials and balances -----------------------------------------------------------------


def referrals_expire_trials(*, now: datetime | None = None) -> int:
    """Mark trials that ended with no payment as ``expired`` (reads never wait for this).
    Returns how many were marked. Set-based; a payment that raced in wins because it moves
    the referral out of ``trial`` first."""
    now = now or timezone.now()
    return Referral.objects.filter(status=Referral.Status.TRIAL, trial_ends_at__lte=now).update(
        status=Referral.Status.EXPIRED
    )


def partner_balances_recalculate(*, partner_ids: list[int] | None = None, now: datetime | None = None) -> int:
    """Refresh the dashboard's denormalised ``commission_total`` and ``balance`` from the
    ledger (one UPDATE for any number of partners). Money decisions never read these."""
    from commissions.balance import partner_balances_refresh

    return partner_balances_refresh(partner_ids=partner_ids, now=now)


# What other modules import from here (the handlers moved to handling.py, signups.py, payments.py).
__all__ = [
    "BALANCE_REFRESH_KEY_TTL",
    "AwaitedClick",
    "EventConflict",
    "EventRejected",
    "EventResponse",
    "awaiting_clicks_resolve",
    "balance_refresh_key",
    "event_receive",
    "fold_email",
    "in_window",
    "partner_balances_recalculate",
    "payment_json",
    "referral_json",
    "referrals_expire_trials",
    "replay_answer",
    "schedule_balance_refresh",
    "self_referral",
    "trial_end",
]
