"""PostgreSQL: the two everyday events, each applied by one prepared SQL statement.

Nearly every event the merchant sends is a ``payment.succeeded`` or a ``customer.signed_up``.
The general path (``commissions.services``) applies them with six to nine ORM statements; here
each is one statement of data-modifying CTEs, prepared once per connection (config/prepared.py), which costs a
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
self-referral check of a sign-up is made in SQL the way ``signups.self_referral`` makes it,
where the partner's email is printable ASCII; any other email is left to the general path.

Each statement is its own transaction (no BEGIN/COMMIT round trips). Lock order: the referral
row first (``FOR UPDATE``), then the event id, payment id and rollup row, as their inserts claim
them. A race the statement cannot settle (a concurrent delivery of the same payment id under
another event id, or of the same customer's sign-up) makes it call ``partner_panel_abort``: it
fails, PostgreSQL undoes all of it, and the event takes the general path.

The parts: base.py (running a statement, parameter types, constant answers, the event log row,
a replay's answer), payment.py and signup.py (each event's statement and its Python side).
"""

from __future__ import annotations

from django.conf import settings
from django.db import connection
from django.utils import timezone

from commissions.events import ParsedEvent
from commissions.fastpath.base import _execute
from commissions.fastpath.payment import _PAYMENT, _payment
from commissions.fastpath.signup import _SIGNED_UP, _UNATTRIBUTED, _signed_up
from commissions.models import MerchantEvent
from commissions.services import EventResponse


def applies(parsed: ParsedEvent) -> bool:
    if connection.vendor != "postgresql" or not settings.EVENTS_SQL_FAST_PATH:
        return False
    if parsed.event.type == MerchantEvent.Type.SIGNED_UP:
        # A promo code is looked up, and weighed against the click, by the general path only.
        return not parsed.event.data.promo_code
    return parsed.event.type == MerchantEvent.Type.PAYMENT_SUCCEEDED


def apply(parsed: ParsedEvent) -> EventResponse | None:
    """Apply the event if it is the plain case, or answer it if it is a replay. None: nothing
    was written; the general path answers. Raises ``EventConflict`` for a reused id."""
    now = timezone.now()
    if parsed.event.type == MerchantEvent.Type.PAYMENT_SUCCEEDED:
        return _payment(parsed, now)
    return _signed_up(parsed, now)


# The statements and their runner, as tests and benchmarks name them.
__all__ = ["_PAYMENT", "_SIGNED_UP", "_UNATTRIBUTED", "_execute", "applies", "apply"]
