"""Everything that writes referrals, payments, refunds and the commission ledger.

Incoming merchant events follow one path (``event_receive``): the raw event is stored first,
unique on the merchant's id, inside the same transaction that applies it, together with the
response it got; a replay finds the row and answers as before. Rows are locked in one fixed
order — referral, then payment, then the daily rollup row — so concurrent events cannot
deadlock.
"""

from __future__ import annotations

import contextlib
import json
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, connection, transaction
from django.db.models import Max, Q, Sum
from django.utils import timezone
from redis.exceptions import RedisError

from commissions.display import iso_utc
from commissions.events import EventBodyError, ParsedEvent, parse_event
from commissions.models import AwaitingClick, CommissionEntry, MerchantEvent, Payment, Referral, Refund
from commissions.money import ZERO, commission_for, money_str, reversal_for
from commissions.rates import rate_in_force
from commissions.selectors import referral_status
from config.errors import PortalError
from tracking.clicks import click_for_attribution, click_stored, parse_click_id
from tracking.ids import issued_at, issued_here
from tracking.models import Click, Link, PromoCode
from tracking.rollups import program_day, rollup_add

logger = logging.getLogger(__name__)

Outcome = MerchantEvent.Outcome
# How often a delivery that hit an IntegrityError is re-run. The event id, customer id and
# payment id are claimed with INSERT … ON CONFLICT DO NOTHING (a lost race waits for the
# winner and answers as a replay/duplicate without an error), so this is the last resort for
# a unique key some later change forgets to claim that way.
_ATTEMPTS = 3


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
    (commissions/fastpath.py) passes a namespace with those before the row exists."""
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


# --- customer.signed_up ------------------------------------------------------------------


def _attributable_click(event: Any) -> Click | AwaitedClick | None:
    """The click named by a sign-up, if the sign-up falls within its attribution window
    (``click.created_at <= created <= click.created_at + ATTRIBUTION_WINDOW_DAYS``); an
    ``AwaitedClick`` when the id is one this server issued, made within the window before the
    sign-up, that is not in the database even after a flush (a backlog, or another flusher
    holding the buffer): the sign-up then waits for it."""
    click_id, created = event.data.click_id, event.created
    if not click_id:
        return None
    # A mangled cookie value is an unattributed sign-up (None), not a bad request.
    click = click_for_attribution(click_id)
    if click is None:
        parsed = parse_click_id(click_id)
        if parsed is not None and issued_here(parsed) and in_window(clicked_at=issued_at(parsed), signed_up_at=created):
            return AwaitedClick(parsed)
        return None
    if not in_window(clicked_at=click.created_at, signed_up_at=created):
        return None
    return click


def in_window(*, clicked_at: datetime, signed_up_at: datetime) -> bool:
    """The attribution window: ``clicked_at <= signed_up_at <= clicked_at + ATTRIBUTION_WINDOW_DAYS``,
    written as a difference so that no date near the year 1 or 9999 overflows."""
    return clicked_at <= signed_up_at and signed_up_at - clicked_at <= timedelta(days=settings.ATTRIBUTION_WINDOW_DAYS)


def trial_end(*, signed_up_at: datetime, trial_days: int) -> datetime | None:
    """When a trial starting at ``signed_up_at`` ends; None when that is after the year 9999."""
    try:
        return signed_up_at + timedelta(days=trial_days)
    except OverflowError:
        return None


def _trial_end_or_refuse(*, signed_up_at: datetime, trial_days: int) -> datetime:
    ends = trial_end(signed_up_at=signed_up_at, trial_days=trial_days)
    if ends is None:
        raise EventRejected(
            f"A {trial_days}-day trial starting at this date would end after the year 9999.",
            code="invalid_datetime",
            field="created",
        )
    return ends


def _existing_referral(customer_id: str) -> _Handled | None:
    existing = Referral.objects.select_related("partner").filter(customer_id=customer_id).first()
    if existing is None:
        return None
    # Referred at most once: the first partner keeps the customer.
    return _Handled(Outcome.DUPLICATE, 200, {"referral": referral_json(existing)}, existing)


def fold_email(email: str) -> str:
    """An email address as the self-referral check compares it: stripped and case-folded."""
    return email.strip().casefold()


def self_referral(email: str, partner_email: str) -> bool:
    """A sign-up with the partner's own email address (docs/reference.md: kept, earns nothing)."""
    return bool(email) and fold_email(email) == fold_email(partner_email)


