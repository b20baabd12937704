"""A fake PayPal Payouts API for tests and for ``make demo``: a small threaded HTTP server
(standard library only) speaking the real API's JSON shapes, so the real paypalrestsdk client
can be driven against it over HTTP.

Endpoints (shapes from PayPal's Payouts API reference, payments.payouts-batch v1):

* ``POST /v1/oauth2/token`` — client-credentials token (Basic auth).
* ``POST /v1/payments/payouts`` and ``/v1/payments/payouts/`` — create a batch: ``201`` with
  ``batch_header`` (``payout_batch_id``, ``batch_status`` ``PENDING``, ``sender_batch_header``)
  and ``links``. The body is validated as PayPal does (``VALIDATION_ERROR`` with
  ``details[].field/issue``): items present, ``receiver`` at most 127 characters, amounts as
  decimal strings, whole amounts for zero-decimal currencies (HUF, JPY, TWD). A
  ``sender_batch_id`` used in the last 30 days is refused as PayPal does: ``400``
  ``USER_BUSINESS_ERROR`` with a ``SENDER_BATCH_ID`` detail whose wording is
  ``duplicate_issue`` (PayPal's varies) linking to the original batch; an older one is accepted
  and makes a second batch, as PayPal would. A ``PayPal-Request-Id`` seen in the last 30 days
  replays the first answer (``honour_request_id``).
* ``GET /v1/payments/payouts/<payout_batch_id>`` — the batch with its ``items``
  (``payout_item_id``, ``transaction_id``, ``transaction_status``, ``payout_item``, ``errors``).
  Anything longer (e.g. the ``/<id>/<id>`` that ``paypalrestsdk.Payout.find`` asks for) is a 404.
* ``POST /v1/payments/payouts-item/<payout_item_id>/cancel`` — cancel an UNCLAIMED item.

Scriptable behaviours, consumed one per request of a kind (``create``, ``get``, ``cancel``,
``token``); with ``forever=True`` the last one repeats:

* ``"ok"`` — normal answer; a created batch settles to SUCCESS ``settle_after`` seconds later.
* ``"deny"`` / ``"deny:<STATUS>"`` — the batch is accepted but its item ends UNCLAIMED (or
  FAILED, RETURNED, BLOCKED, …) with PayPal's error.
* ``"500"`` — ``500 INTERNAL_SERVER_ERROR``; nothing is created.
* ``"timeout"`` — the batch is recorded, then the answer waits ``hang_seconds`` (longer than the
  client's timeout): the request went through but the client never hears about it.
* ``"garbage"`` — the batch is recorded, then the body is not JSON.
* ``"401"`` — ``401 invalid_token`` (``invalid_client`` at the token endpoint).
* ``"400"`` — ``400 VALIDATION_ERROR``; ``"422"`` — ``422 INSUFFICIENT_FUNDS``; ``"404"``.
* ``"429"`` — ``429 RATE_LIMIT_REACHED`` with ``Retry-After: <retry_after>``; nothing is created.
* ``"hold"`` — the batch is accepted and stays PENDING until ``settle`` is called.

After settling, items change as PayPal's do: ``set_item_status`` (e.g. SUCCESS then REVERSED,
REFUNDED or BLOCKED; ONHOLD; PENDING), ``cancel_batch`` (CANCELED), and an UNCLAIMED item is
RETURNED once 30 days have passed on the fake's clock (``advance(days=…)``).

In tests::

    fake = FakePayPal()
    base_url = fake.start()        # http://127.0.0.1:<free port>
    fake.script(create=["500", "ok"])
    ...
    assert len(fake.batches) == 1
    fake.stop()

For the demo: ``python manage.py fake_paypal --port 8765``.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

DEFAULT_CLIENT_ID = "fake-client-id"
DEFAULT_CLIENT_SECRET = "fake-client-secret"

_ID_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
_INFO_LINK = "https://developer.paypal.com/docs/api/payments.payouts-batch/#errors"
# PayPal keeps sender_batch_ids and PayPal-Request-Ids for 30 days.
DUPLICATE_WINDOW_SECONDS = 30 * 86400
UNCLAIMED_RETURN_SECONDS = 30 * 86400
_AMOUNT = re.compile(r"^((-?[0-9]+)|(-?([0-9]+)?[.][0-9]+))$")
_ZERO_DECIMAL = frozenset({"HUF", "JPY", "TWD"})
_BATCH_PATH = re.compile(r"^/v1/payments/payouts/([A-Za-z0-9]+)$")
_CANCEL_PATH = re.compile(r"^/v1/payments/payouts-item/([A-Za-z0-9]+)/cancel$")

# The item error PayPal reports for each failed item status.
_ITEM_ERRORS = {
    "UNCLAIMED": ("RECEIVER_UNREGISTERED", "Receiver is unregistered"),
    "FAILED": ("RECEIVER_ACCOUNT_INVALID", "Receiver's account is invalid"),
    "RETURNED": ("RECEIVER_UNREGISTERED", "Receiver is unregistered; the payment was returned"),
    "BLOCKED": ("REGULATORY_BLOCKED", "This transaction is blocked due to regulatory compliance restrictions"),
    "REFUNDED": ("REFUNDED", "The payment was refunded"),
    "REVERSED": ("REVERSED", "The payment was reversed"),
    "DENIED": ("RISK_DECLINE", "The payment was declined by risk checks"),
}


def _new_id(length: int = 13) -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(length))


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class FakeBatch:
    """One batch as the fake keeps it; ``as_json`` renders the GET answer."""

    batch_id: str
    sender_batch_header: dict
    items: list[dict]
    final_item_status: str  # what the item becomes once settled
    created_monotonic: float
    time_created: str
    created_at: float = 0.0  # on the fake's clock (``FakePayPal.now``)
    settled: bool = False
    held: bool = False  # "hold": settles only when told
    canceled: bool = False
    time_completed: str = ""
    settled_at: float = 0.0
    item_overrides: dict = field(default_factory=dict)

    @property
    def sender_batch_id(self) -> str:
        return str(self.sender_batch_header.get("sender_batch_id", ""))


class FakePayPal:
    def __init__(
        self,
        *,
        client_id: str | None = DEFAULT_CLIENT_ID,
        client_secret: str | None = DEFAULT_CLIENT_SECRET,
        settle_after: float = 0.0,
        hang_seconds: float = 3.0,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        """``client_id=None`` accepts any credentials (the demo, where none are configured)."""
        self.client_id = client_id
        self.client_secret = client_secret
        self.settle_after = settle_after
        self.hang_seconds = hang_seconds
        self.host = host
        self.port = port
        self.batches: dict[str, FakeBatch] = {}
        self.requests: list[tuple[str, str, int]] = []  # (method, path, status answered)
        self.tokens: set[str] = set()
        self.denied_receivers: set[str] = set()
        self.denied_status = "UNCLAIMED"
        # PayPal's duplicate-batch answer links to the original batch; tests can drop the link.
        self.duplicate_answer_links = True
        # PayPal's wording of that answer varies; only its field (SENDER_BATCH_ID) is stable.
        self.duplicate_issue = "Batch with given sender_batch_id already exists"
        self.honour_request_id = True
        self.retry_after = "1"
        self.clock_offset = 0.0
        self.request_ids: dict[str, tuple[float, int, object]] = {}
        self._scripts: dict[str, deque[str]] = {}
        self._forever: dict[str, str] = {}
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- control ----------------------------------------------------------------------------------
    def start(self) -> str:
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = ThreadingHTTPServer((self.host, self.port), handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-paypal", daemon=True)
        self._thread.start()
        return self.base_url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def script(self, *, forever: bool = False, **behaviours: list[str] | tuple[str, ...]) -> None:
        """Queue behaviours per kind of request: ``create``, ``get``, ``cancel``, ``token``."""
        with self._lock:
            for kind, items in behaviours.items():
                if kind not in {"create", "get", "cancel", "token"}:
                    raise ValueError(f"Unknown request kind {kind!r}")
                self._scripts.setdefault(kind, deque()).extend(items)
                if forever and items:
                    self._forever[kind] = items[-1]

    def deny_receivers(self, receivers: set[str], status: str = "UNCLAIMED") -> None:
        """Payouts to these receivers end with ``status`` (UNCLAIMED: an address with no PayPal
        account; FAILED: one PayPal refuses), whatever the script says."""
        with self._lock:
            self.denied_receivers |= {r.lower() for r in receivers}
            self.denied_status = status

    def reset_script(self) -> None:
        with self._lock:
            self._scripts.clear()
            self._forever.clear()

    def batches_for(self, sender_batch_id: str) -> list[FakeBatch]:
        with self._lock:
            return [b for b in self.batches.values() if b.sender_batch_id == sender_batch_id]

    def count(self, method: str, path_prefix: str) -> int:
        with self._lock:
            return sum(1 for m, p, _ in self.requests if m == method and p.startswith(path_prefix))

    def settle(self, batch_id: str) -> None:
        """Settle a batch now, whatever ``settle_after`` says."""
        with self._lock:
            self._settle(self.batches[batch_id], force=True)

    def now(self) -> float:
        """The fake's wall clock (seconds), which tests move on with ``advance``."""
        return time.time() + self.clock_offset

    def advance(self, *, days: float = 0, seconds: float = 0) -> None:
        with self._lock:
            self.clock_offset += days * 86400 + seconds

    def set_item_status(self, batch_id: str, status: str) -> None:
        """Change the items of a settled (or not) batch, as PayPal does after the fact: REVERSED,
        REFUNDED, RETURNED or BLOCKED after SUCCESS, ONHOLD, PENDING…"""
        with self._lock:
            batch = self.batches[batch_id]
            self._settle(batch, force=True)
            batch.final_item_status = status
            for item in batch.items:
                self._item_outcome(item, status, batch.time_completed)

    def cancel_batch(self, batch_id: str) -> None:
        with self._lock:
            batch = self.batches[batch_id]
            batch.canceled = True
            batch.settled = True
            for item in batch.items:
                if item["transaction_status"] in ("PENDING", "UNCLAIMED", "ONHOLD"):
                    self._item_outcome(item, "FAILED", _now_iso())

    # -- behaviour ----------------------------------------------------------------------------------
    def _next(self, kind: str) -> str:
        with self._lock:
            queue = self._scripts.get(kind)
            if queue:
                return queue.popleft()
            return self._forever.get(kind, "ok")

    def _settle(self, batch: FakeBatch, *, force: bool = False) -> None:
        if batch.settled:
            # Unclaimed money goes back to the sender after 30 days.
            if self.now() - batch.settled_at >= UNCLAIMED_RETURN_SECONDS:
                for item in batch.items:
                    if item["transaction_status"] == "UNCLAIMED":
                        self._item_outcome(item, "RETURNED", _now_iso())
            return
        if not force and (batch.held or time.monotonic() - batch.created_monotonic < self.settle_after):
            return
        batch.settled = True
        batch.settled_at = self.now()
        batch.time_completed = _now_iso()
        for item in batch.items:
            self._item_outcome(item, batch.final_item_status, batch.time_completed)

    @staticmethod
    def _item_outcome(item: dict, status: str, when: str) -> None:
        item["transaction_status"] = status
        item["time_processed"] = when
        if status in ("SUCCESS", "UNCLAIMED", "RETURNED", "REFUNDED", "REVERSED") and not item.get("transaction_id"):
            item["transaction_id"] = _new_id(17)
        if status in ("SUCCESS", "PENDING", "ONHOLD"):
            item.pop("errors", None)
        else:
            name, message = _ITEM_ERRORS.get(status, ("UNKNOWN_ERROR", "The item could not be paid"))
            item["errors"] = {"name": name, "message": message, "information_link": _INFO_LINK, "details": []}

    def _batch_json(self, batch: FakeBatch) -> dict:
        self._settle(batch)
        if batch.canceled:
            batch_status = "CANCELED"
        elif batch.settled:
            batch_status = "DENIED" if batch.final_item_status in ("FAILED", "DENIED") else "SUCCESS"
        else:
            batch_status = "PROCESSING"
        total = sum(Decimal(str(item["payout_item"]["amount"]["value"])) for item in batch.items)
        currency = batch.items[0]["payout_item"]["amount"]["currency"] if batch.items else "USD"
        header = {
            "payout_batch_id": batch.batch_id,
            "batch_status": batch_status,
            "time_created": batch.time_created,
            "sender_batch_header": batch.sender_batch_header,
            "amount": {"currency": currency, "value": str(total)},
            "fees": {"currency": currency, "value": "0" if currency in _ZERO_DECIMAL else "0.00"},
        }
        if batch.settled:
            header["time_completed"] = batch.time_completed
            header["time_closed"] = batch.time_completed
        return {
            "batch_header": header,
            "items": [dict(item) for item in batch.items],
            "links": [self._link(f"/v1/payments/payouts/{batch.batch_id}", "self")],
        }

    def _link(self, path: str, rel: str, method: str = "GET") -> dict:
        return {"href": f"{self.base_url}{path}", "rel": rel, "method": method, "encType": "application/json"}

    def _create(self, body: dict, behaviour: str) -> tuple[int, object]:
        problem = _invalid(body)
        if problem:
            return 400, _validation_error(*problem)
        header, items = body["sender_batch_header"], body["items"]
        sender_batch_id = str(header.get("sender_batch_id") or "")
        with self._lock:
            now = self.now()
            existing = [
                b
                for b in (self.batches_for(sender_batch_id) if sender_batch_id else [])
                if now - b.created_at < DUPLICATE_WINDOW_SECONDS
            ]
            if existing:
                return 400, {
                    "name": "USER_BUSINESS_ERROR",
                    "message": "User business error.",
                    "debug_id": _new_id(13).lower(),
                    "information_link": _INFO_LINK,
                    "details": [
                        {
                            "field": "SENDER_BATCH_ID",
                            "location": "body",
                            "issue": self.duplicate_issue,
                            "link": [self._link(f"/v1/payments/payouts/{existing[0].batch_id}", "self")]
                            if self.duplicate_answer_links
                            else [],
                        }
                    ],
                    "links": [],
                }
            final = "SUCCESS"
            receivers = {str((raw or {}).get("receiver", "")).lower() for raw in items if isinstance(raw, dict)}
            if receivers & self.denied_receivers:
                final = self.denied_status
            if behaviour.startswith("deny"):
                final = behaviour.split(":", 1)[1].upper() if ":" in behaviour else "UNCLAIMED"
            batch_id = _new_id()
            batch = FakeBatch(
                batch_id=batch_id,
                sender_batch_header={k: v for k, v in header.items() if k != "recipient_type"},
                items=[],
                final_item_status=final,
                created_monotonic=time.monotonic(),
                time_created=_now_iso(),
                created_at=now,
                held=behaviour == "hold",
            )
            for raw in items:
                raw = raw if isinstance(raw, dict) else {}
                batch.items.append(
                    {
                        "payout_item_id": _new_id(),
                        "transaction_status": "PENDING",
                        "payout_item_fee": {
                            "currency": (raw.get("amount") or {}).get("currency", "USD"),
                            "value": "0.00",
                        },
                        "payout_batch_id": batch_id,
                        "payout_item": {
                            "recipient_type": raw.get("recipient_type") or header.get("recipient_type") or "EMAIL",
                            "amount": raw.get("amount") or {},
                            "note": raw.get("note", ""),
                            "receiver": raw.get("receiver", ""),
                            "sender_item_id": raw.get("sender_item_id", ""),
                            "recipient_wallet": "PAYPAL",
                        },
                        "links": [],
                    }
                )
            self.batches[batch_id] = batch
        return 201, {
            "batch_header": {
                "payout_batch_id": batch_id,
                "batch_status": "PENDING",
                "sender_batch_header": batch.sender_batch_header,
            },
            "links": [self._link(f"/v1/payments/payouts/{batch_id}", "self")],
        }

    def _cancel(self, item_id: str) -> tuple[int, object]:
        with self._lock:
            for batch in self.batches.values():
                self._settle(batch)
                for item in batch.items:
                    if item["payout_item_id"] != item_id:
                        continue
                    if item["transaction_status"] != "UNCLAIMED":
                        return 400, {
                            "name": "ITEM_INCORRECT_STATUS",
                            "message": "Items can be cancelled only if they are in UNCLAIMED status.",
                            "debug_id": _new_id(13).lower(),
                        }
                    item["transaction_status"] = "RETURNED"
                    return 200, dict(item)
        return 404, _not_found()


