"""PostgreSQL: the two everyday events, each applied by one prepared SQL statement.

Nearly every event the merchant sends is a ``payment.succeeded`` or a ``customer.signed_up``.
The general path (``commissions.services``) applies them with six to nine ORM statements; here
each is one statement of data-modifying CTEs, PREPAREd once per connection, which costs a
fraction of the CPU in Django and in PostgreSQL (BENCHMARKS.md). The statements settle the
common cases: a payment of a referred customer, a payment of a customer who is not a referral
(logged), a sign-up with an attributable click, a sign-up without one (logged; a click id this
server issued that is not in the database yet is left to the general path, which flushes the
click buffer and, if the click is still not there, records the sign-up as waiting for it), and a replay of
an event id stored before (its first answer, or 409 for another body). Anything else — a
customer referred already, a payment id recorded before, an event id the statement saw only
while it ran — makes the statement write nothing, and ``apply`` returns None: the caller runs
the general path, which answers every case. So the rules live in one place; this module repeats
only the inserts and updates of the common cases, and tests/commissions/test_fastpath.py runs
the same history through both paths and compares every answer and row.

Python still decides what the rules decide (the commission, with the one rounding rule of
``commissions.money``; the program day) and builds the answers with the general path's
functions; SQL fills in only what depends on the rows it reads, locks or creates: the referral
id, for a payment whether the answer is a referral's, a self-referral's (its commission set to
0.00) or a stranger's (a constant), and for a sign-up the click it names (looked up in the same
statement, with the attribution window), the link's trial and the partner's code. The
self-referral check of a sign-up is made in SQL the way ``services.self_referral`` makes it,
where the partner's email is printable ASCII; any other email is left to the general path.

Each statement is its own transaction (no BEGIN/COMMIT round trips). Lock order: the referral
row first (``FOR UPDATE``), then the event id, payment id and rollup row, as their inserts claim
them. A race the statement cannot settle (a concurrent delivery of the same payment id under
another event id, or of the same customer's sign-up) makes it call ``partner_panel_abort``: it
fails, PostgreSQL undoes all of it, and the event takes the general path.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from commissions.events import ParsedEvent
from commissions.models import AwaitingClick, CommissionEntry, MerchantEvent, PartnerRate, Payment, Referral
from commissions.money import ZERO, commission_for, money_str
from commissions.services import (
    EventResponse,
    fold_email,
    payment_json,
    referral_json,
    replay_answer,
    schedule_balance_refresh,
    trial_end,
)
from config.prepared import PreparedStatement
from partners.models import Partner, User
from tracking.clicks import parse_click_id
from tracking.ids import issued_here
from tracking.models import Click, DailyLinkStats, Link
from tracking.rollups import program_day

Outcome = MerchantEvent.Outcome


def _execute(statement: PreparedStatement, params: dict[str, Any]) -> tuple | None:
    """Run one event statement as its own transaction (autocommit; a savepoint inside a caller's
    transaction). None: it lost a race it cannot settle and undid itself (``partner_panel_abort``,
    migration commissions 0005): nothing was written, the general path answers."""
    statement.prepare()
    try:
        scope = transaction.atomic() if connection.in_atomic_block else contextlib.nullcontext()
        with scope, connection.cursor() as cursor:
            statement.run(cursor, params)
            return cursor.fetchone()
    except DatabaseError as exc:
        if "partner_panel_abort:" not in str(exc):
            raise
        return None


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def applies(parsed: ParsedEvent) -> bool:
    if connection.vendor != "postgresql" or not settings.EVENTS_SQL_FAST_PATH:
        return False
    if parsed.event.type == MerchantEvent.Type.SIGNED_UP:
        # A promo code is looked up, and weighed against the click, by the general path only.
        return not parsed.event.data.promo_code
    return parsed.event.type == MerchantEvent.Type.PAYMENT_SUCCEEDED


_TYPES = {
    "event_id": "text",
    "body": "text",
    "body_sha256": "text",
    "created": "timestamptz",
    "now": "timestamptz",
    "answer": "text",
    "customer_id": "text",
    "payment_id": "text",
    "plan": "text",
    "seats": "integer",
    "amount": "numeric",
    "currency": "text",
    "commission": "numeric",
    "rate": "numeric",
    "default_rate": "numeric",
    "day": "date",
    "click_id": "uuid",
    "window": "interval",
    "email": "text",
    "email_folded": "text",
    "answers": "text",
}


# --- payment.succeeded -------------------------------------------------------------------


def _json_literal(value: Any) -> str:
    """A constant answer as an SQL literal (JSON text), written into a statement once."""
    return "'" + json.dumps(value).replace("'", "''") + "'"


_PAYMENT_NOT_REFERRED = {"payment": None, "commission": None}
# The customer's sign-up waits for its click (commissions.models.AwaitingClick): the general path
# holds the event (a payment, or another sign-up of the customer) until the click lands.
_AWAITING = f"SELECT 1 FROM {_table(AwaitingClick)} WHERE customer_id = %(customer_id)s AND resolved_at IS NULL"
_SIGN_UP_NOT_REFERRED = {"referral": None}

# The commission is computed in Python (``commission_for``, the one rounding rule) at the rate
# ``%(rate)s``; SQL finds the rate in force for the referral's partner at the payment's time (its
# own ``PartnerRate``, else ``%(default_rate)s``) and writes only if the two agree ("priced"):
# otherwise nothing is written and Python runs the statement again at the partner's rate.
_PAYMENT_SQL = f"""
WITH locked AS (
    SELECT id, partner_id, link_id, is_self_referral, first_paid_at
    FROM {_table(Referral)} WHERE customer_id = %(customer_id)s FOR UPDATE
), r AS (
    SELECT locked.*,
           CASE WHEN is_self_referral THEN 0 ELSE %(commission)s::numeric END AS commission,
           CASE WHEN is_self_referral THEN 0 ELSE COALESCE(own.rate, %(default_rate)s) END AS rate,
           is_self_referral OR COALESCE(own.rate, %(default_rate)s) = %(rate)s AS priced
    FROM locked LEFT JOIN LATERAL (
        SELECT rate FROM {_table(PartnerRate)}
        WHERE partner_id = locked.partner_id AND valid_from <= %(created)s
        ORDER BY valid_from DESC LIMIT 1
    ) AS own ON true
), e AS (
    INSERT INTO {_table(MerchantEvent)} (event_id, type, body, body_sha256, created, received_at, outcome,
                                         response_status, response_body, referral_id)
    SELECT %(event_id)s, '{MerchantEvent.Type.PAYMENT_SUCCEEDED.value}', %(body)s, %(body_sha256)s, %(created)s,
           %(now)s, CASE WHEN r.id IS NULL THEN '{Outcome.NOT_REFERRED.value}' ELSE '{Outcome.APPLIED.value}' END, 201,
           CASE WHEN r.id IS NULL THEN {_json_literal(_PAYMENT_NOT_REFERRED)}::jsonb
                ELSE jsonb_set(CASE WHEN r.is_self_referral
                                    THEN jsonb_set(%(answer)s::jsonb, '{{commission,amount}}',
                                                   {_json_literal(money_str(ZERO))}::jsonb)
                                    ELSE %(answer)s::jsonb END,
                               '{{payment,referral}}', to_jsonb(r.id)) END,
           r.id
    FROM (SELECT 1) AS one LEFT JOIN r ON true
    WHERE NOT EXISTS (SELECT 1 FROM {_table(Payment)} WHERE payment_id = %(payment_id)s)
      -- Not a referral, but its sign-up waits for its click: held by the general path.
      AND (r.id IS NOT NULL OR NOT EXISTS ({_AWAITING}))
      AND (r.id IS NULL OR r.priced)
    ON CONFLICT (event_id) DO NOTHING
    RETURNING id
), p AS (
    INSERT INTO {_table(Payment)} (payment_id, referral_id, partner_id, plan, seats, amount, currency, paid_at,
                                   refunded_amount, event_id)
    SELECT %(payment_id)s, r.id, r.partner_id, %(plan)s, %(seats)s, %(amount)s, %(currency)s, %(created)s, 0, e.id
    FROM r, e
    ON CONFLICT (payment_id) DO NOTHING
    RETURNING id
), c AS (
    INSERT INTO {_table(CommissionEntry)} (partner_id, referral_id, payment_id, refund_id, kind, amount, rate,
                                           earned_at, created_at)
    SELECT r.partner_id, r.id, p.id, NULL, '{CommissionEntry.Kind.COMMISSION.value}', r.commission, r.rate,
           %(created)s, %(now)s
    FROM r, p
), u AS (
    UPDATE {_table(Referral)} AS referral
    SET status = '{Referral.Status.PAYING.value}', first_paid_at = COALESCE(referral.first_paid_at, %(created)s), plan = %(plan)s,
        seats = %(seats)s, total_paid = referral.total_paid + %(amount)s,
        total_commission = referral.total_commission + r.commission
    FROM r, p WHERE referral.id = r.id
), d AS (
    INSERT INTO {_table(DailyLinkStats)} (link_id, partner_id, day, clicks, unique_clicks, new_trials,
                                          new_subscriptions, commission)
    SELECT r.link_id, r.partner_id, %(day)s, 0, 0, 0, CASE WHEN r.first_paid_at IS NULL THEN 1 ELSE 0 END,
           r.commission
    FROM r, p
    WHERE r.first_paid_at IS NULL OR r.commission <> 0
    ON CONFLICT (link_id, day) DO UPDATE
    SET new_subscriptions = {_table(DailyLinkStats)}.new_subscriptions + excluded.new_subscriptions,
        commission = {_table(DailyLinkStats)}.commission + excluded.commission
)
SELECT r.id, r.partner_id, r.is_self_referral, r.rate, (SELECT id FROM e), (SELECT id FROM p), known.body_sha256,
       known.response_body,
       -- The event logged but its payment id claimed meanwhile under another event id: undo.
       CASE WHEN r.id IS NOT NULL AND EXISTS (SELECT 1 FROM e) AND NOT EXISTS (SELECT 1 FROM p)
            THEN partner_panel_abort('payment id claimed concurrently') END
