"""Staff safety for payout decisions (issue 22): two-factor verification before any approve or
reject, and four eyes on large payouts.

Kept apart from the payout state machine so it can be wired into any approve/reject entry
point with a line each:

- ``two_factor_gate(request)`` in every admin view or action that approves or rejects: None
  when the staff member verified a TOTP device in this session (django-otp), else a redirect to
  enrol or verify, back to where they were;
- ``approval_complete(payout=..., actor=...)`` in the approve service, under the payout lock:
  records the actor's approval and says whether the payout may go on (one approval up to
  PAYOUT_SECOND_APPROVAL_ABOVE, two different staff members above it).
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse
from django.utils.http import urlencode
from django_otp import user_has_device

from partners.models import User
from payouts.models import Payout, PayoutApproval, PayoutAudit
from payouts.services import PayoutError


class SecondApprovalError(PayoutError):
    """The same staff member tried to give a payout its second approval."""

    code = "second_approval_same_staff"


def needs_second_approval(payout: Payout) -> bool:
    return payout.amount > settings.PAYOUT_SECOND_APPROVAL_ABOVE


def two_factor_gate(request: HttpRequest) -> HttpResponseRedirect | None:
    """None when ``request.user`` passed two-factor verification in this session; otherwise a
    redirect to the enrolment page (no confirmed device yet) or the verification page."""
    user = request.user
    if user.is_authenticated and user.is_verified():
        return None
    back = request.get_full_path() if request.method == "GET" else request.META.get("HTTP_REFERER", "")
    if not back.startswith("/"):
        back = reverse("admin:payouts_payout_changelist")
    if user_has_device(user, confirmed=True):
        messages.warning(request, "Enter the code from your authenticator app before approving or rejecting payouts.")
        target = "otp_verify"
    else:
        messages.warning(request, "Set up two-factor authentication before approving or rejecting payouts.")
        target = "otp_setup"
    return HttpResponseRedirect(f"{reverse(target)}?{urlencode({'next': back})}")


def approval_complete(*, payout: Payout, actor: User) -> bool:
    """Record ``actor``'s approval of ``payout`` and say whether it now has enough of them.

    Caller holds the payout's row lock (two staff approving at once are serialised there).
    Raises ``SecondApprovalError`` when ``actor`` already approved it and it waits for someone
    else."""
    from commissions.fraud.services import open_flags_count

    flags = open_flags_count(partner_id=payout.partner_id)
    if flags:
        # Issue 22: a flagged partner's payouts wait until staff reviewed the flags.
        raise PayoutError(
            f"Payout #{payout.pk} waits for fraud review: the partner has {flags} open flag(s). "
            "Dismiss or confirm them under Fraud review first.",
            code="fraud_review",
        )
    try:
        with transaction.atomic():
            PayoutApproval.objects.create(payout=payout, actor=actor)
    except IntegrityError as exc:
        raise SecondApprovalError(
            f"You already approved payout #{payout.pk}: a second, different staff member must approve it "
            f"(it is above {settings.PAYOUT_SECOND_APPROVAL_ABOVE} {payout.currency}).",
        ) from exc
    if not needs_second_approval(payout):
        return True
    approvers = PayoutApproval.objects.filter(payout=payout).count()
    if approvers >= 2:
        return True
    PayoutAudit.objects.create(
        payout=payout,
        action=PayoutAudit.Action.APPROVAL_RECORDED,
        actor=actor,
        detail={
            "amount": str(payout.amount),
            "threshold": str(settings.PAYOUT_SECOND_APPROVAL_ABOVE),
            "waiting_for": "a second staff member",
        },
    )
    return False
