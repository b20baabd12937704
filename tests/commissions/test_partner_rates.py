"""Per-partner commission rates (docs/reference.md, "Merchant events API": each partner's rate, issue 22 item 4) and issue 16,
Found 8 (last item): every ledger entry records the rate it used, a payment earns at the rate in
force for its partner when it happened, and a refund reverses at its payment's rate, not today's;
on the SQL fast path and the general path alike."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from commissions.models import CommissionEntry, PartnerRate
from commissions.rates import current_rate, rate_in_force
from tests.commissions.conftest import paid, refunded
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(params=["fast", "general"])
def path(request, settings):
    settings.EVENTS_SQL_FAST_PATH = request.param == "fast"
    return request.param


def _rate(partner, rate: str, *, days_ago: float) -> PartnerRate:
    return PartnerRate.objects.create(
        partner=partner, rate=Decimal(rate), valid_from=timezone.now() - timedelta(days=days_ago)
    )


def test_without_an_own_rate_a_payment_earns_the_program_rate_and_records_it(send, path, referral_of):
    referral_of("cus_1")
    response = send(paid("pay_1", "cus_1", "49.00"))
    assert response.json()["commission"] == {"amount": "9.80"}
    entry = CommissionEntry.objects.get()
    assert (entry.amount, entry.rate) == (Decimal("9.80"), Decimal("0.2000"))


def test_a_payment_earns_the_partners_own_rate_in_force_when_it_happened(send, path, referral_of):
    referral = referral_of("cus_1")
    _rate(referral.partner, "0.30", days_ago=10)
    _rate(referral.partner, "0.25", days_ago=2)
    now = timezone.now()
    answers = [
        send(paid("pay_old", "cus_1", "100.00", created=now - timedelta(days=20))).json(),  # before any own rate
        send(paid("pay_mid", "cus_1", "100.00", created=now - timedelta(days=5))).json(),
        send(paid("pay_new", "cus_1", "100.00", created=now - timedelta(days=1))).json(),
    ]
    assert [a["commission"]["amount"] for a in answers] == ["20.00", "30.00", "25.00"]
    entries = CommissionEntry.objects.order_by("earned_at")
    assert [(e.amount, e.rate) for e in entries] == [
        (Decimal("20.00"), Decimal("0.2000")),
        (Decimal("30.00"), Decimal("0.3000")),
        (Decimal("25.00"), Decimal("0.2500")),
    ]
    referral.refresh_from_db()
    assert referral.total_commission == Decimal("75.00")


def test_an_own_rate_is_rounded_half_up_to_the_cent(send, path, referral_of):
    referral = referral_of("cus_1")
    _rate(referral.partner, "0.1250", days_ago=1)
    assert send(paid("pay_1", "cus_1", "0.20")).json()["commission"] == {"amount": "0.03"}  # 0.025 -> 0.03


def test_another_partners_rate_does_not_apply(send, path, referral_of):
    from tests.factories import PartnerFactory

    referral_of("cus_1")
    _rate(PartnerFactory(), "0.50", days_ago=1)
    assert send(paid("pay_1", "cus_1", "10.00")).json()["commission"] == {"amount": "2.00"}


def test_a_self_referral_records_a_zero_rate(send, path, referral_of, click):
    referral_of("cus_1", email=click.link.partner.user.email)
    _rate(click.link.partner, "0.40", days_ago=1)
    assert send(paid("pay_1", "cus_1", "10.00")).json()["commission"] == {"amount": "0.00"}
    assert CommissionEntry.objects.get().rate == Decimal("0")


def test_a_partial_refund_after_the_program_rate_changed_reverses_at_the_payments_rate(
    send, path, referral_of, settings
):
    """Found 8: a partial refund after the rate changed reversed at today's rate."""
    referral_of("cus_1")
    send(paid("pay_1", "cus_1", "100.00"))
    settings.COMMISSION_RATE = Decimal("0.50")
    response = send(refunded("pay_1", "10.00"))
    assert response.json()["commission"] == {"amount": "-2.00"}
    reversal = CommissionEntry.objects.get(kind=CommissionEntry.Kind.REVERSAL)
    assert reversal.rate == Decimal("0.2000")


