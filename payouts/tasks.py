"""Celery tasks for payouts. Each one calls a service and is safe to run twice: the services
check the payout's status under a row lock, and PayPal pays one ``sender_batch_id`` once.

``send_payout_task`` makes the first attempts right after approval; ``reconcile_payouts_task``
(celery beat, every ``PAYPAL_POLL_SECONDS``) moves on every payout whose ``next_action_at`` is
due (retries, lost answers, polls, paid payouts still watched for returns), approvals whose
task was never queued, and attempts whose worker died."""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.core.mail import send_mail
from django.db.models import Q
from django.template.loader import render_to_string
from django.utils import timezone

from payouts import services
from payouts.models import Payout

logger = logging.getLogger(__name__)
S = Payout.Status

# Attempts made by the send task itself (with the services' backoff, honouring Retry-After)
# before it hands the payout to staff; the periodic job goes on trying after that.
SEND_MAX_RETRIES = 6
# After a batch is accepted, look at it again soon rather than waiting for the beat schedule.
FOLLOW_UP_POLLS = 5
FOLLOW_UP_FIRST_SECONDS = 2
# An approved payout whose send task was never queued (broker down at approval) is sent by the
# periodic job once it has waited this long.
STUCK_APPROVED_AFTER = timedelta(minutes=2)
# Payouts the periodic job moves on per run (oldest due first); the rest wait for the next run.
RECONCILE_BATCH = 200


@shared_task(bind=True, name="payouts.tasks.send_payout_task", acks_late=True, max_retries=SEND_MAX_RETRIES)
def send_payout_task(self, payout_id: int) -> str:
    retries = self.request.retries
    # Redelivered by the broker: the worker that ran this task died (acks_late with
    # reject-on-worker-lost), so an attempt it recorded as under way was abandoned.
    redelivered = bool((self.request.delivery_info or {}).get("redelivered"))
    while True:
        result = services.payout_send(payout_id=payout_id, takeover=redelivered)
        redelivered = False
        if result.outcome == "in_flight" and not self.request.is_eager:
            # Another run's attempt is recorded as under way: a duplicate delivery, or this task
            # redelivered after its worker died mid-call. Look again once that attempt would be
            # stale; then it is taken as a lost answer and sent again (never paid twice).
            raise self.retry(countdown=result.wait + 1)
        if result.outcome != "retry":
            break
        if retries >= self.max_retries:
            services.payout_send_gave_up(payout_id=payout_id, last_error=result.message)
            return "gave_up"
        if not self.request.is_eager:
            raise self.retry(countdown=result.wait)
        # Without a broker (tests, the demo) tasks run in-process and Celery's eager retry
        # would propagate instead of retrying: retry here, at once.
        retries += 1
    if result.outcome == "sent":
        poll_payout_task.apply_async((payout_id,), countdown=FOLLOW_UP_FIRST_SECONDS)
    return result.outcome


@shared_task(bind=True, name="payouts.tasks.poll_payout_task", acks_late=True)
def poll_payout_task(self, payout_id: int, follow_up: int = 0) -> str:
    """Move one payout on now (settle its batch, or reconcile it); while PayPal still says
    pending, look again a few times with a growing delay (the periodic job catches the rest)."""
    outcome = services.payout_reconcile(payout_id=payout_id)
    if outcome == "sent":
        # Reconciling sent it (or found PayPal's batch): settle it as the send task would.
        poll_payout_task.apply_async((payout_id,), countdown=FOLLOW_UP_FIRST_SECONDS)
    elif outcome in ("pending", "error") and follow_up + 1 < FOLLOW_UP_POLLS and not self.request.is_eager:
        poll_payout_task.apply_async(
            (payout_id, follow_up + 1), countdown=FOLLOW_UP_FIRST_SECONDS * (2 ** (follow_up + 1))
        )
    return outcome


def due_payout_ids(*, now=None) -> list[int]:
    """Payouts the periodic job should move on now, oldest due first."""
    now = now or timezone.now()
    due = Q(next_action_at__lte=now, status__in=(S.SENDING, S.UNKNOWN, S.ATTENTION, S.SENT, S.PAID))
    due &= Q(attempt_started_at__isnull=True)
    stale = Q(status=S.SENDING, attempt_started_at__lt=now - services.stale_attempt_after())
    unsent = Q(status=S.APPROVED, decided_at__lt=now - STUCK_APPROVED_AFTER)
    return list(
        Payout.objects.filter(due | stale | unsent)
        .order_by("next_action_at", "pk")
        .values_list("pk", flat=True)[:RECONCILE_BATCH]
    )


@shared_task(name="payouts.tasks.reconcile_payouts_task", acks_late=True)
def reconcile_payouts_task() -> dict[str, int]:
    """Periodic: every payout that is due, one after the other (each is safe to run twice)."""
    counts: dict[str, int] = {}
    for payout_id in due_payout_ids():
        try:
            outcome = services.payout_reconcile(payout_id=payout_id)
        except Exception:
            # One payout's trouble must not stop the others; it stays due for the next run.
            logger.exception("Reconciling payout %s failed", payout_id)
            outcome = "crashed"
        if outcome == "sent":
            poll_payout_task.apply_async((payout_id,), countdown=FOLLOW_UP_FIRST_SECONDS)
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts


_EMAILS = {
    # kind: (template, subject, recipients from the payout)
    "requested": ("payouts/email/requested_staff.txt", "Payout #{pk} requested: {amount} {currency}"),
    "paid": ("payouts/email/paid.txt", "Your payout of {amount} {currency} has been sent"),
    "rejected": ("payouts/email/rejected.txt", "Your withdrawal request of {amount} {currency} was rejected"),
    "failed": ("payouts/email/failed.txt", "Your payout of {amount} {currency} could not be sent"),
    "returned": ("payouts/email/returned.txt", "Your payout of {amount} {currency} came back to your balance"),
    "unclaimed": ("payouts/email/unclaimed.txt", "Claim your payout of {amount} {currency} at PayPal"),
    "attention": ("payouts/email/attention_staff.txt", "Payout #{pk} needs attention: {amount} {currency}"),
}
_STAFF_KINDS = frozenset({"requested", "attention"})


@shared_task(
    name="payouts.tasks.notify_payout_task",
    autoretry_for=(OSError,),
    retry_backoff=60,
    max_retries=5,
)
def notify_payout_task(payout_id: int, kind: str) -> int:
    """Email about a payout: staff when one is requested or needs attention, the partner when it
    is paid, rejected, failed, returned or waits to be claimed."""
    payout = Payout.objects.select_related("partner__user").filter(pk=payout_id).first()
    if payout is None or kind not in _EMAILS:
        return 0
    staff = kind in _STAFF_KINDS
    recipients = list(settings.STAFF_NOTIFICATION_EMAILS) if staff else [payout.partner.user.email]
    if not recipients:
        return 0
    if kind == "paid":
        # Issue 22: the partner chose in Settings whether to hear about payouts sent.
        from partners.notifications import send

        if not payout.partner.notify_payout_sent:
            return 0
        subject = _EMAILS[kind][1].format(pk=payout.pk, amount=payout.amount, currency=payout.currency)
        return send(partner=payout.partner, kind="payout_sent", subject=subject, context={"payout": payout})
    template, subject = _EMAILS[kind]
    context = {
        "payout": payout,
        "partner": payout.partner,
        "site_url": settings.SITE_URL,
        "merchant_name": settings.MERCHANT_NAME,
    }
    body = render_to_string(template, context)
    subject = subject.format(pk=payout.pk, amount=payout.amount, currency=payout.currency)
    return send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, recipients)
