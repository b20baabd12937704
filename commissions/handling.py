"""What every merchant event handler shares (commissions/services.py receives the events;
signups.py and payments.py handle them): the errors and answers, the JSON shapes of
docs/reference.md, claiming a unique key, the referral lock, sign-ups waiting for their click,
and the partner balance refresh an event queues."""

from __future__ import annotations

import contextlib
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.core.cache import cache
from django.db import connection
from redis.exceptions import RedisError

from commissions.display import iso_utc
from commissions.models import AwaitingClick, MerchantEvent, Payment, Referral
from commissions.money import money_str
from commissions.selectors import referral_status
from config.errors import PortalError

logger = logging.getLogger(__name__)

Outcome = MerchantEvent.Outcome


class EventRejected(PortalError):
    """An event the rules refuse after validation (e.g. a refund above what is left): 400,
    and the whole transaction — event log row included — is rolled back."""

    code = "invalid_value"


class EventConflict(PortalError):
    """The event id is known with a different body: 409."""

    code = "event_id_conflict"


@dataclass(frozen=True)
class EventResponse:
    status: int
    body: dict[str, Any]


@dataclass(frozen=True)
class AwaitedClick:
    """A sign-up's click that this server issued but that is not in the database yet."""

    id: uuid.UUID


@dataclass(frozen=True)
class _Handled:
    outcome: str
    status: int
    body: dict[str, Any]
    referral: Referral | None = None
    money_moved: bool = False
    awaiting: AwaitingClick | None = None  # held until this sign-up's click lands


# --- JSON shapes (docs/reference.md "Responses"; documented in docs/integration.md) -------------


def referral_json(
    referral: Referral, *, now: datetime | None = None, partner_code: str | None = None
) -> dict[str, Any]:
    """``partner_code``: the partner's referral code when the caller has it (no partner load).
    Reads ``pk``, ``status``, ``trial_days`` and ``trial_ends_at`` only: the one-statement path
    (commissions/fastpath/) passes a namespace with those before the row exists."""
    return {
        "id": referral.pk,
        "partner": partner_code if partner_code is not None else referral.partner.referral_code,
        "status": referral_status(referral, now=now),
        "trial_days": referral.trial_days,
        "trial_ends_at": iso_utc(referral.trial_ends_at),
    }


def payment_json(payment: Payment, *, customer_id: str) -> dict[str, Any]:
    """Reads the fields below only: the one-statement path passes a namespace with them."""
    return {
        "payment_id": payment.payment_id,
        "customer_id": customer_id,
        "referral": payment.referral_id,
        "amount": money_str(payment.amount),
        "currency": payment.currency,
        "plan": payment.plan,
        "seats": payment.seats,
        "paid_at": iso_utc(payment.paid_at),
        "refunded_amount": money_str(payment.refunded_amount),
    }


def _commission_json(amount: Decimal | None) -> dict[str, str] | None:
    return None if amount is None else {"amount": money_str(amount)}


def replay_answer(stored: tuple[str, dict[str, Any]], body_sha256: str) -> EventResponse:
    stored_sha256, response_body = stored
    if stored_sha256 != body_sha256:
        raise EventConflict(
            "An event with this id was already received with a different body. Use a new id for a new event.",
            field="id",
        )
    return EventResponse(status=200, body=response_body)


def _insert_unless_exists(instance: Any, *, unique: str) -> bool:
    """``INSERT … ON CONFLICT (unique) DO NOTHING RETURNING pk`` of an unsaved model instance:
    True (and ``instance.pk`` set) when the row is new, False when a row with the same value of
    the unique column exists. One statement both claims the key and tells whether it was free;
    a concurrent transaction holding the same key makes this wait for its commit (then False)
    or rollback (then True), like a plain INSERT on a unique index. PostgreSQL and SQLite
    (3.35+) both speak it. No ``save()`` signals are sent (none exist for these models)."""
    meta = instance._meta
    fields = [f for f in meta.concrete_fields if not f.primary_key]
    values = [f.get_db_prep_save(f.pre_save(instance, True), connection) for f in fields]
    quote = connection.ops.quote_name
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "
        f"VALUES ({', '.join(['%s'] * len(fields))}) "
        f"ON CONFLICT ({quote(meta.get_field(unique).column)}) DO NOTHING RETURNING {quote(meta.pk.column)}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        row = cursor.fetchone()
    if row is None:
        return False
    instance.pk = row[0]
    instance._state.adding = False
    instance._state.db = connection.alias
    return True


def balance_refresh_key(partner_id: int) -> str:
    """The cache key saying "a balance refresh of this partner is queued and has not started"."""
    return f"commissions:balance-refresh-queued:{partner_id}"


# A lost task (worker killed before it started) blocks new ones for at most this long; the
# hourly recalculation of every partner catches up in any case.
BALANCE_REFRESH_KEY_TTL = 60


def schedule_balance_refresh(partner_id: int) -> None:
    """Queue one balance refresh for the partner unless one is queued and not yet started.

    Runs after the event's commit. The task deletes the key *before* it reads the ledger, so
    when ``add`` finds the key, that queued task has not read yet and will see this commit;
    a burst of money events of one partner costs one task, not one per event."""
    from commissions.tasks import recalculate_partner_balance_task

    key = balance_refresh_key(partner_id)
    try:
        if not cache.add(key, 1, timeout=BALANCE_REFRESH_KEY_TTL):
            return
    except RedisError:
        logger.warning("Balance refresh dedupe key of partner %s unavailable; queueing anyway.", partner_id)
    try:
        # retry=False: with the broker down the event is already committed; the hourly
        # recalculation of every partner catches up, so fail fast rather than stall the response.
        recalculate_partner_balance_task.apply_async(kwargs={"partner_id": partner_id}, retry=False)
    except Exception:
        # Not queued: let the next money event of the partner queue one.
        with contextlib.suppress(RedisError):
            cache.delete(key)
        raise


def _lock_referral(**lookup: Any) -> Referral | None:
    # of=("self",): lock the referral only, not the partner row joined for its code.
    return Referral.objects.select_for_update(of=("self",)).select_related("partner").filter(**lookup).first()


def _waiting_sign_up(*, customer_id: str) -> AwaitingClick | None:
    """The customer's sign-up waiting for its click, locked; None if there is none (or it was
    resolved: a caller that waited here for the resolution then finds the referral)."""
    waiting = AwaitingClick.objects.select_for_update().filter(customer_id=customer_id).first()
    return waiting if waiting is not None and waiting.resolved_at is None else None


def _waiting_sign_up_of_payment(*, payment_id: str) -> AwaitingClick | None:
    """The waiting sign-up whose customer's held payment has this id, locked (a refund of it
    waits too). The held payments are few: those of sign-ups still waiting for their click."""
    held = MerchantEvent.objects.filter(
        type=MerchantEvent.Type.PAYMENT_SUCCEEDED, awaiting__isnull=False, awaiting__resolved_at__isnull=True
    ).values_list("awaiting_id", "body")
    for awaiting_id, body in held:
        if json.loads(body)["data"]["payment_id"] == payment_id:
            waiting = AwaitingClick.objects.select_for_update().get(pk=awaiting_id)
            return waiting if waiting.resolved_at is None else None
    return None


def _held(waiting: AwaitingClick, body: dict[str, Any]) -> _Handled:
    return _Handled(Outcome.AWAITING_CLICK, 201, {**body, "awaiting_click": True}, awaiting=waiting)
