"""factory-boy factories shared by every app's tests."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

import factory
from django.db.models import F
from django.utils import timezone

from commissions.models import CommissionEntry, MerchantEvent, Payment, Referral
from partners.models import Partner, User
from payouts.models import Payout
from tracking.models import Click, Creative, Link, PromoCode


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"partner{n}@example.com")
    # Confirmed, as every account made before confirmation existed; sign-up tests make their own.
    email_verified_at = factory.LazyFunction(timezone.now)
    password = factory.PostGenerationMethodCall("set_password", "correct-horse-battery")

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class StaffFactory(UserFactory):
    email = factory.Sequence(lambda n: f"staff{n}@example.com")
    is_staff = True


class PartnerFactory(factory.django.DjangoModelFactory):
    """A partner with its default link, as sign-up makes it."""

    class Meta:
        model = Partner
        skip_postgeneration_save = True

    user = factory.SubFactory(UserFactory)
    name = factory.Faker("name")
    referral_code = factory.Sequence(lambda n: f"ref{n:06d}")
    accepted_terms_at = factory.LazyFunction(timezone.now)
    paypal_email = factory.LazyAttribute(lambda p: f"paypal.{p.user.email}")

    @factory.post_generation
    def default_link(obj, create, extracted, **kwargs):
        if create:
            Link.objects.create(partner=obj, code=obj.referral_code, trial_days=14, is_default=True)


class CreativeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Creative

    kind = Creative.Kind.LINK
    title = factory.Sequence(lambda n: f"Creative {n}")


class LinkFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Link

    partner = factory.SubFactory(PartnerFactory)
    code = factory.Sequence(lambda n: f"link{n:06d}")
    destination = "https://crazycall.com/pricing"
    trial_days = 14
    description = factory.Sequence(lambda n: f"Campaign {n}")


class ClickFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Click

    id = factory.LazyFunction(uuid.uuid4)
    link = factory.SubFactory(LinkFactory)
    visitor_id = factory.Sequence(lambda n: f"visitor-{n}")
    created_at = factory.LazyFunction(timezone.now)
    is_unique = True


class MerchantEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MerchantEvent

    event_id = factory.Sequence(lambda n: f"evt_{n}")
    type = MerchantEvent.Type.PAYMENT_SUCCEEDED
    body = "{}"
    body_sha256 = "0" * 64
    created = factory.LazyFunction(timezone.now)
    outcome = MerchantEvent.Outcome.APPLIED
    response_status = 201
    response_body = factory.LazyFunction(dict)


class ReferralFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Referral

    click = factory.SubFactory(ClickFactory)
    link = factory.LazyAttribute(lambda r: r.click.link)
    partner = factory.LazyAttribute(lambda r: r.click.link.partner)
    customer_id = factory.Sequence(lambda n: f"cus_{n}")
    email = factory.Sequence(lambda n: f"customer{n}@example.org")
    signed_up_at = factory.LazyFunction(timezone.now)
    trial_days = 14
    trial_ends_at = factory.LazyAttribute(lambda r: r.signed_up_at + timedelta(days=r.trial_days))


class PaymentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Payment

    referral = factory.SubFactory(ReferralFactory)
    partner = factory.LazyAttribute(lambda p: p.referral.partner)
    payment_id = factory.Sequence(lambda n: f"pay_{n}")
    plan = "A"
    seats = 1
    amount = Decimal("49.00")
    currency = "USD"
    paid_at = factory.LazyFunction(timezone.now)
    event = factory.SubFactory(MerchantEventFactory)


class CommissionEntryFactory(factory.django.DjangoModelFactory):
    """A commission on a fresh payment; ``amount`` is the commission."""

    class Meta:
        model = CommissionEntry
        skip_postgeneration_save = True  # the hook writes the referral, not the entry

    payment = factory.SubFactory(PaymentFactory)
    referral = factory.LazyAttribute(lambda e: e.payment.referral)
    partner = factory.LazyAttribute(lambda e: e.payment.partner)
    kind = CommissionEntry.Kind.COMMISSION
    amount = Decimal("9.80")
    rate = Decimal("0.20")
    earned_at = factory.LazyFunction(timezone.now)

    @factory.post_generation
    def referral_total(entry, create, extracted, **kwargs):
        """The referral's running total of its ledger, as the product keeps it with every entry
        (a void takes from it, and it can never go below 0.00)."""
        if create:
            Referral.objects.filter(pk=entry.referral_id).update(total_commission=F("total_commission") + entry.amount)


class PayoutFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Payout

    partner = factory.SubFactory(PartnerFactory)
    amount = Decimal("50.00")
    currency = "USD"
    paypal_email = factory.LazyAttribute(lambda p: p.partner.paypal_email or "someone@example.com")
    status = Payout.Status.PENDING


class PromoCodeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PromoCode

    partner = factory.SubFactory(PartnerFactory)
    code = factory.Sequence(lambda n: f"PODCAST{n:04d}")
    trial_days = 14
