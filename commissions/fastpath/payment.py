"""The fast path of ``payment.succeeded``: one prepared statement (commissions/fastpath/__init__.py)."""

from __future__ import annotations

import json
from decimal import Decimal
from types import SimpleNamespace

from django.conf import settings
from django.db import transaction

from commissions.events import ParsedEvent
from commissions.fastpath.base import (
    _AWAITING,
    _PAYMENT_NOT_REFERRED,
    _TYPES,
    Outcome,
    _execute,
    _json_literal,
    _known,
    _logged,
    _table,
)
from commissions.models import CommissionEntry, MerchantEvent, PartnerRate, Payment, Referral
from commissions.money import ZERO, commission_for, money_str
from commissions.services import (
    EventResponse,
    payment_json,
    schedule_balance_refresh,
)
from config.prepared import PreparedStatement
from tracking.models import DailyLinkStats
from tracking.rollups import program_day

# --- payment.succeeded -------------------------------------------------------------------


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