_AWAITING_SIGN_UP = {"referral": None, "awaiting_click": True}


def _signed_up(event: Any, record: MerchantEvent, click: Click | AwaitedClick | None) -> _Handled:
    data = event.data
    if _waiting_sign_up(customer_id=data.customer_id) is not None:
        # The customer's first sign-up waits for its click: it keeps the customer.
        return _Handled(Outcome.DUPLICATE, 200, dict(_AWAITING_SIGN_UP))
    if isinstance(click, AwaitedClick):
        return _existing_referral(data.customer_id) or _await_click(event, record, click)
    promo = None
    if click is None:
        promo = _promo_code_attribution(data.promo_code)
        if promo is None:
            return _existing_referral(data.customer_id) or _Handled(Outcome.NOT_REFERRED, 201, {"referral": None})
        promo_code, link = promo
        trial_days = promo_code.trial_days
    else:
        # A click inside the window wins over any promo code (docs/reference.md, `customer.signed_up`).
        link = click.link  # with its partner and the partner's user (click_for_attribution)
        trial_days = link.trial_days
    partner_code, partner_email = link.partner.referral_code, link.partner.user.email
    email = data.email or ""
    referral = Referral(
        partner_id=link.partner_id,
        link=link,
        click=click,
        promo_code=promo[0] if promo is not None else None,
        customer_id=data.customer_id,
        email=email,
        is_self_referral=self_referral(email, partner_email),
        status=Referral.Status.TRIAL,
        signed_up_at=event.created,
        trial_days=trial_days,
        trial_ends_at=_trial_end_or_refuse(signed_up_at=event.created, trial_days=trial_days),
    )
    # The unique customer id decides "referred at most once", concurrent sign-ups included.
    if not _insert_unless_exists(referral, unique="customer_id"):
        existing = _existing_referral(data.customer_id)
        if existing is None:  # the conflicting row was rolled back meanwhile: run the event again
            raise IntegrityError(f"referral of customer {data.customer_id} vanished")
        return existing
    rollup_add(link_id=referral.link_id, partner_id=referral.partner_id, day=program_day(event.created), new_trials=1)
    return _Handled(Outcome.APPLIED, 201, {"referral": referral_json(referral, partner_code=partner_code)}, referral)


def _promo_code_attribution(code: str | None) -> tuple[PromoCode, Link] | None:
    """The active promo code spelled ``code`` (any case) of an active, approved partner (a pending
    or declined application's codes refer nobody, as its links count nothing), with the partner's
    default link (the referral's link, so the link rollups count its trial); None otherwise."""
    code = (code or "").strip()
    if not code:
        return None
    promo = (
        PromoCode.objects.select_related("partner__user")
        .filter(code__iexact=code, is_active=True, partner__user__is_active=True, partner__status="approved")
        .first()
    )
    if promo is None:
        return None
    link = Link.objects.filter(partner_id=promo.partner_id, is_default=True).first()
    if link is None:
        return None
    link.partner = promo.partner
    return promo, link


def _await_click(event: Any, record: MerchantEvent, click: AwaitedClick) -> _Handled:
    waiting = AwaitingClick(click_id=click.id, customer_id=event.data.customer_id, event=record)
    if not _insert_unless_exists(waiting, unique="customer_id"):
        return _Handled(Outcome.DUPLICATE, 200, dict(_AWAITING_SIGN_UP))
    # Looked for again after the commit: a flusher that stored the click after this sign-up
    # looked, and checked for waiting sign-ups before this one committed, found none.
    click_id = click.id
    transaction.on_commit(lambda: awaiting_clicks_resolve(click_ids=[click_id]), robust=True)
    return _Handled(Outcome.AWAITING_CLICK, 201, dict(_AWAITING_SIGN_UP))


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


