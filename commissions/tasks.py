"""Celery tasks of the ledger: balances for the dashboard and the end of trials.

All are idempotent (each recomputes from the ledger or flips rows by a condition), so a retry
or a duplicate delivery changes nothing more.
"""

from __future__ import annotations

import contextlib

from celery import shared_task
from django.core.cache import cache
from redis.exceptions import RedisError

from commissions.services import (
    awaiting_clicks_resolve,
    balance_refresh_key,
    partner_balances_recalculate,
    referrals_expire_trials,
)


@shared_task(name="commissions.tasks.recalculate_partner_balance_task", ignore_result=True)
def recalculate_partner_balance_task(partner_id: int) -> int:
    """Scheduled (on commit) after a money event of the partner, unless one is already queued
    (``handling.schedule_balance_refresh``)."""
    # Before reading the ledger: an event committed from here on queues a new refresh; one
    # committed before is seen by this one.
    with contextlib.suppress(RedisError):  # a stale key only delays the next refresh (60 s at most)
        cache.delete(balance_refresh_key(partner_id))
    return partner_balances_recalculate(partner_ids=[partner_id])


@shared_task(name="commissions.tasks.recalculate_all_balances_task", ignore_result=True)
def recalculate_all_balances_task() -> int:
    """Hourly (beat): one set-based UPDATE for every partner — also moves commissions whose
    hold has passed into the balance."""
    return partner_balances_recalculate()


@shared_task(name="commissions.tasks.expire_trials_task", ignore_result=True)
def expire_trials_task() -> int:
    """Every 15 minutes (beat): trials that ended with no payment become ``expired``."""
    return referrals_expire_trials()


@shared_task(name="commissions.tasks.resolve_awaiting_clicks_task", ignore_result=True)
def resolve_awaiting_clicks_task() -> int:
    """Every minute (beat): sign-ups waiting for a click that is stored by now. The flusher
    resolves them the moment their click lands; this catches any it missed (a click written
    directly as a buffer fell back, a receiver that failed)."""
    return awaiting_clicks_resolve()