FROM (SELECT 1) AS one LEFT JOIN r ON true
LEFT JOIN {_table(MerchantEvent)} AS known ON known.event_id = %(event_id)s
"""
_PAYMENT = PreparedStatement("payment", _PAYMENT_SQL, _TYPES)


def _payment(parsed: ParsedEvent, now) -> EventResponse | None:
    """The answer, or None when the plain case does not apply."""
    rate = settings.COMMISSION_RATE
    # Priced at the program's rate first; a partner with its own rate in force costs a second
    # run at that rate (and a rate changed between the two, a third; then the general path).
    for _attempt in range(3):
        response = _payment_at(parsed, now, rate)
        if not isinstance(response, Decimal):
            return response
        rate = response
    return None


def _payment_at(parsed: ParsedEvent, now, rate: Decimal) -> EventResponse | Decimal | None:
    """The answer; None when the plain case does not apply; the partner's rate when it is not
    ``rate`` (nothing written)."""
    event, data = parsed.event, parsed.event.data
    commission = commission_for(data.amount, rate=rate)
    # What payment_json reads of a Payment (a model instance costs more than the rest of this).
    payment = SimpleNamespace(
        payment_id=data.payment_id,
        referral_id=0,  # set by the statement (the referral it locks)
        plan=data.plan,
        seats=data.seats,
        amount=data.amount,
        currency=data.currency,
        paid_at=event.created,
        refunded_amount=ZERO,
    )
    answer = {"payment": payment_json(payment, customer_id=data.customer_id), "commission": None}
    answer_earned = {**answer, "commission": {"amount": money_str(commission)}}
    answer_self = {**answer, "commission": {"amount": money_str(ZERO)}}
    params = {
        **_logged(parsed, now),
        "answer": json.dumps(answer_earned),  # the statement makes the self-referral's from it
        "customer_id": data.customer_id,
        "payment_id": data.payment_id,
        "plan": data.plan,
        "seats": data.seats,
        "amount": Decimal(data.amount),
        "currency": data.currency,
        "commission": commission,
        "rate": rate,
        "default_rate": settings.COMMISSION_RATE,
        "day": program_day(event.created),
    }
    row = _execute(_PAYMENT, params)
    if row is None:
        return None
    referral_id, partner_id, is_self, rate_in_force, event_pk, _payment_pk, *known, _ = row
    if event_pk is None:  # a known event id, not a referral, a payment id recorded before, another rate
        replay = _known(known, parsed)
        if replay is None and referral_id is not None and not is_self and rate_in_force != rate:
            return rate_in_force
        return replay
    if referral_id is None:  # not a referral: logged, nothing else
        return EventResponse(status=201, body=dict(_PAYMENT_NOT_REFERRED))
    transaction.on_commit(lambda: schedule_balance_refresh(partner_id), robust=True)
    chosen = answer_self if is_self else answer_earned
    chosen["payment"]["referral"] = referral_id
    return EventResponse(status=201, body=chosen)


# --- customer.signed_up ------------------------------------------------------------------

# What ``str.strip()`` removes within ASCII (``services.fold_email``), for SQL's btrim below.
_ASCII_SPACE = "".join(c for c in map(chr, range(128)) if c.isspace())

# A sign-up naming a click: the click (with its link, partner and the partner's user) looked up,
# the attribution window and the self-referral checked, and the referral made, in one statement.
# The self-referral check is ``commissions.services.self_referral``: Python passes the sign-up's
# email folded (``fold_email``), SQL folds the partner's the same way, which for ASCII is
# ``lower`` and ``btrim`` of Python's whitespace; a partner email beyond printable ASCII is left
# to the general path (``decided`` false). The answer for each trial length is made in Python;
# SQL picks the link's and fills in the referral id and the partner's code.
_SIGNED_UP_SQL = f"""
WITH k AS (
    SELECT c.id AS click_id, l.id AS link_id, l.partner_id, l.trial_days, p.referral_code,
           c.created_at <= %(created)s AND %(created)s <= c.created_at + %(window)s AS in_window,
           (%(email_folded)s IS NULL OR u.email ~ '^[ -~]*$')
               AND %(answers)s::jsonb ? l.trial_days::text AS decided,
           COALESCE(lower(btrim(u.email, E'{_ASCII_SPACE.encode("unicode_escape").decode()}')) = %(email_folded)s, false)
               AS is_self
    FROM {_table(Click)} c
    JOIN {_table(Link)} l ON l.id = c.link_id
    JOIN {_table(Partner)} p ON p.id = l.partner_id
    JOIN {_table(User)} u ON u.id = p.user_id
    WHERE c.id = %(click_id)s
), i AS (
    SELECT k.*, nextval(pg_get_serial_sequence('{Referral._meta.db_table}', 'id')) AS id
    FROM k WHERE k.in_window AND k.decided
), e AS (
    INSERT INTO {_table(MerchantEvent)} (event_id, type, body, body_sha256, created, received_at, outcome,
                                         response_status, response_body, referral_id)
    SELECT %(event_id)s, '{MerchantEvent.Type.SIGNED_UP.value}', %(body)s, %(body_sha256)s, %(created)s, %(now)s,
           '{Outcome.APPLIED.value}', 201,
           jsonb_set(jsonb_set(%(answers)s::jsonb -> i.trial_days::text, '{{referral,id}}', to_jsonb(i.id)),
                     '{{referral,partner}}', to_jsonb(i.referral_code)),
           i.id
    FROM i
    WHERE NOT EXISTS (SELECT 1 FROM {_table(Referral)} WHERE customer_id = %(customer_id)s)
      AND NOT EXISTS ({_AWAITING})
    ON CONFLICT (event_id) DO NOTHING
    RETURNING id
), r AS (
    INSERT INTO {_table(Referral)} (id, partner_id, link_id, click_id, customer_id, email, is_self_referral, status,
                                    signed_up_at, trial_days, trial_ends_at, first_paid_at, cancelled_at, plan,
                                    seats, total_paid, total_commission)
    SELECT i.id, i.partner_id, i.link_id, i.click_id, %(customer_id)s, %(email)s, i.is_self,
           '{Referral.Status.TRIAL.value}', %(created)s, i.trial_days,
           %(created)s + make_interval(hours => 24 * i.trial_days), NULL, NULL, '', NULL, 0, 0
    FROM i, e
    ON CONFLICT (customer_id) DO NOTHING
    RETURNING id
), d AS (
    INSERT INTO {_table(DailyLinkStats)} (link_id, partner_id, day, clicks, unique_clicks, new_trials,
                                          new_subscriptions, commission)
    SELECT i.link_id, i.partner_id, %(day)s, 0, 0, 1, 0, 0 FROM i, r
    ON CONFLICT (link_id, day) DO UPDATE SET new_trials = {_table(DailyLinkStats)}.new_trials + 1
)
SELECT k.click_id IS NOT NULL, COALESCE(k.in_window, false), k.trial_days, k.referral_code, (SELECT id FROM i),
       (SELECT id FROM e), known.body_sha256, known.response_body,
       -- The event logged but the customer referred meanwhile by a concurrent sign-up: undo.
       CASE WHEN EXISTS (SELECT 1 FROM e) AND NOT EXISTS (SELECT 1 FROM r)
            THEN partner_panel_abort('customer referred concurrently') END