# --- payment.succeeded -------------------------------------------------------------------


def _payment_commission(payment: Payment) -> Decimal | None:
    total = CommissionEntry.objects.filter(payment=payment, kind=CommissionEntry.Kind.COMMISSION).aggregate(
        total=Sum("amount")
    )["total"]
    return total


def _known_payment(payment_id: str) -> _Handled | None:
    known = Payment.objects.select_related("referral").filter(payment_id=payment_id).first()
    if known is None:
        return None
    body = {
        "payment": payment_json(known, customer_id=known.referral.customer_id),
        "commission": _commission_json(_payment_commission(known)),
    }
    return _Handled(Outcome.DUPLICATE, 200, body, known.referral)


_PAYMENT_REFERRAL_FIELDS = (
    "partner_id",
    "link_id",
    "customer_id",
    "is_self_referral",
    "status",
    "first_paid_at",
    "plan",
    "seats",
    "total_paid",
    "total_commission",
)


def _payment_succeeded(event: Any, record: MerchantEvent, click: Click | None) -> _Handled:
    data = event.data
    # The columns a payment reads and writes, without the partner join of ``_lock_referral``.
    locked = Referral.objects.select_for_update().only(*_PAYMENT_REFERRAL_FIELDS).filter(customer_id=data.customer_id)
    referral = next(iter(locked.order_by()[:1]), None)
    if referral is None:
        known = _known_payment(data.payment_id)
        if known is not None:
            return known
        waiting = _waiting_sign_up(customer_id=data.customer_id)
        if waiting is not None:
            return _held(waiting, {"payment": None, "commission": None})
        # Its sign-up may have been resolved while this waited for its lock.
        referral = next(iter(locked.order_by()[:1]), None)
    if referral is None:
        return _Handled(Outcome.NOT_REFERRED, 201, {"payment": None, "commission": None})
    payment = Payment(
        payment_id=data.payment_id,
        referral=referral,
        partner_id=referral.partner_id,
        plan=data.plan,
        seats=data.seats,
        amount=data.amount,
        currency=data.currency,
        paid_at=event.created,
        event=record,
    )
    # A payment earns once (its unique id decides, concurrent deliveries included): a new
    # event id for a known payment changes nothing.
    if not _insert_unless_exists(payment, unique="payment_id"):
        known = _known_payment(data.payment_id)
        if known is None:  # the conflicting row was rolled back meanwhile: run the event again
            raise IntegrityError(f"payment {data.payment_id} vanished")
        return known
    # A self-referral is recorded but earns nothing: its ledger entry is 0.00, so every
    # payment has exactly one commission entry and every refund one reversal.
    rate = ZERO if referral.is_self_referral else rate_in_force(partner_id=referral.partner_id, at=event.created)
    commission = commission_for(data.amount, rate=rate)
    CommissionEntry.objects.create(
        partner_id=referral.partner_id,
        referral=referral,
        payment=payment,
        kind=CommissionEntry.Kind.COMMISSION,
        amount=commission,
        rate=rate,
        earned_at=event.created,
    )
    new_subscription = referral.first_paid_at is None
    if new_subscription:
        referral.first_paid_at = event.created
    # Paying again after a cancellation or an ended trial; plan and seats are "now".
    referral.status = Referral.Status.PAYING
    referral.plan = data.plan
    referral.seats = data.seats
    referral.total_paid += data.amount
    referral.total_commission += commission
    referral.save(update_fields=["status", "first_paid_at", "plan", "seats", "total_paid", "total_commission"])
    rollup_add(
        link_id=referral.link_id,
        partner_id=referral.partner_id,
        day=program_day(event.created),
        new_subscriptions=1 if new_subscription else 0,
        commission=commission,
    )
    body = {
        "payment": payment_json(payment, customer_id=referral.customer_id),
        "commission": _commission_json(commission),
    }
    return _Handled(Outcome.APPLIED, 201, body, referral, money_moved=True)