def _invalid(body: object) -> tuple[str, str] | None:
    """(field, issue) of the first thing PayPal's schema refuses in a create-batch body."""
    if not isinstance(body, dict) or not isinstance(body.get("sender_batch_header"), dict):
        return "sender_batch_header", "MISSING_REQUIRED_PARAMETER"
    items = body.get("items")
    if not isinstance(items, list) or not 1 <= len(items) <= 15000:
        return "items", "Items must contain between 1 and 15000 payout items"
    if len(str(body["sender_batch_header"].get("sender_batch_id") or "")) > 256:
        return "sender_batch_header.sender_batch_id", "Value is too long (maximum length 256)"
    for n, item in enumerate(items):
        if not isinstance(item, dict):
            return f"items[{n}]", "MALFORMED_REQUEST_JSON"
        receiver = item.get("receiver")
        if not isinstance(receiver, str) or not receiver:
            return f"items[{n}].receiver", "MISSING_REQUIRED_PARAMETER"
        if len(receiver) > 127:
            return f"items[{n}].receiver", "Value is too long (maximum length 127)"
        amount = item.get("amount")
        if not isinstance(amount, dict):
            return f"items[{n}].amount", "MISSING_REQUIRED_PARAMETER"
        value, currency = str(amount.get("value") or ""), str(amount.get("currency") or "")
        if not re.fullmatch(r"[A-Z]{3}", currency):
            return f"items[{n}].amount.currency", "Currency code is invalid"
        if not _AMOUNT.fullmatch(value) or not value.isascii():
            return f"items[{n}].amount.value", "Amount value is invalid"
        if currency in _ZERO_DECIMAL and "." in value:
            return f"items[{n}].amount.value", f"Currency {currency} does not support decimals"
        if "." in value and len(value.split(".")[1]) > 2:
            return f"items[{n}].amount.value", "Amount value has too many decimal places"
    return None


