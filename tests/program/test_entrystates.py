"""A page's entry states (commissions/entrystates.py) keep the replay's order of parts: a payout
takes the head of a commission, its own refund later takes from the tail, the rest is available."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import override_settings
from django.utils import timezone

from commissions.entrystates import PageStates
from commissions.lifecycle import AVAILABLE, IN_PAYOUT, REVERSED, Part, partner_lifecycle
from commissions.models import CommissionEntry, Refund
from payouts.models import Payout
from tests.factories import CommissionEntryFactory, MerchantEventFactory, PartnerFactory

pytestmark = pytest.mark.django_db


@override_settings(COMMISSION_HOLD_DAYS=0)
def test_a_payout_then_its_own_refund_keep_the_replays_order():
    partner = PartnerFactory()
    start = timezone.now() - timedelta(days=3)
    entry = CommissionEntryFactory(
        payment__referral__click__link__partner=partner, amount=Decimal("10.00"), earned_at=start
    )
    payout = Payout.objects.create(partner=partner, amount=Decimal("4.00"), currency="USD", paypal_email="p@x.com")
    Payout.objects.filter(pk=payout.pk).update(requested_at=start + timedelta(hours=1))
    refund = Refund.objects.create(
        payment=entry.payment,
        amount=Decimal("3.00"),
        refunded_at=start + timedelta(hours=2),
        event=MerchantEventFactory(event_id="evt_entrystates_refund", type="payment.refunded"),
    )
    reversal = CommissionEntry.objects.create(
        partner=partner,
        referral=entry.referral,
        payment=entry.payment,
        refund=refund,
        kind="reversal",
        amount=Decimal("-3.00"),
        rate=entry.rate,
        earned_at=start + timedelta(hours=2),
    )
    now = start + timedelta(days=1)
    expected = [
        Part(IN_PAYOUT, Decimal("4.00"), payout.pk),
        Part(REVERSED, Decimal("3.00")),
        Part(AVAILABLE, Decimal("3.00")),
    ]
    assert partner_lifecycle(partner=partner, now=now).entries[entry.pk].parts == expected
    states = PageStates(partner=partner, now=now).states([entry, reversal])
    assert states[entry.pk].parts == expected
    assert states[reversal.pk].parts == [Part(REVERSED, Decimal("-3.00"))]
