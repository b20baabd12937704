"""Click ids: UUID version 7 (RFC 9562), time-ordered, and signed by this server.

The first 48 bits are the Unix time in milliseconds. A new click's id sorts after the ids of
older clicks, so the clicks table's primary-key index is appended to at its right edge instead
of being written all over (with random version-4 ids every insert touches a random leaf page:
at hundreds of millions of clicks, a random read per insert once the index no longer fits in
memory). Of the 74 bits RFC 9562 leaves free, 42 are random (from the OS's generator) and 32
are a keyed MAC (``config.keyed``, purpose ``click-id``) of the rest of the id.

The MAC lets a sign-up tell, before the click is in the database, that a click id is one this
server handed out — and so was recorded (straight into the database, or into a spool file or
the Redis stream that has not been flushed yet) — and when the click was made: such a sign-up
waits for its click (commissions ``AwaitingClick``) instead of being stored as not referred. A
made-up or mangled id fails the MAC and is answered at once. Forging one that passes takes 2^32
tries against the events API's signature-checked merchant, and would still name no click. The
id reveals when the click was made, which the visitor who holds it knows anyway. Changing
SECRET_KEY makes ids issued before it unrecognisable as issued (they are still looked up in the
database as before).
"""

from __future__ import annotations

import hmac
import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from functools import cache

from django.conf import settings

from config.keyed import keyed_hmac

_VERSION_7 = 0x7 << 76
_VARIANT_RFC = 0b10 << 62
_VERSION_VARIANT_MASK = (0xF << 76) | (0b11 << 62)
_MAC_MASK = (1 << 32) - 1
_PURPOSE = "click-id"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@cache
def _keyed(secret: str) -> hmac.HMAC:
    return keyed_hmac(_PURPOSE, "")  # keyed with ``secret`` (SECRET_KEY); copied for each id


def _mac(unsigned: int) -> int:
    # A copy of the keyed HMAC with nothing hashed yet: a third of the cost of a new one.
    mac = _keyed(settings.SECRET_KEY).copy()
    mac.update(unsigned.to_bytes(16))
    return int.from_bytes(mac.digest()[:4])


def new_click_id() -> uuid.UUID:
    random_bits = int.from_bytes(os.urandom(6)) >> 6  # 42 bits
    rand_a = random_bits >> 30  # 12 bits
    rand_b_high = random_bits & ((1 << 30) - 1)  # 30 bits, above the 32-bit MAC
    unsigned = (time.time_ns() // 1_000_000) << 80 | _VERSION_7 | rand_a << 64 | _VARIANT_RFC | rand_b_high << 32
    return uuid.UUID(int=unsigned | _mac(unsigned))


def issued_here(click_id: uuid.UUID) -> bool:
    """Whether this server made the id (a version 7 UUID with a valid MAC)."""
    value = click_id.int
    if value & _VERSION_VARIANT_MASK != _VERSION_7 | _VARIANT_RFC:
        return False
    return _mac(value & ~_MAC_MASK) == value & _MAC_MASK


def issued_at(click_id: uuid.UUID) -> datetime:
    """When the click was made, to the millisecond (the id's first 48 bits)."""
    return _EPOCH + timedelta(milliseconds=click_id.int >> 80)
