"""The PayPal gateway talks to the Payouts API through paypalrestsdk, which is deprecated and has
defects we defend against here (each one is proven by a test against ``devtools.fake_paypal``):

* no request timeout at all: a silent server blocks a worker forever. ``_PayPalApi.http_call``
  passes ``timeout=PAYPAL_TIMEOUT_SECONDS`` to every request.
* a 401 that keeps coming back makes ``Api.request`` drop the token and call itself again,
  forever (until ``RecursionError``). ``_PayPalApi.request`` refreshes the token once.
* errors are reported unevenly: a 400 comes back as ``{"error": …}`` (``False`` and ``.error``
  on resources), other codes raise, a body that is not JSON raises ``ValueError``. Everything is
  mapped to ``PayoutGatewayError``: ``RetryableGatewayError`` (network, timeout, 5xx, 429,
  unreadable answer) or ``PermanentGatewayError`` (other 4xx). Each error also says whether the
  request may have reached PayPal (``may_have_arrived``: a timeout, a 5xx or an unreadable answer
  may hide a batch PayPal created; a 429, a refused connection or a 4xx do not) and how long
  PayPal asked us to wait (``retry_after``, from a 429's ``Retry-After``).
* ``WebhookEvent.verify`` always fails with current pyOpenSSL: we do not use webhooks, we poll.
* ``Payout.find()`` and ``PayoutItem.cancel()`` build ``…/payouts/<id>/<id>`` (``util.join_url``
  with a trailing-slash base on Python ≥ 3.7): we read and cancel through the ``Api``'s own
  ``get``/``post`` with the right path. ``join_url`` also doubles the path when the endpoint ends
  with a slash, so the endpoint is normalised.
* ``Payout`` posts to ``/v1/payments/payouts/`` (trailing slash): our resource posts to
  ``/v1/payments/payouts``.
* in sandbox mode the SDK logs request headers (Basic credentials, bearer token) at DEBUG: its
  loggers are held at WARNING whatever the logging configuration says, and this module only
  ever logs payout ids and PayPal's error names.

Never paying twice rests on PayPal's rule that a ``sender_batch_id`` is paid once (30 days):
we always send the payout's stable ``sender_batch_id`` (and it as ``PayPal-Request-Id``, whose
replay PayPal also keeps for 30 days). PayPal's answer to a reused ``sender_batch_id`` is a 400
``USER_BUSINESS_ERROR`` whose ``details[].field`` is ``SENDER_BATCH_ID``; its wording varies
("Batch with given sender_batch_id already exists", "Duplicate batch request"), so it is
recognised by the field alone, and it links to the existing batch. ``send`` reports it as
``already_sent`` with that batch's id; the caller checks the batch is this payout's (amount,
currency, receiver) before adopting it.
"""

from __future__ import annotations

import logging
import threading
from decimal import Decimal

import paypalrestsdk
import requests
from django.conf import settings
from paypalrestsdk import exceptions as sdk_errors

from payouts.gateway.base import (
    AuthenticationLoopError,
    BatchResult,
    PayoutGatewayError,
    PermanentGatewayError,
    RetryableGatewayError,
    SentBatch,
)
from payouts.gateway.paypal_format import (
    _PAYPAL_ID,
    _batch_from,
    _describe,
    _duplicate_batch_id,
    _error_from_body,
    _retry_after,
    amount_value,
)

logger = logging.getLogger(__name__)

# How many times one call may drop its token and try again after a 401 before giving up.
MAX_TOKEN_REFRESHES = 1


# --- paypalrestsdk with its defects fixed ---------------------------------------------------------
def _quiet_sdk_loggers() -> None:
    # The SDK logs Authorization headers at DEBUG in sandbox mode. Hold its loggers at WARNING
    # even if a deployment's LOGGING forgot to (or set the root logger to DEBUG).
    for name in ("paypalrestsdk", "paypalrestsdk.api"):
        sdk_logger = logging.getLogger(name)
        if sdk_logger.level < logging.WARNING:
            sdk_logger.setLevel(logging.WARNING)


