"""Celery tasks for payouts. Each one calls a service and is safe to run twice: the services
check the payout's status under a row lock, and PayPal pays one ``sender_batch_id`` once."""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.utils import timezone

from payouts import services
from payouts.models import Payout

logger = logging.getLogger(__name__)

# Network errors and 5xx: retried 6 times, 30 s, 60 s, … 16 min apart (about 32 min in all),
# then left in "processing" for staff with the reason.
SEND_MAX_RETRIES = 6
SEND_BACKOFF_SECONDS = 30
# After a batch is accepted, look at it again soon rather than waiting for the beat schedule.
FOLLOW_UP_POLLS = 5
FOLLOW_UP_FIRST_SECONDS = 2
# An approved payout whose send task was never queued (broker down at approval) is sent again
# by the periodic poll once it has waited this long.
STUCK_APPROVED_AFTER = timedelta(minutes=2)


def send_backoff(retries: int) -> int:
    return SEND_BACKOFF_SECONDS * (2**retries)


@shared_task(bind=True, name="payouts.tasks.send_payout_task", acks_late=True, max_retries=SEND_MAX_RETRIES)
def send_payout_task(self, payout_id: int) -> str:
    retries = self.request.retries
    while True:
        result = services.payout_send(payout_id=payout_id)
        if result.outcome != "retry":
            break
        if retries >= self.max_retries:
            services.payout_send_gave_up(payout_id=payout_id, last_error=result.message)
            return "gave_up"
        if not self.request.is_eager:
            raise self.retry(countdown=send_backoff(retries))
        # Without a broker (tests, the demo) tasks run in-process and Celery's eager retry
        # would propagate instead of retrying: retry here, at once.
        retries += 1
    if result.outcome == "sent":
        poll_payout_task.apply_async((payout_id,), countdown=FOLLOW_UP_FIRST_SECONDS)
    return result.outcome


@shared_task(bind=True, name="payouts.tasks.poll_payout_task", acks_late=True)
def poll_payout_task(self, payout_id: int, follow_up: int = 0) -> str:
    """Settle one payout now; while PayPal still says pending, look again a few times with a
    growing delay (the beat-driven poll catches anything left)."""
    outcome = services.payout_poll(payout_id=payout_id)
    if outcome in ("pending", "error") and follow_up + 1 < FOLLOW_UP_POLLS and not self.request.is_eager:
        poll_payout_task.apply_async(
            (payout_id, follow_up + 1), countdown=FOLLOW_UP_FIRST_SECONDS * (2 ** (follow_up + 1))
        )
    return outcome


@shared_task(name="payouts.tasks.poll_processing_payouts_task", acks_late=True)
def poll_processing_payouts_task() -> dict[str, int]:
    """Periodic: settle every processing payout that PayPal has a batch for, and send again
    approved payouts left unsent (safe: PayPal pays one sender_batch_id once)."""
    counts: dict[str, int] = {}
    stuck = Payout.objects.filter(
        status=Payout.Status.APPROVED, paypal_batch_id="", decided_at__lt=timezone.now() - STUCK_APPROVED_AFTER
    ).values_list("pk", flat=True)
    for payout_id in list(stuck.order_by("pk")):
        send_payout_task.delay(payout_id)
        counts["resent"] = counts.get("resent", 0) + 1
    ids = (
        Payout.objects.filter(status=Payout.Status.PROCESSING).exclude(paypal_batch_id="").values_list("pk", flat=True)
    )
    for payout_id in list(ids.order_by("pk")):
        outcome = services.payout_poll(payout_id=payout_id)
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts


_EMAILS = {
    # kind: (template, subject, recipients from the payout)
    "requested": ("payouts/email/requested_staff.txt", "Payout #{pk} requested: {amount} {currency}"),
    "paid": ("payouts/email/paid.txt", "Your payout of {amount} {currency} has been sent"),
    "rejected": ("payouts/email/rejected.txt", "Your withdrawal request of {amount} {currency} was rejected"),
    "failed": ("payouts/email/failed.txt", "Your payout of {amount} {currency} could not be sent"),
}


@shared_task(
    name="payouts.tasks.notify_payout_task",
    autoretry_for=(OSError,),
    retry_backoff=60,
    max_retries=5,
)
def notify_payout_task(payout_id: int, kind: str) -> int:
    """Email about a payout: staff when one is requested, the partner when it is paid,
    rejected or failed."""
    payout = Payout.objects.select_related("partner__user").filter(pk=payout_id).first()
    if payout is None or kind not in _EMAILS:
        return 0
    staff = kind == "requested"
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
