from __future__ import annotations

from celery import shared_task

from commissions.fraud.services import fraud_rules_run


@shared_task(name="fraud.tasks.fraud_rules_task", acks_late=True)
def fraud_rules_task() -> int:
    """Periodic: run the fraud rules; new findings become open flags (idempotent)."""
    return fraud_rules_run()
