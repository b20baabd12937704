"""Emails partners choose in Settings: a new referral, a new commission, a payout sent, and a
monthly statement. Each has a plain-text body (and an HTML alternative) and a one-click
unsubscribe link (also in ``List-Unsubscribe``).

New referrals and commissions are found by a periodic task reading past a cursor, so the
merchant events path (the hot path after the click) does no email work at all.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.core import signing
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import Sum
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from commissions.money import ZERO, cents
from partners.models import NotificationCursor, Partner

logger = logging.getLogger(__name__)

KINDS = {
    "new_referral": "notify_new_referral",
    "new_commission": "notify_new_commission",
    "payout_sent": "notify_payout_sent",
    "monthly_statement": "notify_monthly_statement",
}
_SALT = "partners.notifications.unsubscribe"
# One run emails at most this many new rows per kind; the next run goes on from there.
BATCH = 5000


def unsubscribe_token(*, partner: Partner, kind: str) -> str:
    return signing.dumps({"p": partner.pk, "k": kind}, salt=_SALT, compress=True)


def unsubscribe_url(*, partner: Partner, kind: str) -> str:
    return settings.SITE_URL + reverse("partners:unsubscribe", args=[unsubscribe_token(partner=partner, kind=kind)])


def _read(token: str) -> tuple[int, str] | None:
    try:
        data = signing.loads(token, salt=_SALT)
        partner_id, kind = int(data["p"]), data["k"]
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        return None
    return (partner_id, kind) if kind in KINDS else None


def token_kind(token: str) -> str | None:
    """The kind of email an unsubscribe token names, or None for a token that is not ours."""
    read = _read(token)
    return read[1] if read else None


def unsubscribe(*, token: str) -> tuple[Partner, str] | None:
    """Turn off the email a token names (idempotent); None for a token that is not ours."""
    read = _read(token)
    if read is None:
        return None
    partner_id, kind = read
    partner = Partner.objects.filter(pk=partner_id).first()
    if partner is None:
        return None
    Partner.objects.filter(pk=partner.pk).update(**{KINDS[kind]: False})
    return partner, kind


def send(*, partner: Partner, kind: str, subject: str, context: dict) -> int:
    """One email of ``kind`` to ``partner``: text body, HTML alternative, unsubscribe link."""
    link = unsubscribe_url(partner=partner, kind=kind)
    context = {
        **context,
        "partner": partner,
        "site_url": settings.SITE_URL,
        "merchant_name": settings.MERCHANT_NAME,
        "currency": settings.PROGRAM_CURRENCY,
        "unsubscribe_url": link,
        "settings_url": settings.SITE_URL + reverse("partners:settings") + "#notifications",
    }
    text = render_to_string(f"partners/email/notify_{kind}.txt", context)
    message = EmailMultiAlternatives(
        subject=subject,
        body=text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[partner.user.email],
        headers={"List-Unsubscribe": f"<{link}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
    )
    # The HTML part is the text, escaped, with the links clickable below it.
    message.attach_alternative(
        render_to_string("partners/email/notify.html", {**context, "body_text": text}), "text/html"
    )
    return message.send()


def _advance(name: str, rows_query) -> tuple[NotificationCursor, list]:
    cursor, _ = NotificationCursor.objects.get_or_create(name=name)
    cursor = NotificationCursor.objects.select_for_update().get(pk=cursor.pk)
    rows = list(rows_query.filter(pk__gt=cursor.last_id).order_by("pk")[:BATCH])
    return cursor, rows


@transaction.atomic
def notify_new_referrals() -> int:
    """Email each partner who wants it about referrals that signed up since the last run (one
    email per partner per run). The cursor row lock keeps two runs from sending the same."""
    from commissions.models import Referral

    cursor, rows = _advance("new_referral", Referral.objects.select_related("partner__user", "link"))
    if not rows:
        return 0
    cursor.last_id = rows[-1].pk
    cursor.save(update_fields=["last_id", "updated_at"])
    by_partner = defaultdict(list)
    for referral in rows:
        if referral.partner.notify_new_referral and referral.partner.is_approved:
            by_partner[referral.partner].append(referral)
    sent = 0
    for partner, referrals in by_partner.items():
        count = len(referrals)
        sent += send(
            partner=partner,
            kind="new_referral",
            subject=f"{count} new referral{'s' if count != 1 else ''} signed up",
            context={"referrals": referrals},
        )
    return sent


@transaction.atomic
def notify_new_commissions() -> int:
    """Email each partner who wants it about commissions earned since the last run."""
    from commissions.models import CommissionEntry

    cursor, rows = _advance(
        "new_commission",
        CommissionEntry.objects.filter(kind=CommissionEntry.Kind.COMMISSION, amount__gt=0).select_related(
            "partner__user", "payment"
        ),
    )
    if not rows:
        return 0
    cursor.last_id = rows[-1].pk
    cursor.save(update_fields=["last_id", "updated_at"])
    by_partner = defaultdict(list)
    for entry in rows:
        if entry.partner.notify_new_commission and entry.partner.is_approved:
            by_partner[entry.partner].append(entry)
    sent = 0
    for partner, entries in by_partner.items():
        total = cents(sum((entry.amount for entry in entries), ZERO))
        sent += send(
            partner=partner,
            kind="new_commission",
            subject=f"You earned {total} {settings.PROGRAM_CURRENCY} in commission",
            context={"entries": entries, "total": total},
        )
    return sent


def monthly_statement_context(*, partner: Partner, month: date) -> dict:
    """Last month's numbers for one partner, from the ledger and the payouts."""
    from commissions.lifecycle import partner_lifecycle
    from commissions.models import CommissionEntry
    from payouts.models import Payout

    tz = timezone.get_current_timezone()
    start = datetime.combine(month.replace(day=1), time.min, tzinfo=tz)
    next_month = (month.replace(day=28) + timedelta(days=4)).replace(day=1)
    end = datetime.combine(next_month, time.min, tzinfo=tz)
    entries = CommissionEntry.objects.filter(partner=partner, earned_at__gte=start, earned_at__lt=end)
    earned = entries.filter(kind=CommissionEntry.Kind.COMMISSION).aggregate(t=Sum("amount"))["t"] or ZERO
    reversed_ = entries.filter(kind=CommissionEntry.Kind.REVERSAL).aggregate(t=Sum("amount"))["t"] or ZERO
    paid = (
        Payout.objects.filter(
            partner=partner, status=Payout.Status.PAID, paid_at__gte=start, paid_at__lt=end
        ).aggregate(t=Sum("amount"))["t"]
        or ZERO
    )
    life = partner_lifecycle(partner=partner)
    return {
        "month": month,
        "earned": cents(earned),
        "reversed": cents(reversed_),
        "net": cents(earned + reversed_),
        "paid": cents(paid),
        "available": cents(life.available),
        "pending": cents(life.pending),
        "in_payouts": cents(life.in_payouts),
    }


