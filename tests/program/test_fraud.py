"""Issue 22 item 5: fraud rules, flags with evidence in the admin, payouts waiting for review,
and voiding a commission with a reason."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from commissions.balance import partner_balance
from commissions.fraud.models import CommissionVoid, FraudFlag
from commissions.fraud.services import FraudReviewError, commission_void, flags_review, fraud_rules_run
from commissions.fraud.tasks import fraud_rules_task
from commissions.models import CommissionEntry
from payouts.models import Payout
from payouts.services import PayoutError, payout_approve
from tests.conftest import with_totp_device
from tests.factories import (
    ClickFactory,
    LinkFactory,
    PartnerFactory,
    PaymentFactory,
    PayoutFactory,
    ReferralFactory,
    StaffFactory,
)
from tests.payouts.conftest import add_commission, add_refund

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def _flags(rule: str) -> list[FraudFlag]:
    return list(FraudFlag.objects.filter(rule=rule).order_by("partner_id", "key"))


def test_a_self_referral_is_flagged_once_however_often_the_rules_run():
    referral = ReferralFactory(is_self_referral=True)
    ReferralFactory()
    assert fraud_rules_run() == 1
    assert fraud_rules_task() == 0
    (flag,) = _flags("self_referral")
    assert (flag.partner_id, flag.referral_id, flag.status) == (referral.partner_id, referral.pk, "open")
    assert flag.evidence["customer_id"] == referral.customer_id


def test_many_signups_from_one_visitor_are_flagged(settings):
    settings.FRAUD_SIGNUPS_PER_VISITOR = 3
    link = LinkFactory()
    for _ in range(3):
        ReferralFactory(click=ClickFactory(link=link, visitor_id="same-visitor"))
    ReferralFactory(click=ClickFactory(link=link, visitor_id="other"))
    fraud_rules_run()
    (flag,) = _flags("signups_one_visitor")
    assert flag.evidence["signups"] == 3
    assert flag.evidence["visitor"] == "same-visitor"


def test_many_signups_from_one_address_hash_are_flagged(settings):
    settings.FRAUD_SIGNUPS_PER_VISITOR = 2
    link = LinkFactory()
    ReferralFactory(click=ClickFactory(link=link, ip_hash="h1"))
    ReferralFactory(click=ClickFactory(link=link, ip_hash="h1"))
    fraud_rules_run()
    assert [flag.key for flag in _flags("signups_one_visitor")] == ["address hash:h1"]


def test_a_click_burst_from_one_visitor_is_flagged(settings):
    settings.FRAUD_CLICKS_PER_VISITOR_HOUR = 5
    link = LinkFactory()
    at = timezone.now().replace(minute=5, second=0, microsecond=0)
    for n in range(5):
        ClickFactory(link=link, visitor_id="bot-ish", created_at=at + timedelta(minutes=n))
    for n in range(4):
        ClickFactory(link=link, visitor_id="human", created_at=at + timedelta(minutes=n))
    fraud_rules_run()
    (flag,) = _flags("click_burst")
    assert flag.evidence["clicks"] == 5
    assert flag.partner_id == link.partner_id


def test_one_paypal_email_on_several_partners_flags_each_of_them():
    first = PartnerFactory(paypal_email="Same@Example.com")
    second = PartnerFactory(paypal_email="same@example.com")
    PartnerFactory(paypal_email="own@example.com")
    fraud_rules_run()
    flags = _flags("shared_paypal")
    assert [flag.partner_id for flag in flags] == sorted([first.pk, second.pk])
    assert {p["id"] for p in flags[0].evidence["partners"]} == {first.pk, second.pk}


def test_a_referral_that_pays_and_refunds_repeatedly_is_flagged(settings):
    settings.FRAUD_REFUNDS_PER_REFERRAL = 2
    referral = ReferralFactory()
    for _ in range(2):
        entry = add_commission(referral.partner, "10.00", payment=PaymentFactory(referral=referral))
        add_refund(entry, "10.00")
    fraud_rules_run()
    (flag,) = _flags("pay_refund")
    assert (flag.referral_id, flag.evidence["refunded_payments"]) == (referral.pk, 2)


def test_conversion_far_above_the_programs_is_flagged(settings):
    settings.FRAUD_MIN_CLICKS = 10
    settings.FRAUD_CONVERSION_FACTOR = Decimal("3")
    normal, suspicious = LinkFactory(), LinkFactory()
    for n in range(100):
        click = ClickFactory(link=normal, visitor_id=f"n{n}")
        if n < 2:
            ReferralFactory(click=click)
    for n in range(10):
        click = ClickFactory(link=suspicious, visitor_id=f"s{n}")
        if n < 8:
            ReferralFactory(click=click)
    fraud_rules_run()
    (flag,) = _flags("high_conversion")
    assert flag.partner_id == suspicious.partner_id
    assert flag.evidence["signups"] == 8


def _payout_staff():
    user = StaffFactory()
    user.user_permissions.add(Permission.objects.get(codename="approve_payout", content_type__app_label="payouts"))
    with_totp_device(user)
    return type(user).objects.get(pk=user.pk)


def test_a_flagged_partners_payout_waits_for_review():
    partner = PartnerFactory(paypal_email="same@example.com")
    PartnerFactory(paypal_email="same@example.com")
    add_commission(partner, "60.00")
    payout = PayoutFactory(partner=partner, amount=Decimal("60.00"))
    fraud_rules_run()
    staff = _payout_staff()
    with pytest.raises(PayoutError, match="waits for fraud review"):
        payout_approve(payout_id=payout.pk, actor=staff)
    assert Payout.objects.get(pk=payout.pk).status == "pending"
    flags_review(
        flag_ids=FraudFlag.objects.filter(partner=partner).values_list("pk", flat=True), actor=staff, status="dismissed"
    )
    assert payout_approve(payout_id=payout.pk, actor=staff).status == "approved"


def test_staff_void_a_commission_with_a_reason_the_partner_sees(partner_client):
    partner = partner_client.partner
    entry = add_commission(partner, "25.00")
    add_refund(entry, "5.00")
    staff = StaffFactory()
    void = commission_void(entry_id=entry.pk, actor=staff, reason="Traffic from a cookie-stuffing site")
    assert void.amount == Decimal("-20.00")
    assert void.kind == CommissionEntry.Kind.VOID
    assert partner_balance(partner=partner) == Decimal("0.00")
    assert CommissionVoid.objects.get(entry=void).actor == staff
    page = partner_client.get(reverse("commissions:commission_list"))
    assert b"Traffic from a cookie-stuffing site" in page.content
    with pytest.raises(FraudReviewError, match="Nothing is left"):
        commission_void(entry_id=entry.pk, actor=staff, reason="again")


def test_a_void_reason_is_shown_as_text_never_as_markup(partner_client):
    entry = add_commission(partner_client.partner, "25.00")
    commission_void(entry_id=entry.pk, actor=StaffFactory(), reason='<img src=x onerror="alert(1)"> refunded twice')
    page = partner_client.get(reverse("commissions:commission_list")).content.decode()
    assert '<img src=x onerror="alert(1)">' not in page
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt; refunded twice" in page


def test_a_void_needs_a_reason_and_writes_nothing_without_one():
    entry = add_commission(PartnerFactory(), "25.00")
    with pytest.raises(FraudReviewError, match="reason"):
        commission_void(entry_id=entry.pk, actor=StaffFactory(), reason="  ")
    assert CommissionEntry.objects.filter(kind="void").count() == 0


def test_the_admin_lists_flags_with_their_evidence(admin_client):
    ReferralFactory(is_self_referral=True, customer_id="cus_evidence_1")
    fraud_rules_run()
    changelist = admin_client.get(reverse("admin:fraud_fraudflag_changelist"))
    assert b"cus_evidence_1" in changelist.content
    flag = FraudFlag.objects.get()
    change = admin_client.get(reverse("admin:fraud_fraudflag_change", args=[flag.pk]))
    assert b"<pre>" in change.content


def test_the_admin_voids_a_commission_after_asking_for_a_reason(admin_client):
    entry = add_commission(PartnerFactory(), "25.00")
    url = reverse("admin:fraud_voidablecommission_changelist")
    ask = admin_client.post(url, {"action": "void", "_selected_action": [entry.pk]})
    assert ask.status_code == 200
    assert b"Reason" in ask.content
    admin_client.post(url, {"action": "void", "_selected_action": [entry.pk], "apply": "1", "reason": "Fraud"})
    assert CommissionEntry.objects.filter(kind="void", payment=entry.payment).count() == 1
