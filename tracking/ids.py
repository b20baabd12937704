"""Click ids: UUID version 7 (RFC 9562), time-ordered.

The first 48 bits are the Unix time in milliseconds, the rest random (74 bits). A new click's id
sorts after the ids of older clicks, so the clicks table's primary-key index is appended to at
its right edge instead of being written all over (with random version-4 ids every insert
touches a random leaf page: at hundreds of millions of clicks, a random read per insert once
the index no longer fits in memory). The id still names one click and cannot be guessed: the
random part is 74 bits from the OS's generator. It reveals when the click was made, which the
visitor who holds it knows anyway.
"""

from __future__ import annotations

import os
import time
import uuid

_VERSION_7 = 0x7 << 76
_VARIANT_RFC = 0b10 << 62
_RAND_B = (1 << 62) - 1


def new_click_id() -> uuid.UUID:
    random_bits = int.from_bytes(os.urandom(10))
    rand_a = (random_bits >> 62) & 0xFFF
    value = (time.time_ns() // 1_000_000) << 80 | _VERSION_7 | rand_a << 64 | _VARIANT_RFC | (random_bits & _RAND_B)
    return uuid.UUID(int=value)
