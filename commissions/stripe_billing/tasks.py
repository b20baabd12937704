"""Celery tasks of the Stripe connector (idempotent: each handles held events again)."""

from __future__ import annotations

from celery import shared_task

from commissions.stripe_billing.services import stripe_refunds_waited


@shared_task(name="commissions.stripe_billing.tasks.stripe_refunds_waited_task", ignore_result=True)
def stripe_refunds_waited_task() -> int:
    """The charge.refunded events that waited long enough for their refund events (beat)."""
    return stripe_refunds_waited()
