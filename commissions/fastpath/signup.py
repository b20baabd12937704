"""The fast path of ``customer.signed_up``: one prepared statement, with the click lookup in it
(commissions/fastpath/__init__.py)."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from types import SimpleNamespace

from django.conf import settings

from commissions.events import ParsedEvent
from commissions.fastpath.base import (
    _AWAITING,
    _SIGN_UP_NOT_REFERRED,
    _TYPES,
    Outcome,
    _execute,
    _json_literal,
    _known,
    _logged,
    _table,
)
from commissions.models import MerchantEvent, Referral
from commissions.services import (
    EventResponse,
    fold_email,
    referral_json,
    trial_end,
)
from config.prepared import PreparedStatement
from partners.models import Partner, User
from tracking.clicks import parse_click_id
from tracking.ids import issued_here
from tracking.models import Click, DailyLinkStats, Link
from tracking.rollups import program_day

# --- customer.signed_up ------------------------------------------------------------------

# What ``str.strip()`` removes within ASCII (``signups.fold_email``), for SQL's btrim below.
_ASCII_SPACE = "".join(c for c in map(chr, range(128)) if c.isspace())

# A sign-up naming a click: the click (with its link, partner and the partner's user) looked up,
# the attribution window and the self-referral checked, and the referral made, in one statement.
# The self-referral check is ``commissions.signups.self_referral``: Python passes the sign-up's
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