# --- payment.refunded --------------------------------------------------------------------


def _payment_refunded(event: Any, record: MerchantEvent, click: Click | None) -> _Handled:
    data = event.data
    found = Payment.objects.filter(payment_id=data.payment_id).values_list("referral_id", flat=True).first()
    if found is None:
        waiting = _waiting_sign_up_of_payment(payment_id=data.payment_id)
        if waiting is not None:
            return _held(waiting, {"refund": None, "commission": None})
        found = Payment.objects.filter(payment_id=data.payment_id).values_list("referral_id", flat=True).first()
    if found is None:
        return _Handled(Outcome.NOT_REFERRED, 201, {"refund": None, "commission": None})
    referral = _lock_referral(pk=found)
    payment = Payment.objects.select_for_update().get(payment_id=data.payment_id)
    remaining = payment.amount - payment.refunded_amount
    if data.amount > remaining:
        raise EventRejected(
            f"The refund ({money_str(data.amount)}) is more than what is left of payment "
            f"{payment.payment_id} ({money_str(remaining)}).",
            code="refund_exceeds_payment",
            field="data.amount",
        )
    ledger = CommissionEntry.objects.filter(payment=payment).aggregate(
        total=Sum("amount"), rate=Max("rate", filter=Q(kind=CommissionEntry.Kind.COMMISSION))
    )
    # Reversed at the rate the payment's commission used, not the partner's rate today.
    paid_rate = ledger["rate"]
    reversal = reversal_for(
        refunded=data.amount,
        commission_left=ledger["total"] or ZERO,
        completes_payment=data.amount == remaining,
        rate=paid_rate,
    )
    refund = Refund.objects.create(payment=payment, amount=data.amount, refunded_at=event.created, event=record)
    CommissionEntry.objects.create(
        partner_id=referral.partner_id,
        referral=referral,
        payment=payment,
        refund=refund,
        kind=CommissionEntry.Kind.REVERSAL,
        amount=reversal,
        rate=paid_rate,
        earned_at=event.created,
    )
    payment.refunded_amount += data.amount
    payment.save(update_fields=["refunded_amount"])
    referral.total_paid -= data.amount
    referral.total_commission += reversal
    referral.save(update_fields=["total_paid", "total_commission"])
    rollup_add(
        link_id=referral.link_id, partner_id=referral.partner_id, day=program_day(event.created), commission=reversal
    )
    body = {
        "refund": {
            "payment_id": payment.payment_id,
            "amount": money_str(refund.amount),
            "refunded_at": iso_utc(refund.refunded_at),
            "payment_refunded_amount": money_str(payment.refunded_amount),
            "payment_remaining_amount": money_str(payment.amount - payment.refunded_amount),
        },
        "commission": _commission_json(reversal),
    }
    return _Handled(Outcome.APPLIED, 201, body, referral, money_moved=True)


# --- subscription.cancelled --------------------------------------------------------------


def _subscription_cancelled(event: Any, record: MerchantEvent, click: Click | None) -> _Handled:
    referral = _lock_referral(customer_id=event.data.customer_id)
    if referral is None:
        waiting = _waiting_sign_up(customer_id=event.data.customer_id)
        if waiting is not None:
            return _held(waiting, {"referral": None})
        referral = _lock_referral(customer_id=event.data.customer_id)
    if referral is None:
        return _Handled(Outcome.NOT_REFERRED, 201, {"referral": None})
    if referral.status == Referral.Status.CANCELLED:
        return _Handled(Outcome.DUPLICATE, 200, {"referral": referral_json(referral)}, referral)
    referral.status = Referral.Status.CANCELLED
    referral.cancelled_at = event.created
    referral.save(update_fields=["status", "cancelled_at"])
    return _Handled(Outcome.APPLIED, 201, {"referral": referral_json(referral)}, referral)


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
