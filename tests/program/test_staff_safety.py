"""Issue 22 item 6: two-factor verification before payout decisions, four eyes above
PAYOUT_SECOND_APPROVAL_ABOVE, every decision audited."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from payouts.approval import SecondApprovalError
from payouts.models import Payout, PayoutApproval, PayoutAudit
from payouts.services import payout_approve
from tests.conftest import with_totp_device
from tests.factories import PayoutFactory, StaffFactory
from tests.payouts.conftest import add_commission

pytestmark = pytest.mark.django_db


def _staff(*, device: bool = True):
    user = StaffFactory()
    user.user_permissions.add(Permission.objects.get(codename="approve_payout", content_type__app_label="payouts"))
    user.user_permissions.add(Permission.objects.get(codename="view_payout", content_type__app_label="payouts"))
    if device:
        with_totp_device(user)
    return type(user).objects.get(pk=user.pk)


def _payout(amount: str) -> Payout:
    payout = PayoutFactory(amount=Decimal(amount))
    add_commission(payout.partner, amount)
    return payout


def _code(device: TOTPDevice) -> str:
    return f"{totp(device.bin_key, device.step, device.t0, device.digits, device.drift):06d}"


def test_staff_without_a_device_are_sent_to_enrol_before_approving(client):
    from django.test import Client

    staff = _staff(device=False)
    plain = Client()
    plain.force_login(staff)
    payout = _payout("60.00")
    response = plain.post(reverse("admin:payouts_payout_approve", args=[payout.pk]))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("otp_setup"))
    payout.refresh_from_db()
    assert payout.status == Payout.Status.PENDING


def test_enrolment_confirms_the_device_and_verifies_the_session_then_approval_works(settings):
    from django.test import Client

    settings.OTP_TOTP_THROTTLE_FACTOR = 0  # django-otp slows retries after a wrong code; not this test's subject
    staff = _staff(device=False)
    browser = Client()
    browser.force_login(staff)
    page = browser.get(reverse("otp_setup"))
    assert page.status_code == 200
    assert b"<svg" in page.content
    device = TOTPDevice.objects.get(user=staff, confirmed=False)
    wrong = browser.post(reverse("otp_setup"), {"token": "000000" if _code(device) != "000000" else "111111"})
    assert wrong.status_code == 400
    done = browser.post(reverse("otp_setup"), {"token": _code(device), "next": "/admin/payouts/payout/"})
    assert done["Location"] == "/admin/payouts/payout/"
    payout = _payout("60.00")
    browser.post(reverse("admin:payouts_payout_approve", args=[payout.pk]))
    payout.refresh_from_db()
    assert payout.status != Payout.Status.PENDING


def test_staff_with_a_device_verify_with_a_code_before_rejecting():
    from django.test import Client

    staff = _staff()
    browser = Client()
    browser.force_login(staff)  # a plain client: the session is not verified
    payout = _payout("60.00")
    response = browser.post(reverse("admin:payouts_payout_reject", args=[payout.pk]), {"reason": "Spam"})
    assert response["Location"].startswith(reverse("otp_verify"))
    device = TOTPDevice.objects.get(user=staff)
    assert browser.post(reverse("otp_verify"), {"token": _code(device)}).status_code == 302
    browser.post(reverse("admin:payouts_payout_reject", args=[payout.pk]), {"reason": "Spam"})
    payout.refresh_from_db()
    assert payout.status == Payout.Status.REJECTED


def test_a_bulk_action_is_gated_too():
    from django.test import Client

    staff = _staff()
    browser = Client()
    browser.force_login(staff)
    payout = _payout("60.00")
    response = browser.post(
        reverse("admin:payouts_payout_changelist"), {"action": "approve_and_send", "_selected_action": [payout.pk]}
    )
    assert response["Location"].startswith(reverse("otp_verify"))
    payout.refresh_from_db()
    assert payout.status == Payout.Status.PENDING


def test_a_payout_at_the_threshold_needs_one_approval(settings, django_capture_on_commit_callbacks):
    settings.PAYOUT_SECOND_APPROVAL_ABOVE = Decimal("1000.00")
    payout = _payout("1000.00")
    payout_approve(payout_id=payout.pk, actor=_staff())
    payout.refresh_from_db()
    assert payout.status == Payout.Status.APPROVED


def test_a_payout_above_the_threshold_waits_for_a_second_different_staff_member(settings):
    settings.PAYOUT_SECOND_APPROVAL_ABOVE = Decimal("1000.00")
    payout = _payout("1000.01")
    first, second = _staff(), _staff()
    assert payout_approve(payout_id=payout.pk, actor=first).status == Payout.Status.PENDING
    with pytest.raises(SecondApprovalError, match="second, different staff member"):
        payout_approve(payout_id=payout.pk, actor=first)
    assert payout_approve(payout_id=payout.pk, actor=second).status == Payout.Status.APPROVED
    actions = list(PayoutAudit.objects.filter(payout=payout).values_list("action", "actor"))
    assert (PayoutAudit.Action.APPROVAL_RECORDED, first.pk) in actions
    assert (PayoutAudit.Action.APPROVED, second.pk) in actions
    assert set(PayoutApproval.objects.filter(payout=payout).values_list("actor", flat=True)) == {first.pk, second.pk}


def test_the_admin_says_a_second_approval_is_needed(client, settings):
    settings.PAYOUT_SECOND_APPROVAL_ABOVE = Decimal("100.00")
    staff = _staff()
    client.force_login(staff)  # the suite's client: verified for a user with a device
    payout = _payout("150.00")
    response = client.post(reverse("admin:payouts_payout_approve", args=[payout.pk]), follow=True)
    assert b"a second staff member must approve it" in response.content
    payout.refresh_from_db()
    assert payout.status == Payout.Status.PENDING


def test_approvals_cannot_be_edited_or_deleted():
    payout = _payout("60.00")
    approval = PayoutApproval.objects.create(payout=payout, actor=_staff())
    with pytest.raises(ValueError):
        approval.save()
    with pytest.raises(ValueError):
        approval.delete()
