"""Signed merchant events for the events API scenario, written just before each wrk run (the
signature's ``t`` must be within 300 s of the server's clock when the request arrives)."""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

PRICES = {"A": 25, "B": 39, "C": 59}
REPLAY_SHARE = 0.10
# A replay repeats one of the last this many events: close enough that some arrive while the
# original is still being handled (the idempotency race), far enough that most do not.
REPLAY_WINDOW = 200


@dataclass(frozen=True)
class EventBatch:
    path: Path
    prefix: str
    ids: list[str]  # the event id of each line, in order (replays repeat an earlier id)
    signups: int
    payments: int
    replays: int

    def unique_ids_sent(self, sent: int) -> int:
        """How many distinct event ids the first ``sent`` requests carried (wrk starts over at
        the end of the file)."""
        return len(set(self.ids[: min(sent, len(self.ids))]))


def _sign(secret: bytes, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def event_body(
    i: int, *, prefix: str, created: str, click_ids: list[str], customer_ids: list[str], rng: random.Random
) -> tuple[str, dict]:
    """The ``i``-th event of the mix: ("signup", a new customer attributed to a recent click) for
    even ``i``, ("payment", a payment of an existing referred customer) for odd ``i``."""
    event_id = f"{prefix}-{i}"
    if i % 2 == 0:
        data = {
            "customer_id": f"cus-{prefix}-{i}",
            "click_id": rng.choice(click_ids),
            "email": f"customer-{prefix}-{i}@example.net",
        }
        return "signup", {"id": event_id, "type": "customer.signed_up", "created": created, "data": data}
    plan, seats = rng.choice("ABC"), rng.choice((1, 1, 2, 3, 5))
    data = {
        "payment_id": f"pay-{prefix}-{i}",
        "customer_id": rng.choice(customer_ids),
        "amount": f"{PRICES[plan] * seats}.00",
        "currency": "USD",
        "plan": plan,
        "seats": seats,
    }
    return "payment", {"id": event_id, "type": "payment.succeeded", "created": created, "data": data}


def write_batch(
    path: Path,
    *,
    count: int,
    prefix: str,
    secret: str,
    click_ids: list[str],
    customer_ids: list[str],
    rng: random.Random,
) -> EventBatch:
    """``count`` requests: half sign-ups (new customers, attributed to recent clicks), half
    payments of existing referred customers, and about 10 % exact replays of an earlier
    request (same id, same body, same signature)."""
    key = secret.encode()
    now = datetime.now(UTC)
    created = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    timestamp = int(time.time())
    lines: list[str] = []
    ids: list[str] = []
    signups = payments = replays = 0
    for i in range(count):
        if i >= 10 and rng.random() < REPLAY_SHARE:
            j = rng.randrange(max(0, i - REPLAY_WINDOW), i)
            lines.append(lines[j])
            ids.append(ids[j])
            replays += 1
            continue
        kind, body = event_body(
            i, prefix=prefix, created=created, click_ids=click_ids, customer_ids=customer_ids, rng=rng
        )
        event_id = body["id"]
        if kind == "signup":
            signups += 1
        else:
            payments += 1
        raw = json.dumps(body, separators=(",", ":")).encode()
        lines.append(f"{_sign(key, timestamp, raw)}\t{raw.decode()}")
        ids.append(event_id)
    path.write_text("\n".join(lines) + "\n")
    return EventBatch(path=path, prefix=prefix, ids=ids, signups=signups, payments=payments, replays=replays)