def test_a_partial_refund_after_the_partners_rate_changed_reverses_at_the_payments_rate(send, path, referral_of):
    referral = referral_of("cus_1")
    _rate(referral.partner, "0.30", days_ago=3)
    send(paid("pay_1", "cus_1", "100.00", created=timezone.now() - timedelta(days=2)))
    _rate(referral.partner, "0.05", days_ago=1)
    assert send(refunded("pay_1", "10.00")).json()["commission"] == {"amount": "-3.00"}
    # The refund completing the payment reverses exactly what is left.
    assert send(refunded("pay_1", "90.00")).json()["commission"] == {"amount": "-27.00"}
    assert sum(CommissionEntry.objects.values_list("amount", flat=True)) == Decimal("0.00")
    assert set(CommissionEntry.objects.values_list("rate", flat=True)) == {Decimal("0.3000")}


def test_the_rate_in_force_is_the_latest_one_from_before_the_moment(partner, settings):
    settings.COMMISSION_RATE = Decimal("0.20")
    first = _rate(partner, "0.30", days_ago=10)
    _rate(partner, "0.35", days_ago=-5)  # a rate staff set for next week
    assert rate_in_force(partner_id=partner.pk, at=first.valid_from - timedelta(seconds=1)) == Decimal("0.20")
    assert rate_in_force(partner_id=partner.pk, at=first.valid_from) == Decimal("0.30")
    assert current_rate(partner_id=partner.pk) == Decimal("0.30")
    assert rate_in_force(partner_id=partner.pk, at=timezone.now() + timedelta(days=6)) == Decimal("0.35")


def test_a_rate_outside_0_to_1_is_refused_by_the_database(partner):
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        _rate(partner, "1.5", days_ago=1)


def test_staff_add_a_rate_on_the_partner_page_and_earlier_rates_stay_as_they_were(client, partner):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    _rate(partner, "0.30", days_ago=10)
    url = reverse("admin:partners_partner_change", args=[partner.pk])
    page = client.get(url)
    assert page.status_code == 200
    assert b"own commission rates" in page.content.lower()
    form = page.context["adminform"].form
    data = {name: form[name].value() or "" for name in form.fields}
    prefixes = {}
    for inline in page.context["inline_admin_formsets"]:
        formset = inline.formset
        prefixes[formset.model] = formset.prefix
        management = formset.management_form
        for name in management.fields:
            data[f"{formset.prefix}-{name}"] = management[name].value()
        for n, existing in enumerate(formset.forms):
            data[f"{formset.prefix}-{n}-id"] = str(existing.instance.pk)
            data[f"{formset.prefix}-{n}-partner"] = str(partner.pk)
    prefix = prefixes[PartnerRate]
    assert data[f"{prefix}-INITIAL_FORMS"] == 1
    new = f"{prefix}-1"
    data[f"{prefix}-TOTAL_FORMS"] = "2"
    data[f"{new}-partner"] = str(partner.pk)
    data[f"{new}-rate"] = "0.2500"
    data[f"{new}-valid_from_0"] = (timezone.now() + timedelta(days=1)).strftime("%Y-%m-%d")
    data[f"{new}-valid_from_1"] = "00:00:00"
    response = client.post(url, data)
    assert response.status_code == 302, [f.errors for f in response.context["inline_admin_formsets"]]
    assert list(partner.rates.order_by("valid_from").values_list("rate", flat=True)) == [
        Decimal("0.3000"),
        Decimal("0.2500"),
    ]


def test_the_partner_sees_their_current_rate_on_the_dashboard(partner_client, partner):
    assert b'<span id="commission-rate">20%</span>' in partner_client.get("/dashboard/").content
    _rate(partner, "0.275", days_ago=1)
    assert b'<span id="commission-rate">27.5%</span>' in partner_client.get("/dashboard/").content
    assert b"Commission is 27.5 %" in partner_client.get("/commissions/").content
