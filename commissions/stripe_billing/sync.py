"""``manage.py stripe_sync``: repair missed webhooks by reading Stripe's API.

Lists, through the official library's client (its base URL from STRIPE_API_BASE, so tests point
it at a local fake), the completed checkouts, the paid invoices and the refunds created since a
day, and hands each object to the same path a webhook takes (``stripe_event_receive``) as a
synthetic event with a deterministic id (``sync:<object>…``): what a webhook already applied
answers as already known, what is missing is applied, and a second run changes nothing. Each
refund is handed on as ``refund.updated`` and its charge as ``charge.refunded`` (its cumulative
``amount_refunded``, at the time of its latest refund), so refunds are applied one by one in
Stripe's order, exactly as from webhooks (the charge's older refunds are listed when needed); when neither the charge nor a stored link names its invoice, the charge's invoice payments are
listed and stored as ``invoice_payment.paid``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

import stripe
from django.conf import settings

from commissions.stripe_billing.models import StripeEvent, StripePaymentLink
from commissions.stripe_billing.services import stripe_event_receive


@dataclass
class SyncSummary:
    seen: Counter[str] = field(default_factory=Counter)  # by kind: checkouts, invoices, refunds
    outcomes: Counter[str] = field(default_factory=Counter)  # by StripeEvent status

    def lines(self) -> list[str]:
        labels = {**dict(StripeEvent.Status.choices), SYNCED_BEFORE: "Found by an earlier sync (no change)"}
        out = ["Read from Stripe: " + ", ".join(f"{n} {kind}" for kind, n in sorted(self.seen.items()))]
        out.append("Outcome:")
        out.extend(f"  {labels.get(status, status):<40} {n:>6}" for status, n in sorted(self.outcomes.items()))
        applied = self.outcomes.get(StripeEvent.Status.APPLIED, 0)
        out.append(f"Missing and now applied: {applied}")
        return out


def stripe_client() -> stripe.StripeClient:
    if not settings.STRIPE_API_KEY:
        raise stripe.AuthenticationError("STRIPE_API_KEY is not set.")
    base = {"api": settings.STRIPE_API_BASE} if settings.STRIPE_API_BASE else None
    return stripe.StripeClient(settings.STRIPE_API_KEY, base_addresses=base, max_network_retries=2)


def _plain(obj: Any) -> dict[str, Any]:
    return obj.to_dict(for_json=True) if hasattr(obj, "to_dict") else dict(obj)


def _synthetic(event_id: str, event_type: str, obj: dict[str, Any], created: Any) -> dict[str, Any]:
    return {
        "id": event_id,
        "object": "event",
        "type": event_type,
        "created": created if isinstance(created, int) else obj.get("created"),
        "livemode": obj.get("livemode") is True,
        "api_version": None,
        "data": {"object": obj},
    }


SYNCED_BEFORE = "synced_before"


def _receive(summary: SyncSummary, payload: dict[str, Any]) -> None:
    known = StripeEvent.objects.filter(stripe_id=payload["id"]).exclude(status=StripeEvent.Status.RECEIVED).exists()
    row = stripe_event_receive(payload=payload, source=StripeEvent.Source.SYNC)
    summary.outcomes[SYNCED_BEFORE if known else row.status] += 1


def stripe_sync(
    *, since: date, client: stripe.StripeClient | None = None, progress: bool = False, progress_file=None
) -> SyncSummary:
    from tqdm import tqdm

    client = client or stripe_client()
    created = {"gte": int(datetime.combine(since, time.min, tzinfo=UTC).timestamp())}
    summary = SyncSummary()
    bar = tqdm(unit="object", disable=None if progress else True, file=progress_file, desc="Syncing Stripe")

    def each(kind: str, items: Iterable[Any]) -> Iterator[dict[str, Any]]:
        for item in items:
            summary.seen[kind] += 1
            bar.update(1)
            yield _plain(item)

    try:
        sessions = client.v1.checkout.sessions.list(params={"created": created, "status": "complete", "limit": 100})
        for session in each("checkouts", sessions.auto_paging_iter()):
            _receive(
                summary,
                _synthetic(f"sync:{session['id']}", "checkout.session.completed", session, session.get("created")),
            )
        invoices = client.v1.invoices.list(
            params={"created": created, "status": "paid", "limit": 100, "expand": ["data.payments"]}
        )
        for invoice in each("invoices", invoices.auto_paging_iter()):
            paid_at = (invoice.get("status_transitions") or {}).get("paid_at")
            _receive(summary, _synthetic(f"sync:{invoice['id']}:paid", "invoice.paid", invoice, paid_at))
        refunds = client.v1.refunds.list(params={"created": created, "limit": 100, "expand": ["data.charge"]})
        charges: dict[str, dict[str, Any]] = {}
        latest: dict[str, int] = {}  # charge id -> its latest refund's time
        for refund in each("refunds", refunds.auto_paging_iter()):
            charge = refund.get("charge")
            if isinstance(charge, str):
                charge = _plain(client.v1.charges.retrieve(charge))
            if not isinstance(charge, dict) or not charge.get("id"):
                continue
            charges[charge["id"]] = charge
            refund = {**refund, "charge": charge["id"]}
            if isinstance(refund.get("created"), int):
                latest[charge["id"]] = max(latest.get(charge["id"], 0), refund["created"])
            # Each refund on its own (applied in Stripe's order, at its own time), keyed by its
            # state: a refund that failed since an earlier sync is heard again.
            event_id = f"sync:{refund['id']}:{refund.get('status')}"
            _receive(summary, _synthetic(event_id, "refund.updated", refund, refund.get("created")))
        for charge in charges.values():
            _link_charge(client, summary, charge)
            event_id = f"sync:{charge['id']}:refunded:{charge.get('amount_refunded')}"
            at = latest.get(charge["id"], charge.get("created"))
            _receive(summary, _synthetic(event_id, "charge.refunded", charge, at))
    finally:
        bar.close()
    return summary


def _link_charge(client: stripe.StripeClient, summary: SyncSummary, charge: dict[str, Any]) -> None:
    """Store which invoice the charge paid when nothing says it yet (the current API's charges
    do not name their invoice)."""
    intent = charge.get("payment_intent")
    intent = intent.get("id") if isinstance(intent, dict) else intent
    if charge.get("invoice") or not intent:
        return
    if StripePaymentLink.objects.filter(payment_ref__in=[intent, charge["id"]]).exists():
        return
    payments = client.v1.invoice_payments.list(
        params={"payment": {"type": "payment_intent", "payment_intent": intent}, "limit": 10}
    )
    for payment in payments.auto_paging_iter():
        payment = _plain(payment)
        _receive(summary, _synthetic(f"sync:{payment['id']}", "invoice_payment.paid", payment, payment.get("created")))