FROM (SELECT 1) AS one LEFT JOIN k ON true
LEFT JOIN {_table(MerchantEvent)} AS known ON known.event_id = %(event_id)s
"""
_SIGNED_UP = PreparedStatement("signed_up", _SIGNED_UP_SQL, _TYPES)

# A sign-up with no attributable click: logged (unless the customer is a referral already).
_UNATTRIBUTED_SQL = f"""
WITH e AS (
    INSERT INTO {_table(MerchantEvent)} (event_id, type, body, body_sha256, created, received_at, outcome,
                                         response_status, response_body, referral_id)
    SELECT %(event_id)s, '{MerchantEvent.Type.SIGNED_UP.value}', %(body)s, %(body_sha256)s, %(created)s, %(now)s,
           '{Outcome.NOT_REFERRED.value}', 201, {_json_literal(_SIGN_UP_NOT_REFERRED)}::jsonb, NULL
    WHERE NOT EXISTS (SELECT 1 FROM {_table(Referral)} WHERE customer_id = %(customer_id)s)
      AND NOT EXISTS ({_AWAITING})
    ON CONFLICT (event_id) DO NOTHING
    RETURNING id
)
SELECT (SELECT id FROM e), known.body_sha256, known.response_body
FROM (SELECT 1) AS one LEFT JOIN {_table(MerchantEvent)} AS known ON known.event_id = %(event_id)s
"""
_UNATTRIBUTED = PreparedStatement("unattributed", _UNATTRIBUTED_SQL, _TYPES)


def _unattributed(parsed: ParsedEvent, now) -> EventResponse | None:
    event = parsed.event
    params = {
        **_logged(parsed, now),
        "customer_id": event.data.customer_id,
    }
    event_pk, *known = _execute(_UNATTRIBUTED, params)
    if event_pk is None:  # a known event id, a customer referred before, or one waiting for a click
        return _known(known, parsed)
    return EventResponse(status=201, body=dict(_SIGN_UP_NOT_REFERRED))


_CLICK_NOT_FOUND = object()


def _signed_up_with_click(parsed: ParsedEvent, click_id: uuid.UUID, now) -> EventResponse | object | None:
    """The answer; None when the general path decides; ``_CLICK_NOT_FOUND`` when no click has
    this id (yet: it may be waiting in the click buffer)."""
    event, data = parsed.event, parsed.event.data
    email = data.email or ""
    answers = {}
    for trial_days in settings.TRIAL_LENGTHS:
        ends = trial_end(signed_up_at=event.created, trial_days=trial_days)
        if ends is None:
            # A trial ending after the year 9999: no answer for this length, so the statement
            # leaves such a sign-up undecided and the general path refuses it.
            continue
        # What referral_json reads of a Referral; the id and the partner's code come from SQL.
        referral = SimpleNamespace(pk=0, status=Referral.Status.TRIAL, trial_days=trial_days, trial_ends_at=ends)
        answers[str(trial_days)] = {"referral": referral_json(referral, now=now, partner_code="")}
    params = {
        **_logged(parsed, now),
        "answers": json.dumps(answers),
        "customer_id": data.customer_id,
        "click_id": click_id,
        "window": timedelta(days=settings.ATTRIBUTION_WINDOW_DAYS),
        "email": email,
        # self_referral(): no email, no self-referral.
        "email_folded": fold_email(email) if email else None,
        "day": program_day(event.created),
    }
    row = _execute(_SIGNED_UP, params)
    if row is None:
        return None
    found, in_window, trial_days, referral_code, referral_id, event_pk, *known, _ = row
    if event_pk is None:
        replay = _known(known, parsed)
        if replay is not None or in_window:
            return replay  # a replay; or (None) a customer referred before, or a case SQL left
        if not found:
            return _CLICK_NOT_FOUND
        return _unattributed(parsed, now)  # the click is outside the attribution window
    answer = answers[str(trial_days)]
    answer["referral"]["id"] = referral_id
    answer["referral"]["partner"] = referral_code
    return EventResponse(status=201, body=answer)


def _signed_up(parsed: ParsedEvent, now) -> EventResponse | None:
    click_id = parse_click_id(parsed.event.data.click_id)
    if click_id is None:
        return _unattributed(parsed, now)
    response = _signed_up_with_click(parsed, click_id, now)
    if response is _CLICK_NOT_FOUND:
        if issued_here(click_id):
            # A click this server issued, not in the database yet (buffered): the general path
            # flushes the buffer, looks again, and otherwise records the sign-up as waiting.
            return None
        return _unattributed(parsed, now)
    return response


def _logged(parsed: ParsedEvent, now) -> dict[str, Any]:
    """The event log row's own columns, the same in every statement."""
    event = parsed.event
    return {
        "event_id": event.id,
        "body": parsed.text,
        "body_sha256": parsed.body_sha256,
        "created": event.created,
        "now": now,
    }


def _known(known: list[Any], parsed: ParsedEvent) -> EventResponse | None:
    """A replay (200 with the stored answer) or a reused id (``EventConflict``) when the event
    id was stored before this statement began; otherwise None (the general path decides)."""
    body_sha256, response_body = known
    if body_sha256 is None:
        return None
    if isinstance(response_body, str):
        response_body = json.loads(response_body)
    return replay_answer((body_sha256, response_body), parsed.body_sha256)


def apply(parsed: ParsedEvent) -> EventResponse | None:
    """Apply the event if it is the plain case, or answer it if it is a replay. None: nothing
    was written; the general path answers. Raises ``EventConflict`` for a reused id."""
    now = timezone.now()
    if parsed.event.type == MerchantEvent.Type.PAYMENT_SUCCEEDED:
        return _payment(parsed, now)
    return _signed_up(parsed, now)