class _PayPalApi(paypalrestsdk.Api):
    """paypalrestsdk's ``Api`` with a timeout on every HTTP call and a cap on token refreshes."""

    def __init__(self, *, timeout: float, max_token_refreshes: int = MAX_TOKEN_REFRESHES, **kwargs):
        super().__init__(**kwargs)
        self.timeout = timeout
        self.max_token_refreshes = max_token_refreshes
        self._depth = threading.local()

    def http_call(self, url, method, **kwargs):
        kwargs.setdefault("timeout", self.timeout)
        return super().http_call(url, method, **kwargs)

    def request(self, url, method, body=None, headers=None, refresh_token=None):
        # Api.request answers a 401 by dropping the token and calling self.request again, with
        # no limit. Each nested call comes back here, so the depth counts the refreshes.
        depth = getattr(self._depth, "value", 0)
        if depth > self.max_token_refreshes:
            raise AuthenticationLoopError(
                f"PayPal answered 401 Unauthorized {depth} times in a row, even with a fresh token.", status=401
            )
        self._depth.value = depth + 1
        try:
            return super().request(url, method, body=body, headers=headers, refresh_token=refresh_token)
        finally:
            self._depth.value = depth


class _BatchPayout(paypalrestsdk.Payout):
    # paypalrestsdk.Payout posts to "/v1/payments/payouts/" (trailing slash).
    path = "/v1/payments/payouts"

    def merge(self, new_attributes):
        # Resource.merge calls .items() on whatever JSON came back; a list or a string would
        # raise AttributeError from deep inside the SDK.
        if not isinstance(new_attributes, dict):
            raise RetryableGatewayError("PayPal's answer to the payout was not a JSON object.")
        super().merge(new_attributes)