def _validation_error(field_name: str, issue: str) -> dict:
    return {
        "name": "VALIDATION_ERROR",
        "message": "Invalid request - see details.",
        "debug_id": _new_id(13).lower(),
        "information_link": _INFO_LINK,
        "details": [{"field": field_name, "location": "body", "issue": issue}],
    }


def _not_found() -> dict:
    return {
        "name": "RESOURCE_NOT_FOUND",
        "message": "The specified resource does not exist.",
        "debug_id": _new_id(13).lower(),
        "information_link": "https://developer.paypal.com/docs/api/payments.payouts-batch/#errors",
    }


def _error(name: str, message: str) -> dict:
    return {"name": name, "message": message, "debug_id": _new_id(13).lower(), "information_link": _INFO_LINK}


_CANNED = {
    "500": (500, ("INTERNAL_SERVER_ERROR", "An internal server error has occurred.")),
    "400": (400, None),
    "422": (422, ("INSUFFICIENT_FUNDS", "Sender does not have sufficient funds. Please add funds and retry.")),
    "404": (404, None),
    "429": (429, ("RATE_LIMIT_REACHED", "Too many requests. Blocked due to rate limiting.")),
    "401": (401, {"error": "invalid_token", "error_description": "Token signature verification failed"}),
}


class _Handler(BaseHTTPRequestHandler):
    fake: FakePayPal
    protocol_version = "HTTP/1.1"
    server_version = "FakePayPal/1.0"

    def log_message(self, format, *args):  # keep test output and the demo console quiet
        return

    # -- plumbing -------------------------------------------------------------------------------
    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(
        self, status: int, payload: object, *, raw: bytes | None = None, delay: float = 0.0, headers: dict | None = None
    ) -> None:
        path = urlsplit(self.path).path
        with self.fake._lock:
            self.fake.requests.append((self.command, path, status))
        if delay:
            time.sleep(delay)
        data = raw if raw is not None else json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("PayPal-Debug-Id", _new_id(13).lower())
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up waiting (a "timeout" behaviour): exactly what is simulated.
            pass

    def _canned(self, behaviour: str) -> bool:
        if behaviour not in _CANNED:
            return False
        status, payload = _CANNED[behaviour]
        if isinstance(payload, tuple):
            payload = _error(*payload)
        if behaviour == "400":
            payload = _validation_error("items[0].receiver", "Receiver is invalid or does not match with type")
        if behaviour == "404":
            payload = _not_found()
        headers = {"Retry-After": self.fake.retry_after} if status == 429 else None
        self._send(status, payload, headers=headers)
        return True

    def _authorised(self) -> bool:
        auth = self.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else ""
        with self.fake._lock:
            ok = token in self.fake.tokens
        if not ok:
            self._send(401, _CANNED["401"][1])
        return ok

    # -- routes ---------------------------------------------------------------------------------
    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        raw = self._body()
        if path == "/v1/oauth2/token":
            return self._token()
        if path in ("/v1/payments/payouts", "/v1/payments/payouts/"):
            behaviour = self.fake._next("create")
            if self._canned(behaviour) or not self._authorised():
                return None
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                return self._send(400, _error("MALFORMED_REQUEST", "The request body is not JSON."))
            fake = self.fake
            request_id = self.headers.get("PayPal-Request-Id", "") if fake.honour_request_id else ""
            with fake._lock:
                seen = fake.request_ids.get(request_id) if request_id else None
                if seen and fake.now() - seen[0] < DUPLICATE_WINDOW_SECONDS:
                    # PayPal replays the first answer to a request id it has seen.
                    return self._send(seen[1], seen[2])
                status, payload = fake._create(body, behaviour)
                if request_id and status == 201:
                    fake.request_ids[request_id] = (fake.now(), status, payload)
            if behaviour == "timeout":
                return self._send(status, payload, delay=self.fake.hang_seconds)
            if behaviour == "garbage" and status == 201:
                return self._send(200, None, raw=b"<html><body>upstream reset\x00{not json")
            return self._send(status, payload)
        match = _CANCEL_PATH.match(path)
        if match:
            behaviour = self.fake._next("cancel")
            if self._canned(behaviour) or not self._authorised():
                return None
            status, payload = self.fake._cancel(match.group(1))
            return self._send(status, payload)
        return self._send(404, _not_found())

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        self._body()  # paypalrestsdk sends "null" as the body of a GET
        match = _BATCH_PATH.match(path)
        if not match:
            return self._send(404, _not_found())
        behaviour = self.fake._next("get")
        if self._canned(behaviour) or not self._authorised():
            return None
        if behaviour == "garbage":
            return self._send(200, None, raw=b"Service Unavailable")
        with self.fake._lock:
            batch = self.fake.batches.get(match.group(1))
            payload = self.fake._batch_json(batch) if batch else None
        if payload is None:
            return self._send(404, _not_found())
        return self._send(200, payload, delay=self.fake.hang_seconds if behaviour == "timeout" else 0.0)

    def _token(self) -> None:
        behaviour = self.fake._next("token")
        if behaviour == "401":
            return self._send(401, {"error": "invalid_client", "error_description": "Client Authentication failed"})
        if behaviour in ("500", "404", "422", "400"):
            self._canned(behaviour)
            return None
        if behaviour == "garbage":
            return self._send(200, None, raw=b"<html>nope</html>")
        auth = self.headers.get("Authorization", "")
        try:
            client_id, _, secret = (
                base64.b64decode(auth[6:]).decode().partition(":") if auth.startswith("Basic ") else ("", "", "")
            )
        except ValueError:
            client_id, secret = "", ""
        fake = self.fake
        if fake.client_id is not None and (client_id != fake.client_id or secret != fake.client_secret):
            return self._send(401, {"error": "invalid_client", "error_description": "Client Authentication failed"})
        token = "A21AA" + secrets.token_urlsafe(24)
        with fake._lock:
            fake.tokens.add(token)
        return self._send(
            200,
            {
                "scope": "https://uri.paypal.com/services/payments/payouts",
                "access_token": token,
                "token_type": "Bearer",
                "app_id": "APP-80W284485P519543T",
                "expires_in": 32400,
                "nonce": _now_iso() + secrets.token_hex(8),
            },
        )
