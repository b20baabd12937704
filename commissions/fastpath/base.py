"""What the fast path's statements share: running one as its own transaction, the parameter
types, the constant answers, the event log row's columns and a replay's answer
(commissions/fastpath/__init__.py says what the fast path is)."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from django.db import DatabaseError, connection, transaction

from commissions.events import ParsedEvent
from commissions.models import AwaitingClick, MerchantEvent
from commissions.services import (
    EventResponse,
    replay_answer,
)
from config.prepared import PreparedStatement

Outcome = MerchantEvent.Outcome


def _execute(statement: PreparedStatement, params: dict[str, Any]) -> tuple | None:
    """Run one event statement as its own transaction (autocommit; a savepoint inside a caller's
    transaction). None: it lost a race it cannot settle and undid itself (``partner_panel_abort``,
    migration commissions 0005): nothing was written, the general path answers."""
    try:
        scope = transaction.atomic() if connection.in_atomic_block else contextlib.nullcontext()
        with scope, statement.cursor() as cursor:
            statement.run(cursor, params)
            return cursor.fetchone()
    except DatabaseError as exc:
        if "partner_panel_abort:" not in str(exc):
            raise
        return None


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


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


def _json_literal(value: Any) -> str:
    """A constant answer as an SQL literal (JSON text), written into a statement once."""
    return "'" + json.dumps(value).replace("'", "''") + "'"


_PAYMENT_NOT_REFERRED = {"payment": None, "commission": None}
# The customer's sign-up waits for its click (commissions.models.AwaitingClick): the general path
# holds the event (a payment, or another sign-up of the customer) until the click lands.
_AWAITING = f"SELECT 1 FROM {_table(AwaitingClick)} WHERE customer_id = %(customer_id)s AND resolved_at IS NULL"
_SIGN_UP_NOT_REFERRED = {"referral": None}


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