class PayPalGateway:
    """PayPal Payouts API (v1 batch payouts, one item per batch) through paypalrestsdk."""

    method = "paypal"

    def __init__(
        self,
        *,
        mode: str | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        api_base: str | None = None,
        timeout: float | None = None,
    ) -> None:
        _quiet_sdk_loggers()
        mode = mode or settings.PAYPAL_MODE
        options = {
            "mode": mode,
            "client_id": settings.PAYPAL_CLIENT_ID if client_id is None else client_id,
            "client_secret": settings.PAYPAL_CLIENT_SECRET if client_secret is None else client_secret,
        }
        base = settings.PAYPAL_API_BASE if api_base is None else api_base
        if base:
            # util.join_url doubles the path when the endpoint ends with "/".
            options["endpoint"] = base.rstrip("/")
        self.api = _PayPalApi(
            timeout=settings.PAYPAL_TIMEOUT_SECONDS if timeout is None else timeout,
            **options,
        )

    def __repr__(self) -> str:  # never the credentials
        return f"<PayPalGateway {self.api.endpoint}>"

    # -- calls ------------------------------------------------------------------------------------
    def send(
        self, *, sender_batch_id: str, sender_item_id: str, receiver: str, amount: Decimal, currency: str, note: str
    ) -> SentBatch:
        """Create the batch. Raises ``PayoutGatewayError``; answers ``already_sent`` when PayPal
        has this ``sender_batch_id`` from an earlier attempt."""
        resource = _BatchPayout(
            {
                "sender_batch_header": {
                    "sender_batch_id": sender_batch_id,
                    "recipient_type": "EMAIL",
                    "email_subject": f"You have a payout from the {settings.MERCHANT_NAME} Partner Program",
                    "email_message": note,
                },
                "items": [
                    {
                        "recipient_type": "EMAIL",
                        "amount": {"value": amount_value(amount, currency), "currency": currency},
                        "receiver": receiver,
                        "note": note,
                        "sender_item_id": sender_item_id,
                    }
                ],
            },
            api=self.api,
        )
        # A stable request id: harmless where PayPal ignores it, a second guard where it does not.
        resource.request_id = sender_batch_id
        created = self._call(resource.create, what="create batch")
        if not created:
            # paypalrestsdk's way of reporting a 400: False, with the body in .error.
            error = _error_from_body(resource.error, 400)
            existing = _duplicate_batch_id(error)
            if existing is not None:
                logger.warning("PayPal already has batch %s (batch id %s)", sender_batch_id, existing or "unknown")
                return SentBatch(batch_id=existing, batch_status="", already_sent=True)
            name, message = _describe(error, "PayPal refused the payout (400 Bad Request).")
            raise PermanentGatewayError(message, status=400, name=name, details=error.get("details"))
        header = resource.batch_header
        batch_id = str(getattr(header, "payout_batch_id", "") or "") if header is not None else ""
        if not _PAYPAL_ID.match(batch_id):
            # A 2xx without a batch id: we cannot tell what happened, so treat it like a lost
            # answer. The retry uses the same sender_batch_id and cannot pay twice.
            raise RetryableGatewayError("PayPal's answer to the payout did not include a batch id.")
        return SentBatch(batch_id=batch_id, batch_status=str(getattr(header, "batch_status", "") or ""))

    def get_batch(self, batch_id: str) -> BatchResult:
        if not _PAYPAL_ID.match(batch_id or ""):
            raise PermanentGatewayError(f"Not a PayPal batch id: {batch_id!r}")
        # Not Payout.find(): it requests /v1/payments/payouts/<id>/<id>.
        answer = self._call(lambda: self.api.get(f"v1/payments/payouts/{batch_id}"), what="read batch")
        return _batch_from(answer, batch_id)

    # -- plumbing ---------------------------------------------------------------------------------
    def _call(self, fn, *, what: str):
        try:
            answer = fn()
        except PayoutGatewayError:
            raise
        except requests.ConnectTimeout as exc:
            raise RetryableGatewayError(
                f"Could not connect to PayPal within {self.api.timeout:g} s ({what}).", may_have_arrived=False
            ) from exc
        except requests.Timeout as exc:
            raise RetryableGatewayError(f"PayPal did not answer within {self.api.timeout:g} s ({what}).") from exc
        except requests.ConnectionError as exc:
            # A refused or unresolvable connection never carried the request; a connection that
            # broke while waiting for the answer may have.
            refused = "NewConnectionError" in repr(exc) or "NameResolutionError" in repr(exc)
            raise RetryableGatewayError(
                f"Could not reach PayPal ({what}): {type(exc).__name__}.", may_have_arrived=not refused
            ) from exc
        except requests.RequestException as exc:
            raise RetryableGatewayError(f"Could not reach PayPal ({what}): {type(exc).__name__}.") from exc
        except sdk_errors.ServerError as exc:
            status = getattr(exc.response, "status_code", None)
            name, message = _describe(_error_from_body(exc.content, status), f"PayPal server error ({what}).")
            raise RetryableGatewayError(f"{message} [HTTP {status}]", status=status, name=name) from exc
        except sdk_errors.ClientError as exc:
            status = getattr(exc.response, "status_code", None)
            name, message = _describe(_error_from_body(exc.content, status), f"PayPal refused the request ({what}).")
            if status == 429:
                # RATE_LIMIT_REACHED: PayPal did not look at the request; wait as long as it asks.
                raise RetryableGatewayError(
                    f"{message} [HTTP 429]",
                    status=429,
                    name=name,
                    may_have_arrived=False,
                    retry_after=_retry_after(exc.response),
                ) from exc
            raise PermanentGatewayError(f"{message} [HTTP {status}]", status=status, name=name) from exc
        except sdk_errors.ConnectionError as exc:
            # Redirections and unknown status codes: nothing we can act on now.
            status = getattr(exc.response, "status_code", None)
            raise RetryableGatewayError(
                f"Unexpected answer from PayPal ({what}) [HTTP {status}].", status=status
            ) from exc
        except ValueError as exc:
            # json.loads on a body that is not JSON (2xx or 400 alike).
            raise RetryableGatewayError(f"PayPal's answer could not be read ({what}).") from exc
        if isinstance(answer, dict) and set(answer) == {"error"}:
            # Api.get/post report a 400 as {"error": body} instead of raising.
            error = _error_from_body(answer["error"], 400)
            name, message = _describe(error, f"PayPal refused the request ({what}).")
            raise PermanentGatewayError(message, status=400, name=name, details=error.get("details"))
        return answer
