"""Fixtures for the payout tests: partners with a ledger balance, payout staff, and a running
fake PayPal that the real paypalrestsdk client talks to over HTTP."""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from commissions.models import CommissionEntry, Refund
from devtools.fake_paypal import FakePayPal
from tests.conftest import with_totp_device
from tests.factories import CommissionEntryFactory, MerchantEventFactory, PartnerFactory, StaffFactory

_refund_events = itertools.count(1)

# Short enough to keep the suite quick, long enough for a loopback answer on a busy machine.
CLIENT_TIMEOUT = 0.5


def add_commission(partner, amount: str | Decimal, **kwargs) -> CommissionEntry:
    return CommissionEntryFactory(payment__referral__click__link__partner=partner, amount=Decimal(amount), **kwargs)


def add_refund(entry: CommissionEntry, commission_reversed: str | Decimal) -> CommissionEntry:
    """A refund of the entry's payment reversing ``commission_reversed`` of its commission."""
    reversed_amount = Decimal(commission_reversed)
    refund = Refund.objects.create(
        payment=entry.payment,
        amount=entry.payment.amount,
        refunded_at=timezone.now(),
        event=MerchantEventFactory(event_id=f"evt_refund_{next(_refund_events)}", type="payment.refunded"),
    )
    return CommissionEntry.objects.create(
        partner=entry.partner,
        referral=entry.referral,
        payment=entry.payment,
        refund=refund,
        kind=CommissionEntry.Kind.REVERSAL,
        amount=-reversed_amount,
        rate=entry.rate,
        earned_at=timezone.now(),
    )


@pytest.fixture
def partner_with_balance(db):
    def make(amount: str | Decimal, **partner_kwargs):
        partner = PartnerFactory(**partner_kwargs)
        if Decimal(amount):
            add_commission(partner, amount)
        return partner

    return make


@pytest.fixture
def payout_staff(db):
    """Staff with the payouts.approve_payout permission."""
    user = StaffFactory()
    user.user_permissions.add(Permission.objects.get(codename="approve_payout", content_type__app_label="payouts"))
    with_totp_device(user)  # issue 22: payout decisions need two-factor verification
    return type(user).objects.get(pk=user.pk)  # fresh: the permission cache starts empty


@pytest.fixture
def plain_staff(db):
    """Staff without the payout permission (may log into the admin, may not decide payouts)."""
    user = StaffFactory()
    user.user_permissions.add(Permission.objects.get(codename="view_payout", content_type__app_label="payouts"))
    return type(user).objects.get(pk=user.pk)


@pytest.fixture
def fake_paypal(settings):
    fake = FakePayPal(hang_seconds=CLIENT_TIMEOUT * 4)
    base_url = fake.start()
    settings.PAYPAL_API_BASE = base_url
    settings.PAYPAL_CLIENT_ID = fake.client_id
    settings.PAYPAL_CLIENT_SECRET = fake.client_secret
    settings.PAYPAL_MODE = "sandbox"
    settings.PAYPAL_TIMEOUT_SECONDS = CLIENT_TIMEOUT
    yield fake
    fake.stop()