def send_monthly_statements(*, month: date) -> int:
    """The statement of ``month`` to every approved partner who wants it. Safe to run again
    (beat twice, a retry after a crash): a cursor per month remembers the last partner
    emailed, so each partner gets that month's statement once."""
    cursor, _ = NotificationCursor.objects.get_or_create(name=f"monthly_statement:{month:%Y-%m}")
    partners = Partner.objects.select_related("user").filter(
        notify_monthly_statement=True, status=Partner.Status.APPROVED, user__is_active=True
    )
    sent = 0
    while True:
        with transaction.atomic():
            # The lock serialises two runs; each partner is committed as done after its email.
            cursor = NotificationCursor.objects.select_for_update().get(pk=cursor.pk)
            partner = partners.filter(pk__gt=cursor.last_id).order_by("pk").first()
            if partner is None:
                return sent
            context = monthly_statement_context(partner=partner, month=month)
            sent += send(
                partner=partner,
                kind="monthly_statement",
                subject=f"Your {settings.MERCHANT_NAME} partner statement for {month:%B %Y}",
                context=context,
            )
            cursor.last_id = partner.pk
            cursor.save(update_fields=["last_id", "updated_at"])


def wants_payout_sent_email(partner: Partner) -> bool:
    return bool(partner.notify_payout_sent)
